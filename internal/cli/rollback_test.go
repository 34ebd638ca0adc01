package cli

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
	for _, w := range []string{"svcapp added since", "ops: password set since, kept", "deploy: the password set during the window", "/home/deploy", "notes.txt", dropins[0][len(root):]} {
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

// TestRollbackFailedIsRetried: the new admin swaps ~/.ssh for a symlink
// to /etc while the change waits. moat rollback refuses that path, says
// the rollback is incomplete (exit 1, never "restored"), the change shows
// as rollback-failed, /etc is untouched; once the link is gone, moat
// rollback finishes the job.
func TestRollbackFailedIsRetried(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "sshd", "useradd", "fallocate", "mkswap")
	t.Setenv(envAsMoat, "1")
	t.Setenv("SSH_CONNECTION", "")
	root, cfg := changeFixture(t)
	before := hashTree(t, root)
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
	ssh := filepath.Join(root, "home/deploy/.ssh")
	fi, err := os.Stat(filepath.Join(root, "home/deploy"))
	if err != nil {
		t.Fatal(err)
	}
	uid := int(fi.Sys().(*syscall.Stat_t).Uid)
	if err := os.Rename(ssh, ssh+".old"); err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(root, "etc")
	os.Symlink(etc, ssh)
	os.Lchown(ssh, uid, uid)

	c, rout, rerr := moat("rollback", "--root", root, id)
	wg.Wait()
	if c != ExitRuntime || !strings.Contains(rout, "INCOMPLETE") || !strings.Contains(rout, "refused") {
		t.Fatalf("rollback through a swapped ~/.ssh: %d\n%s\n%s", c, rout, rerr)
	}
	if strings.Contains(rout, "paths restored") || strings.Contains(rout, "every path") {
		t.Errorf("a failed rollback claims a restore:\n%s", rout)
	}
	if code != ExitRuntime || !strings.Contains(errs, "INCOMPLETE") {
		t.Errorf("moat apply, waiting, saw: %d\n%s", code, errs)
	}
	// Nothing under /etc got the admin's uid, and no key went in there.
	filepath.WalkDir(etc, func(p string, d fs.DirEntry, err error) error {
		if fi, err := os.Lstat(p); err == nil && int(fi.Sys().(*syscall.Stat_t).Uid) == uid {
			t.Errorf("%s is owned by the admin now", p)
		}
		return nil
	})
	if _, err := os.Lstat(filepath.Join(etc, "authorized_keys")); err == nil {
		t.Error("a key file was written into /etc through the link")
	}
	// The watchdog retries meanwhile (the change is rolling-back while it
	// does): look until the list shows the state between two tries.
	var list string
	for range 50 {
		_, list, _ = moat("change", "list", "--root", root)
		if strings.Contains(list, "rollback-failed") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(list, "rollback-failed") || !strings.Contains(list, "moat rollback "+id) {
		t.Errorf("change list:\n%s", list)
	}
	if c, o, e := moat("confirm", "--root", root, id); c == ExitOK {
		t.Errorf("a half-rolled-back change was confirmed: %s %s", o, e)
	}
	os.Remove(ssh)
	os.Rename(ssh+".old", ssh)
	c, rout, rerr = moat("rollback", "--root", root, id)
	if c != ExitOK || !strings.Contains(rout, "rolled back") {
		t.Fatalf("retry: %d\n%s\n%s", c, rout, rerr)
	}
	if got := hashTree(t, root); got != before {
		t.Fatalf("after the retry, not as before:\n%s", diffLines(before, got))
	}
	if p, _ := store.Pending(); p != "" {
		t.Errorf("still pending: %s", p)
	}
}
