package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/lab"
)

// The confirmation rule, end to end: every way an operator (or a
// hurried one) might confirm from inside the state before the change.

// keeps is a change that keeps root in: every way of confirming below
// is judged by the rule, not by whether the login works.
const keeps = `ssh:
  permit_root_login: prohibit-password
  allow_users: [root, deploy]
  max_auth_tries: 4
firewall:
  enabled: false
`

// clientKey writes a key pair for root that OpenSSH's client can use,
// and authorizes it in the fixture.
func (x *e2e) clientKey() string {
	x.t.Helper()
	dir := x.t.TempDir()
	key := filepath.Join(dir, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		x.t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		x.t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(x.root, "etc/ssh/keys/root"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		x.t.Fatal(err)
	}
	f.Write(pub)
	f.Close()
	return key
}

// sshArgs are OpenSSH client options that ignore the machine's own
// configuration and known hosts.
func sshArgs(key string) []string {
	return []string{"-F", "/dev/null", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"}
}

// TestE2EConfirmWays: with a change waiting, a tab opened before the
// apply, a reused ControlMaster connection, and ssh hops to loopback and
// to the host's own address from inside the applying session are all
// refused, each saying why; a genuinely new connection is accepted, and
// root still logs in afterwards.
func TestE2EConfirmWays(t *testing.T) {
	lab.RequireTool(t, "ssh")
	x := newE2E(t)
	x.config(keeps)
	key := x.clientKey()
	pub := vpsPublic + ":22"

	// Opened before the apply: a tab, and a ControlMaster connection.
	tab := x.mustClient(pub, "root", x.rootKey)
	defer tab.Close()
	sock := filepath.Join(t.TempDir(), "cm")
	master := x.admin.Start(t, "ssh", append(sshArgs(key), "-M", "-S", sock, "-N", "root@"+vpsPublic)...)
	defer master.Stop()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ControlMaster connection did not come up:\n%s", master.Output())
		}
	}

	op := x.mustClient(pub, "root", x.rootKey)
	defer op.Close()
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		out, code = x.run(op, "apply", "-c", x.cfg, "--confirm", "40s")
	}()
	m := x.waiting(done, &out)

	refused := func(how, output string, c int, want string) {
		t.Helper()
		if c == 0 || !strings.Contains(output, want) {
			t.Errorf("%s: exit %d, want a refusal saying %q:\n%s", how, c, want, output)
		}
		if s, _ := change.NewStore(x.root).Load(m.ID); s == nil || s.State != change.Waiting {
			t.Fatalf("%s: the change left waiting: %+v", how, s)
		}
	}
	o, c := x.run(tab, "confirm", m.ID)
	refused("tab opened before the apply", o, c, "before the change took effect")
	o, c = x.run(op, "confirm", m.ID)
	refused("the applying session", o, c, "before the change took effect")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cm, err := x.admin.Run(ctx, "ssh", append(sshArgs(key), "-S", sock, "-o", "ControlMaster=no", "root@"+vpsPublic, x.cmdline("confirm", m.ID))...)
	refused("ControlMaster reuse", string(cm), exitCode(err), "ControlMaster")

	// From inside the applying session: ssh to loopback, and to the
	// host's own public address. The hop is a new connection, accepted
	// after the change, and proves nothing about the way in.
	for _, addr := range []string{"127.0.0.1", vpsPublic} {
		hop := "ssh " + strings.Join(sshArgs(key), " ") + " root@" + addr + " " + x.cmdline("confirm", m.ID)
		o, c = x.sh(op, hop)
		refused("ssh hop to "+addr, o, c, "comes from the host itself")
	}

	// A shell renamed sshd, started after the change inside the old
	// session, with the old session's SSH_CONNECTION: not a login.
	fake := filepath.Join(t.TempDir(), "sshd")
	if b, err := os.ReadFile("/bin/bash"); err != nil || os.WriteFile(fake, b, 0o755) != nil {
		t.Fatalf("copy bash: %v", err)
	}
	o, c = x.sh(op, fake+" -c '"+x.cmdline("confirm", m.ID)+"'")
	refused("a shell named sshd", o, c, "before the change took effect")

	fresh := x.mustClient(pub, "root", x.rootKey)
	defer fresh.Close()
	if o, c := x.run(fresh, "confirm", m.ID); c != 0 || !strings.Contains(o, "confirmed") {
		t.Fatalf("a new connection was refused: %d %s", c, o)
	}
	<-done
	if code != 0 {
		t.Errorf("moat apply: %d\n%s", code, out)
	}
	if err := x.loginSoon(pub, 20*time.Second); err != nil {
		t.Errorf("root cannot log in after the confirm: %v", err)
	}
	m, _ = change.NewStore(x.root).Load(m.ID)
	var refusals []string
	for _, ev := range m.Events {
		if strings.HasPrefix(ev.Text, "confirm refused") {
			refusals = append(refusals, ev.Text)
		}
	}
	if len(refusals) != 6 {
		t.Errorf("history records %d refusals, want 6: %v", len(refusals), refusals)
	}
	// The accepted connection was read from sshd's own socket, not from
	// SSH_CONNECTION.
	if !slices.ContainsFunc(m.Events, func(e change.Event) bool { return strings.Contains(e.Text, "from sshd's socket") }) {
		t.Errorf("history: %+v", m.Events)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// TestE2EApplyDiesAtEachStepBoundary: moat apply is killed (SIGKILL) or
// hung up (SIGHUP) after sshd's step, after the firewall's, and while it
// waits, with a change that cuts root's new logins. Each time a fresh
// login works again within the window plus a bound, every file is as
// before, and table inet moat is gone.
func TestE2EApplyDiesAtEachStepBoundary(t *testing.T) {
	const window = 8 * time.Second
	for _, boundary := range []string{"sshd", "activated", "waiting"} {
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGHUP} {
			t.Run(boundary+"/"+sig.String(), func(t *testing.T) {
				x := newE2E(t)
				x.config(`ssh:
  permit_root_login: prohibit-password
  allow_users: [deploy]
firewall:
  public_interface: eth0
  public: [80/tcp]
`)
				before := x.tree()
				pub := vpsPublic + ":22"
				op := x.mustClient(pub, "root", x.rootKey)
				defer op.Close()
				hold := filepath.Join(t.TempDir(), "hold")
				env := ""
				if boundary != "waiting" {
					env = "MOAT_TEST_HOLD_AFTER=" + boundary + " MOAT_TEST_HOLD_FILE=" + hold + " "
				}
				done := make(chan struct{})
				var out string
				go func() {
					defer close(done)
					out, _ = x.runEnv(op, env, "apply", "-c", x.cfg, "--confirm", window.String())
				}()
				var pid int
				if boundary == "waiting" {
					pid = x.waiting(done, &out).Applier
				} else {
					pid = x.held(hold, done, &out)
				}
				if err := syscall.Kill(pid, sig); err != nil {
					t.Fatal(err)
				}
				os.Remove(hold) // a hung-up apply that ignores SIGHUP goes on
				id := x.pendingID()
				// The bound: the window, the watchdog's poll, the
				// rollback itself, on a loaded machine.
				m := x.final(id, window+45*time.Second)
				if m.State != change.RolledBack {
					t.Fatalf("state %s", m.State)
				}
				if sig == syscall.SIGKILL && boundary != "waiting" && !strings.Contains(m.Reason, "died") {
					t.Errorf("reason %q: want the apply's death named", m.Reason)
				}
				// sshd re-executes itself on the rollback's reload: poll.
				if err := x.loginSoon(pub, 20*time.Second); err != nil {
					t.Fatalf("no fresh login after the rollback: %v", err)
				}
				if got := x.tree(); got != before {
					t.Errorf("files not restored:\n%s", diffLines(before, got))
				}
				if tables := string(x.vps.MustRun(t, "nft", "list", "tables")); strings.Contains(tables, "moat") {
					t.Errorf("table inet moat outlived the rollback: %s", tables)
				}
				<-done
				t.Logf("moat apply's output:\n%s", out)
			})
		}
	}
}

// loginSoon retries a root login until one works or within passes.
func (x *e2e) loginSoon(addr string, within time.Duration) error {
	var err error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = x.canLogIn(addr); err == nil {
			return nil
		}
	}
	return err
}

// sh runs a shell command line in a session of c.
func (x *e2e) sh(c *ssh.Client, cmd string) (string, int) {
	x.t.Helper()
	s, err := c.NewSession()
	if err != nil {
		x.t.Fatal(err)
	}
	defer s.Close()
	o, err := s.CombinedOutput(cmd)
	return string(o), exitStatus(x.t, err)
}

// runEnv is run with environment assignments before the command.
func (x *e2e) runEnv(c *ssh.Client, env string, args ...string) (string, int) {
	x.t.Helper()
	s, err := c.NewSession()
	if err != nil {
		x.t.Fatal(err)
	}
	defer s.Close()
	o, err := s.CombinedOutput(env + x.cmdline(args...))
	return string(o), exitStatus(x.t, err)
}

// held waits for moat apply to hold at a step boundary and returns its
// PID.
func (x *e2e) held(file string, done <-chan struct{}, out *string) int {
	x.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		select {
		case <-done:
			x.t.Fatalf("moat apply ended before holding:\n%s", *out)
		default:
		}
	}
	x.t.Fatal("moat apply did not hold")
	return 0
}

func (x *e2e) pendingID() string {
	x.t.Helper()
	id, err := change.NewStore(x.root).Pending()
	if err != nil || id == "" {
		all, _ := change.NewStore(x.root).List()
		if len(all) > 0 {
			return all[len(all)-1].ID
		}
		x.t.Fatalf("no change: %v", err)
	}
	return id
}

// TestE2EConfirmUnderSudo: the operator logs in as the admin and runs
// sudo moat confirm, as moat tells them to; sudo drops SSH_CONNECTION.
// From a tab opened before the apply it is refused, from a new
// connection accepted.
func TestE2EConfirmUnderSudo(t *testing.T) {
	lab.RequireTool(t, "sudo")
	x := newE2EWith(t, func(etc string) {
		sudoers := "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\ndeploy ALL=(ALL:ALL) NOPASSWD: ALL\n"
		if err := os.WriteFile(filepath.Join(etc, "sudoers"), []byte(sudoers), 0o440); err != nil {
			t.Fatal(err)
		}
	})
	x.config(keeps)
	pub := vpsPublic + ":22"
	tab := x.mustClient(pub, "deploy", x.deployKey)
	defer tab.Close()
	if o, c := x.sh(tab, "sudo -n true"); c != 0 {
		t.Fatalf("sudo does not work in the lab: %d %s", c, o)
	}
	op := x.mustClient(pub, "root", x.rootKey)
	defer op.Close()
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		out, code = x.run(op, "apply", "-c", x.cfg, "--confirm", "40s")
	}()
	m := x.waiting(done, &out)
	sudoConfirm := "sudo -n " + x.bin + " confirm " + m.ID + " --root " + x.root
	if o, c := x.sh(tab, sudoConfirm); c == 0 || !strings.Contains(o, "before the change took effect") {
		t.Errorf("sudo moat confirm from a tab opened before: %d %s", c, o)
	}
	fresh := x.mustClient(pub, "deploy", x.deployKey)
	defer fresh.Close()
	if o, c := x.sh(fresh, sudoConfirm); c != 0 || !strings.Contains(o, "confirmed") {
		t.Fatalf("sudo moat confirm from a new connection: %d %s", c, o)
	}
	<-done
	if code != 0 {
		t.Errorf("moat apply: %d\n%s", code, out)
	}
}
