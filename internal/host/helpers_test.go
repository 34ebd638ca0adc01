package host

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fixtureRoot is the shared read-only fixture tree.
const fixtureRoot = "testdata/root"

// requireRoot skips a test that needs root, or fails it when
// MOAT_TEST_STRICT=1 (a private copy of lab.RequireRoot's logic).
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
}

// requireTool skips a test when a command is missing, or fails it under
// MOAT_TEST_STRICT=1.
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		skipOrFail(t, "needs "+name+" in PATH")
	}
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("MOAT_TEST_STRICT") == "1" {
		t.Fatalf("%s (MOAT_TEST_STRICT=1 forbids skipping)", why)
	}
	t.Skip(why)
}

// copyTree copies the fixture tree to a fresh directory so a test can
// change modes and times, keeping symlinks as symlinks.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case fi.IsDir():
			return os.MkdirAll(out, 0o755)
		default:
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			o, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(o, in); err != nil {
				o.Close()
				return err
			}
			return o.Close()
		}
	})
	if err != nil {
		t.Fatalf("copy fixture: %v", err)
	}
}

// tempFixture returns a private, writable copy of the fixture tree.
func tempFixture(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, fixtureRoot, dir)
	return dir
}
