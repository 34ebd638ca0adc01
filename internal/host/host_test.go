package host

import (
	"path/filepath"
	"testing"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct{ root, in, want string }{
		{"", "/etc/passwd", "/etc/passwd"},
		{"/", "/etc/passwd", "/etc/passwd"},
		{"/fx", "/etc/passwd", "/fx/etc/passwd"},
		{"/fx", "etc/passwd", "/fx/etc/passwd"},
		{"/fx", "/../../etc/passwd", "/fx/etc/passwd"},
		{"/fx", "/home/a/../../../root", "/fx/root"},
	} {
		if got := New(tc.root).Path(tc.in); got != filepath.FromSlash(tc.want) {
			t.Errorf("New(%q).Path(%q) = %q, want %q", tc.root, tc.in, got, tc.want)
		}
	}
	if !New("").Live() || !New("/").Live() || New("/fx").Live() {
		t.Error("Live() wrong")
	}
}
