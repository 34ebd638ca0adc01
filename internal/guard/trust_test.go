package guard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUntrustedWriter(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	if err := os.WriteFile(p, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if why := UntrustedWriter(p); why != "" {
			t.Errorf("root's 0640 file: %q", why)
		}
		if err := os.Chown(p, 1000, 1000); err != nil {
			t.Fatal(err)
		}
		if why := UntrustedWriter(p); !strings.Contains(why, "login user") {
			t.Errorf("a user's file: %q", why)
		}
		os.Chown(p, 0, 0)
	}
	os.Chmod(p, 0o666)
	if why := UntrustedWriter(p); !strings.Contains(why, "every user") {
		t.Errorf("a world-writable file: %q", why)
	}
	if why := UntrustedWriter(filepath.Join(dir, "missing.log")); why != "" {
		t.Errorf("a missing file: %q", why)
	}
}
