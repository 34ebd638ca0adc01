package audit

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moat-sh/moat/internal/lab"
)

// TestLiveAuditNotRoot runs a live audit as nobody: it must finish, say
// what it could not read, and still judge sshd from a copy of /etc/ssh.
func TestLiveAuditNotRoot(t *testing.T) {
	if os.Getenv("MOAT_AUDIT_AS_NOBODY") == "1" {
		liveAuditAsNobody(t)
		return
	}
	lab.RequireRoot(t)
	lab.RequireTool(t, "sshd")
	base, err := os.MkdirTemp("", "moat-audit-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(base, "audit.test")
	copyFile(t, self, exe)
	cmd := exec.Command(exe, "-test.run=^TestLiveAuditNotRoot$", "-test.v")
	cmd.Dir = base
	cmd.Env = append(os.Environ(), "MOAT_AUDIT_AS_NOBODY=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLiveAuditNotRoot") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func liveAuditAsNobody(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Fatal("must not run as root")
	}
	rep, err := Run(context.Background(), Options{NoProbe: true, SkipApt: true})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(rep.Notes, "\n")
	for _, want := range []string{"/etc/shadow", "root"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes do not mention %q:\n%s", want, notes)
		}
	}
	for _, r := range rep.Results {
		if r.ID == "SSH-001" && r.Status == Unknown {
			t.Errorf("sshd's config must be judged without root too: %s", r)
		}
		if r.ID == "USR-002" && r.Status != Unknown {
			t.Errorf("shadow checks cannot be judged without root: %s", r)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}
