package sshd

import (
	"os"
	"os/exec"
	"testing"
)

// skipOrFail skips, or fails when MOAT_TEST_STRICT=1 (CI installs every
// tool, so nothing may be skipped silently there). A private copy of
// internal/lab's logic, to keep this package's tests free of it.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("MOAT_TEST_STRICT") == "1" {
		t.Fatalf("MOAT_TEST_STRICT=1 but: %s", reason)
	}
	t.Skip(reason)
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
}

// requireSSHD returns the sshd binary or skips.
func requireSSHD(t testing.TB) string {
	t.Helper()
	bin, err := findSSHD("")
	if err != nil {
		skipOrFail(t, "needs sshd (openssh-server): "+err.Error())
	}
	return bin
}

func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		skipOrFail(t, "needs "+name)
	}
}
