package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/lab"
)

// TestRollbackKeepsTheOperatorsWork is the scenario through the
// command line: while a change waits for confirm, the operator adds a
// system user with the real useradd, sets passwords with usermod, adds a
// line to the sshd drop-in moat wrote and writes a file in the new
// admin's home. moat rollback removes moat's own edits, keeps all that,
// and lists it; it never claims a byte-for-byte restore it did not do.
func TestRollbackKeepsTheOperatorsWork(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "sshd", "useradd", "usermod", "fallocate", "mkswap")
	t.Setenv(envAsMoat, "1")
	t.Setenv("SSH_CONNECTION", "")
	root, cfg := changeFixture(t)
	origGroup, _ := os.ReadFile(filepath.Join(root, "etc/group"))

	var wg sync.WaitGroup
	var code int
	var out, errs string
	wg.Go(func() { code, out, errs = moat("apply", "-c", cfg, "--root", root, "--confirm", "5m") })
	store := change.NewStore(root)
	var id string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && id == ""; time.Sleep(20 * time.Millisecond) {
		if p, _ := store.Pending(); p != "" {
			if m, _ := store.Load(p); m != nil && m.State == change.Waiting {
				id = p
			}
		}
	}
	if id == "" {
		wg.Wait()
		t.Fatalf("no change waiting: %d\n%s\n%s", code, out, errs)
	}
	run := func(argv ...string) {
		t.Helper()
		if b, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, b)
		}
	}
	run("useradd", "--prefix", root, "--system", "--no-create-home", "svcapp")
	run("usermod", "--prefix", root, "--password", "$6$opsnew$hash", "ops")
	run("usermod", "--prefix", root, "--password", "$6$deploynew$hash", "deploy")
	dropins, _ := filepath.Glob(filepath.Join(root, "etc/ssh/sshd_config.d/*moat*"))
	if len(dropins) == 0 {
		t.Fatal("no sshd drop-in written")
	}
	f, _ := os.OpenFile(dropins[0], os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("ClientAliveInterval 60\n")
	f.Close()
	notes := bytes.Repeat([]byte("the operator's work\n"), 5000)
	if err := os.WriteFile(filepath.Join(root, "home/deploy/notes.txt"), notes, 0o600); err != nil {
		t.Fatal(err)
	}

	c, rout, rerr := moat("rollback", "--root", root, id)
	wg.Wait()
	if c != ExitOK {
		t.Fatalf("rollback: %d\n%s\n%s", c, rout, rerr)
	}
	t.Log("\n" + rout)
	for _, w := range []string{"svcapp added since", "ops changed since", "deploy: the password set during the window", "/home/deploy", "notes.txt", dropins[0][len(root):]} {
		if !strings.Contains(rout, w) {
			t.Errorf("rollback output lacks %q", w)
		}
	}
	if strings.Contains(rout, "paths restored") || strings.Contains(rout, "every path") {
		t.Errorf("rollback claims a full restore")
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	shadow, _ := os.ReadFile(filepath.Join(root, "etc/shadow"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if !strings.Contains(string(passwd), "\nsvcapp:") || strings.Contains(string(passwd), "\ndeploy:") {
		t.Errorf("passwd:\n%s", passwd)
	}
	if !strings.Contains(string(shadow), "ops:$6$opsnew$hash:") || strings.Contains(string(shadow), "deploy:") {
		t.Errorf("shadow:\n%s", shadow)
	}
	if strings.Contains(string(group), "deploy") || !strings.Contains(string(group), lineOf(origGroup, "sudo:")) {
		t.Errorf("group:\n%s\nwas\n%s", group, origGroup)
	}
	if got, err := os.ReadFile(filepath.Join(root, "home/deploy/notes.txt")); err != nil || !bytes.Equal(got, notes) {
		t.Errorf("the operator's file is gone: %v", err)
	}
	if got, _ := os.ReadFile(dropins[0]); string(got) != "ClientAliveInterval 60\n" {
		t.Errorf("drop-in after rollback: %q (want only the operator's line)", got)
	}
	// A second rollback says there is nothing to do.
	if c, o, e := moat("rollback", "--root", root, id); c != ExitOK || !strings.Contains(o, "already rolled back") {
		t.Errorf("second rollback: %d %s %s", c, o, e)
	}
	if c, o, _ := moat("change", "show", "--root", root, id); c != ExitOK || !strings.Contains(o, "svcapp added since") {
		t.Errorf("change show: %d\n%s", c, o)
	}
}

func lineOf(data []byte, prefix string) string {
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l + "\n"
		}
	}
	return prefix
}
