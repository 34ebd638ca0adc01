package change

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// TestSafeDirFollowsOnlyRootsLinks: a link root placed where only root can
// (/home -> /srv/home) is followed; one in a directory a user owns, or in
// a sticky world-writable one, is refused; so is one that loops.
func TestSafeDirFollowsOnlyRootsLinks(t *testing.T) {
	lab.RequireRoot(t)
	root := t.TempDir()
	os.Chmod(root, 0o755)
	mk := func(p string, mode os.FileMode, uid int) {
		full := filepath.Join(root, p)
		os.MkdirAll(full, mode)
		os.Chmod(full, mode)
		os.Chown(full, uid, uid)
	}
	mk("srv/home/bob", 0o750, 1234)
	mk("etc", 0o755, 0)
	mk("tmp", 0o1777, 0)
	os.Symlink("/srv/home", filepath.Join(root, "home"))
	os.Symlink("../etc", filepath.Join(root, "srv/home/bob/.ssh"))
	os.Symlink("/etc", filepath.Join(root, "tmp/x"))
	os.Symlink("loop", filepath.Join(root, "loop"))

	if err := WriteFile(root, File{Path: "/home/bob/notes", Data: []byte("ok\n"), Mode: 0o600}); err != nil {
		t.Fatalf("through root's /home link: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "srv/home/bob/notes")); err != nil || string(b) != "ok\n" {
		t.Fatalf("written where? %q %v", b, err)
	}
	for _, p := range []string{"/home/bob/.ssh/authorized_keys", "/srv/home/bob/.ssh/authorized_keys", "/tmp/x/passwd"} {
		err := WriteFile(root, File{Path: p, Data: []byte("evil\n")})
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := WriteFile(root, File{Path: "/loop/x", Data: []byte("x")}); err == nil {
		t.Error("a looping link was followed")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/authorized_keys")); err == nil {
		t.Error("a file landed in etc through a user's link")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/passwd")); err == nil {
		t.Error("a file landed in etc through a link in a sticky directory")
	}
	// The last component is never followed: a link there is replaced.
	os.Symlink(filepath.Join(root, "etc/shadow"), filepath.Join(root, "srv/home/bob/last"))
	os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("root:*:1::::::\n"), 0o640)
	if err := WriteFile(root, File{Path: "/home/bob/last", Data: []byte("mine\n")}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/shadow")); string(b) != "root:*:1::::::\n" {
		t.Errorf("shadow written through the last component: %q", b)
	}
}
