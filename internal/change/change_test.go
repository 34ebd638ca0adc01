package change

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

// The test binary doubles as the watchdog and as an applying process that
// gets killed: TestMain dispatches on these variables.
const (
	envRole = "MOAT_CHANGE_TEST_ROLE"
	envRoot = "MOAT_CHANGE_TEST_ROOT"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "watchdog":
		s := NewStore(os.Getenv(envRoot))
		_, err := s.RunWatchdog(context.Background(), os.Args[len(os.Args)-1], RollbackOptions{Handlers: testHandlers(os.Getenv(envRoot))})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "apply-and-hang":
		root := os.Getenv(envRoot)
		s := NewStore(root)
		m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Window: 1500 * time.Millisecond, Timer: testWatchdog(root), Handlers: testHandlers(root)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(m.ID)
		select {} // waits to be killed
	case "apply-config":
		applyConfigAndHold() // config_test.go; never returns
	case "apply-and-hold":
		// Holds after the first step, with a window far longer than any
		// test, so only the applier's death can end the change early.
		root := os.Getenv(envRoot)
		s := NewStore(root)
		_, err := s.Apply(context.Background(), []*Step{fileStep(root), {Layer: "second", Files: []File{{Path: "/etc/second", Data: []byte("2")}}}},
			Options{Window: time.Hour, Timer: testWatchdog(root), Handlers: testHandlers(root), AfterStep: func(string) {
				id, _ := s.Pending()
				fmt.Println(id)
				select {} // waits to be killed at this step boundary
			}})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// testHandlers record every undo and confirm action under root/actions.
func testHandlers(root string) Handlers {
	record := func(kind string) Handler {
		return func(_ context.Context, env Env, data json.RawMessage) error {
			f, err := os.OpenFile(filepath.Join(root, "actions"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = fmt.Fprintf(f, "%s %s\n", kind, data)
			return err
		}
	}
	return Handlers{"undo": record("undo"), "early": record("early"), "confirm": record("confirm"),
		"fail": func(context.Context, Env, json.RawMessage) error { return errors.New("handler failed") }}
}

func testWatchdog(root string) WatchdogTimer {
	return WatchdogTimer{Argv: []string{os.Args[0], "-test.run=^$"}, Env: append(os.Environ(), envRole+"=watchdog", envRoot+"="+root)}
}

// inlineTimer arms nothing: tests that roll back by hand.
type inlineTimer struct{}

func (inlineTimer) Arm(context.Context, *Store, *Manifest) (TimerInfo, error) {
	return TimerInfo{Kind: "test"}, nil
}

// fixture lays out a small tree: files of several modes and owners, a
// symlink, a directory.
func fixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(p, data string, mode fs.FileMode, uid int) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(full, mode)
		if os.Geteuid() == 0 {
			os.Chown(full, uid, uid)
		}
	}
	write("etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n", 0o644, 0)
	write("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640, 0)
	write("etc/app.conf", "setting=1\n", 0o600, 1234)
	write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nbob:x:1234:1234::/home/bob:/bin/bash\n", 0o644, 0)
	write("etc/group", "root:x:0:\nbob:x:1234:\n", 0o644, 0)
	os.Symlink("app.conf", filepath.Join(root, "etc/app.link"))
	os.MkdirAll(filepath.Join(root, "home"), 0o755)
	return root
}

// treeHash hashes every path under root but the change store: names,
// kinds, modes, owners, bytes, link targets.
func treeHash(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "var" || rel == "var/lib" || rel == "actions" {
			return nil
		}
		if rel == "var/lib/moat" {
			return filepath.SkipDir
		}
		fi, _ := os.Lstat(p)
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			h := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(h[:])
		}
		out[rel] = desc
		return nil
	})
	return out
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: was %q, now %q", k, v, after[k])
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: new after rollback (%s)", k, v)
		}
	}
}

// fileStep changes every kind of path the fixture has.
func fileStep(root string) *Step {
	return &Step{
		Layer:   "files",
		Summary: []string{"rewrite config"},
		Files: []File{
			{Path: "/etc/ssh/sshd_config.d/00-moat.conf", Data: []byte("PasswordAuthentication no\n"), Mode: 0o644},
			{Path: "/etc/ssh/sshd_config", Data: []byte("Include /etc/ssh/sshd_config.d/*.conf\n"), Mode: 0o600},
			{Path: "/etc/app.conf", Data: []byte("setting=2\n"), Mode: 0o644},
			{Path: "/home/bob/.ssh/authorized_keys", Data: []byte("ssh-ed25519 AAAA bob\n"), Mode: 0o600, Owner: "bob"},
		},
		Final: []File{{Path: "/etc/fstab", Data: []byte("/swapfile none swap sw 0 0\n")}},
		Touch: []string{"/etc/shadow", "/etc/app.link"},
		Dirs:  []Dir{{Path: "/home/bob", Mode: 0o750, Owner: "bob"}, {Path: "/home/bob/.ssh", Mode: 0o700, Owner: "bob"}},
		Undo:  []Action{NewAction("undo", "files"), {Kind: "early", Early: true}},
		Apply: func(ctx context.Context, w *Writer) error {
			for _, d := range []Dir{{Path: "/home/bob", Mode: 0o750, Owner: "bob"}, {Path: "/home/bob/.ssh", Mode: 0o700, Owner: "bob"}} {
				if err := w.Mkdir(d); err != nil {
					return err
				}
			}
			// What a command such as useradd does to a touched file.
			if err := os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("changed\n"), 0o600); err != nil {
				return err
			}
			os.Remove(filepath.Join(root, "etc/app.link"))
			os.Symlink("elsewhere", filepath.Join(root, "etc/app.link"))
			return w.WriteAll(fileStep(root).Files)
		},
	}
}

func TestApplyThenRollbackRestoresByteForByte(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root), Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if m.State != Waiting {
		t.Fatalf("state %s", m.State)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/app.conf")); string(b) != "setting=2\n" {
		t.Fatalf("not applied: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/fstab")); err == nil {
		t.Fatal("a Final file was written before confirm")
	}
	if os.Geteuid() == 0 {
		fi, _ := os.Stat(filepath.Join(root, "home/bob/.ssh/authorized_keys"))
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || fi.Mode().Perm() != 0o600 {
			t.Errorf("authorized_keys %v owned by %d", fi.Mode(), st.Uid)
		}
	}
	if id, _ := s.Pending(); id != m.ID {
		t.Fatalf("pending %q, want %s", id, m.ID)
	}
	m, err = s.Rollback(context.Background(), m.ID, "test", RollbackOptions{Handlers: testHandlers(root)})
	if err != nil {
		t.Fatal(err)
	}
	if m.State != RolledBack || len(m.Errors) > 0 {
		t.Fatalf("state %s errors %v", m.State, m.Errors)
	}
	sameTree(t, before, treeHash(t, root))
	acts, _ := os.ReadFile(filepath.Join(root, "actions"))
	if string(acts) != "early \nundo \"files\"\n" {
		t.Errorf("undo actions ran as %q, want early then undo", acts)
	}
	if id, _ := s.Pending(); id != "" {
		t.Errorf("still pending: %s", id)
	}
	if n, err := s.LastRollback(); err != nil || n == nil || n.ID != m.ID || n.Reason != "test" {
		t.Errorf("last rollback note %+v, %v", n, err)
	}
	// A second rollback is a no-op.
	if _, err := s.Rollback(context.Background(), m.ID, "again", RollbackOptions{Handlers: testHandlers(root)}); err != nil {
		t.Error(err)
	}
}

func TestFailedStepRollsBackEverything(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	failing := &Step{Layer: "broken", Files: []File{{Path: "/etc/other.conf", Data: []byte("x")}},
		Apply: func(ctx context.Context, w *Writer) error {
			if err := w.WriteAll([]File{{Path: "/etc/other.conf", Data: []byte("x")}}); err != nil {
				return err
			}
			return errors.New("sshd -t: bad line")
		}}
	_, err := s.Apply(context.Background(), []*Step{fileStep(root), failing}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root)})
	var rb *RolledBackError
	if !errors.As(err, &rb) || !strings.Contains(rb.Reason, "broken: sshd -t: bad line") {
		t.Fatalf("err %v, want a rollback naming the step", err)
	}
	sameTree(t, before, treeHash(t, root))
}

func TestUndeclaredWriteFails(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	sneaky := &Step{Layer: "sneaky", Files: []File{{Path: "/etc/a", Data: []byte("a")}},
		Apply: func(ctx context.Context, w *Writer) error { return w.Write(File{Path: "/etc/b", Data: []byte("b")}) }}
	_, err := s.Apply(context.Background(), []*Step{sneaky}, Options{Timer: inlineTimer{}})
	if err == nil || !strings.Contains(err.Error(), "not declared") {
		t.Fatalf("err %v", err)
	}
	sameTree(t, before, treeHash(t, root))
}

func TestProbeFailureRollsBack(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	_, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root),
		Probe: func(context.Context) error { return errors.New("public 203.0.113.5:22: connection refused") }})
	var rb *RolledBackError
	if !errors.As(err, &rb) || !strings.Contains(rb.Reason, "self-probe: public") {
		t.Fatalf("err %v", err)
	}
	sameTree(t, before, treeHash(t, root))
}

func TestConfirmWritesFinalFilesAndRefusesTheApplyingSession(t *testing.T) {
	root := fixture(t)
	s := NewStore(root)
	applying := "198.51.100.2 50000 198.51.100.1 22"
	st := fileStep(root)
	st.Confirm = []Action{NewAction("confirm", 1)}
	m, err := s.Apply(context.Background(), []*Step{st}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root), Session: applying})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	loaded, _ := s.Load(m.ID)
	// The applying session: its sshd process started before the change
	// took effect.
	old := Proof{Operator: host.Operator{SSHD: 100, SSHDStart: loaded.ActivatedTicks - 500, Conn: mustConn(applying), ConnFrom: "socket"}}
	for _, p := range []Proof{{}, old} {
		if _, err := s.Confirm(ctx, m.ID, ConfirmOptions{Proof: p, Handlers: testHandlers(root)}); err == nil {
			t.Errorf("confirm from %+v accepted", p.Operator)
		}
	}
	fresh := Proof{Operator: host.Operator{SSHD: 101, SSHDStart: loaded.ActivatedTicks + 1, Conn: mustConn("198.51.100.2 50001 198.51.100.1 22"), ConnFrom: "socket"}}
	m, err = s.Confirm(ctx, m.ID, ConfirmOptions{Proof: fresh, Handlers: testHandlers(root)})
	if err != nil {
		t.Fatal(err)
	}
	if m.State != Confirmed {
		t.Fatalf("state %s", m.State)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/fstab")); string(b) != "/swapfile none swap sw 0 0\n" {
		t.Errorf("fstab %q", b)
	}
	if acts, _ := os.ReadFile(filepath.Join(root, "actions")); string(acts) != "confirm 1\n" {
		t.Errorf("actions %q", acts)
	}
	if id, _ := s.Pending(); id != "" {
		t.Errorf("pending after confirm: %s", id)
	}
	// Confirmed and latest: it may still be rolled back, boot files too.
	before := fixture(t)
	if _, err = s.Rollback(ctx, m.ID, "changed my mind", RollbackOptions{Handlers: testHandlers(root)}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(root, "actions"))
	sameTree(t, treeHash(t, before), treeHash(t, root))
}

func TestPendingChangeRefusesAnother(t *testing.T) {
	root := fixture(t)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply(context.Background(), []*Step{{Layer: "x", Files: []File{{Path: "/etc/x", Data: []byte("x")}}}}, Options{Timer: inlineTimer{}})
	var pe *PendingError
	if !errors.As(err, &pe) || pe.ID != m.ID {
		t.Fatalf("err %v", err)
	}
}

func mustConn(s string) host.Conn {
	c, ok := host.ParseSSHConnection(s)
	if !ok {
		panic(s)
	}
	return c
}

// TestCheckProof is the confirmation rule, case by case: the start-time
// rule (a tab opened before the change, a ControlMaster connection reused,
// a connection accepted in the very tick the change took effect), hops
// from the host itself, the port after a move and the VPN after SSH
// becomes VPN-only.
func TestCheckProof(t *testing.T) {
	act := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	m := &Manifest{ID: "20260102T150405Z-abcdef", Activated: act, ActivatedTicks: 100_000, BootID: "boot-a"}
	moved := *m
	moved.ConfirmPorts = []uint16{2222}
	vpnOnly := *m
	vpnOnly.ConfirmVia = []netip.Prefix{netip.MustParsePrefix("10.8.0.0/24")}
	own := func(a netip.Addr) bool { return a.IsLoopback() || a == netip.MustParseAddr("203.0.113.1") }
	op := func(start uint64, conn string) host.Operator {
		return host.Operator{SSHD: 4242, SSHDStart: start, Conn: mustConn(conn), ConnFrom: "socket"}
	}
	for _, c := range []struct {
		name string
		m    *Manifest
		p    Proof
		rule string // "" accepts
	}{
		{"new connection", m, Proof{Operator: op(100_001, "198.51.100.9 40000 203.0.113.1 22"), Own: own, BootID: "boot-a"}, ""},
		{"not in ssh", m, Proof{Operator: host.Operator{Conn: mustConn("198.51.100.9 40000 203.0.113.1 22")}, Own: own}, "not-ssh"},
		{"no connection", m, Proof{Operator: host.Operator{SSHD: 1, SSHDStart: 100_001}, Own: own}, "no-connection"},
		{"connection only from the environment", m, Proof{Operator: host.Operator{SSHD: 1, SSHDStart: 100_001, Conn: mustConn("198.51.100.9 40000 203.0.113.1 2222"), ConnFrom: "environment"}, Own: own}, "no-connection"},
		{"tab opened before", m, Proof{Operator: op(99_000, "198.51.100.9 40001 203.0.113.1 22"), Own: own, BootID: "boot-a"}, "before-change"},
		{"controlmaster reused: same sshd", m, Proof{Operator: op(42, "198.51.100.9 40000 203.0.113.1 22"), Own: own, BootID: "boot-a"}, "before-change"},
		{"accepted in the activation tick", m, Proof{Operator: op(100_000, "198.51.100.9 40000 203.0.113.1 22"), Own: own, BootID: "boot-a"}, "before-change"},
		{"loopback hop", m, Proof{Operator: op(100_500, "127.0.0.1 40000 127.0.0.1 22"), Own: own, BootID: "boot-a"}, "own-host"},
		{"ipv6 loopback hop", m, Proof{Operator: op(100_500, "::1 40000 ::1 22"), Own: own, BootID: "boot-a"}, "own-host"},
		{"hop to own public address", m, Proof{Operator: op(100_500, "203.0.113.1 40000 203.0.113.1 22"), Own: own, BootID: "boot-a"}, "own-host"},
		{"hop, nil Own", m, Proof{Operator: op(100_500, "10.0.0.5 40000 10.0.0.5 22"), BootID: "boot-a"}, "own-host"},
		{"after a reboot start times do not compare", m, Proof{Operator: op(5, "198.51.100.9 40000 203.0.113.1 22"), Own: own, BootID: "boot-b"}, ""},
		{"old port after a move", &moved, Proof{Operator: op(100_500, "198.51.100.9 40000 203.0.113.1 22"), Own: own}, "old-port"},
		{"new port after a move", &moved, Proof{Operator: op(100_500, "198.51.100.9 40000 203.0.113.1 2222"), Own: own}, ""},
		{"public when vpn-only", &vpnOnly, Proof{Operator: op(100_500, "198.51.100.9 40000 203.0.113.1 22"), Own: own}, "not-vpn"},
		{"over the vpn", &vpnOnly, Proof{Operator: op(100_500, "10.8.0.2 40000 10.8.0.1 22"), Own: own}, ""},
		{"not activated yet", &Manifest{ID: m.ID}, Proof{Operator: op(100_500, "198.51.100.9 40000 203.0.113.1 22"), Own: own}, "before-change"},
	} {
		err := CheckProof(c.m, c.p)
		var r *ConfirmRule
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.rule != "" && (!errors.As(err, &r) || r.Rule != c.rule):
			t.Errorf("%s: got %v, want rule %s", c.name, err, c.rule)
		case c.rule != "" && !strings.Contains(err.Error(), "moat confirm") && c.rule != "old-port" && c.rule != "not-vpn":
			t.Errorf("%s: the refusal does not say what would count: %v", c.name, err)
		}
	}
	// The refusal says when the connection was opened, in wall time.
	err := CheckProof(m, Proof{Operator: op(99_000, "198.51.100.9 40001 203.0.113.1 22"), BootID: "boot-a"})
	if err == nil || !strings.Contains(err.Error(), "15:03:55") || !strings.Contains(err.Error(), "15:04:05") {
		t.Errorf("refusal: %v", err)
	}
}

func TestConfirmAfterDeadlineRefused(t *testing.T) {
	root := fixture(t)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Window: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := s.Confirm(context.Background(), m.ID, ConfirmOptions{Unattended: true}); err == nil || !strings.Contains(err.Error(), "window closed") {
		t.Fatalf("err %v", err)
	}
}

func TestFailedConfirmActionRollsBack(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	st := fileStep(root)
	st.Confirm = []Action{{Kind: "fail"}}
	m, err := s.Apply(context.Background(), []*Step{st}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Confirm(context.Background(), m.ID, ConfirmOptions{Unattended: true, Handlers: testHandlers(root)})
	var rb *RolledBackError
	if !errors.As(err, &rb) {
		t.Fatalf("err %v", err)
	}
	sameTree(t, before, treeHash(t, root))
}

func TestWatchdogRollsBackWhenNotConfirmed(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: testWatchdog(root), Handlers: testHandlers(root), Window: 800 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if m.Timer.Kind != "watchdog" || !WatchdogAlive(m) {
		t.Fatalf("timer %+v not alive", m.Timer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Only watch: the watchdog, another process, must do the rollback.
	for m.State != RolledBack {
		if ctx.Err() != nil {
			t.Fatalf("no rollback; state %s", m.State)
		}
		time.Sleep(50 * time.Millisecond)
		m, _ = s.Load(m.ID)
	}
	if !strings.Contains(m.Reason, "no confirm within") {
		t.Errorf("reason %q", m.Reason)
	}
	sameTree(t, before, treeHash(t, root))
	waitGone(t, m)
}

func TestWatchdogGoneAfterConfirm(t *testing.T) {
	root := fixture(t)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: testWatchdog(root), Handlers: testHandlers(root), Window: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if m, err = s.Confirm(context.Background(), m.ID, ConfirmOptions{Unattended: true, Handlers: testHandlers(root)}); err != nil {
		t.Fatal(err)
	}
	if WatchdogAlive(m) {
		t.Fatal("watchdog still running after confirm")
	}
}

// TestWatchdogOutlivesTheApplyingProcess kills the process that applied
// the change (and its process group, as a dropped SSH session would):
// the rollback must still happen.
func TestWatchdogOutlivesTheApplyingProcess(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"=apply-and-hang", envRoot+"="+root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	id := strings.TrimSpace(string(buf[:n]))
	if ValidID(id) != nil {
		cmd.Process.Kill()
		t.Fatalf("applying process said %q", buf[:n])
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	s := NewStore(root)
	deadline := time.Now().Add(10 * time.Second)
	var m *Manifest
	for time.Now().Before(deadline) {
		if m, _ = s.Load(id); m != nil && m.State == RolledBack {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m == nil || m.State != RolledBack {
		t.Fatalf("not rolled back after the applying process died: %+v", m)
	}
	sameTree(t, before, treeHash(t, root))
	waitGone(t, m)
}

func waitGone(t *testing.T, m *Manifest) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !WatchdogAlive(m) {
			return
		}
	}
	t.Errorf("watchdog %d still alive", m.Timer.PID)
}

func TestRecoverExpired(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	m, err := s.Apply(context.Background(), []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root), Window: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.RecoverExpired(context.Background(), RollbackOptions{}); got != nil || err != nil {
		t.Fatalf("recovered inside the grace period: %v %v", got, err)
	}
	// Pretend the deadline passed long ago.
	unlock, _ := s.lock(m.ID, time.Second)
	m, _ = s.Load(m.ID)
	m.Deadline = time.Now().Add(-time.Hour)
	s.save(m)
	unlock()
	got, err := s.RecoverExpired(context.Background(), RollbackOptions{Handlers: testHandlers(root)})
	if err != nil || got == nil || got.State != RolledBack {
		t.Fatalf("recover: %+v %v", got, err)
	}
	sameTree(t, before, treeHash(t, root))
}

func TestRollbackOfAnOlderConfirmedChangeRefused(t *testing.T) {
	root := fixture(t)
	s := NewStore(root)
	ctx := context.Background()
	var ids []string
	for i := range 2 {
		st := &Step{Layer: "n", Files: []File{{Path: "/etc/n", Data: []byte(fmt.Sprint(i))}}}
		m, err := s.Apply(ctx, []*Step{st}, Options{Timer: inlineTimer{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Confirm(ctx, m.ID, ConfirmOptions{Unattended: true}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		time.Sleep(1100 * time.Millisecond) // IDs sort by second
	}
	if _, err := s.Rollback(ctx, ids[0], "x", RollbackOptions{}); err == nil {
		t.Fatal("rolled back a confirmed change that is not the latest")
	}
	list, _ := s.List()
	if len(list) != 2 || list[0].ID != ids[0] {
		t.Fatalf("list %v", list)
	}
}

func TestSystemdTimerArgv(t *testing.T) {
	m := &Manifest{ID: "20250102T150405Z-1a2b3c", Window: 120 * time.Second}
	got := SystemdTimer{Moat: "/usr/local/bin/moat"}.Argv(m)
	want := []string{"systemd-run", "--quiet", "--unit=moat-rollback-20250102T150405Z-1a2b3c",
		"--description=moat: roll back change 20250102T150405Z-1a2b3c unless confirmed",
		"--on-active=120s", "--timer-property=AccuracySec=100ms", "--property=TimeoutStartSec=infinity",
		"--", "/usr/local/bin/moat", "change", "rollback", "--timer", "20250102T150405Z-1a2b3c"}
	if !slices.Equal(got, want) {
		t.Errorf("argv\n got %q\nwant %q", got, want)
	}
}

func TestBootGuard(t *testing.T) {
	root := t.TempDir()
	if err := InstallBootGuard(root, "/usr/local/bin/moat"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, GuardUnitPath))
	for _, want := range []string{"ConditionPathExists=/var/lib/moat/changes/pending", "ExecStart=/usr/local/bin/moat rollback --boot", "Before=ssh.service"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("unit lacks %q:\n%s", want, b)
		}
	}
	if l, _ := os.Readlink(filepath.Join(root, GuardWantsLink)); l != "../moat-change-guard.service" {
		t.Errorf("wants link %q", l)
	}
	if err := InstallBootGuard(root, "/usr/local/bin/moat"); err != nil {
		t.Fatal(err)
	}
	// At boot, the pending change is rolled back.
	root2 := fixture(t)
	before := treeHash(t, root2)
	s := NewStore(root2)
	if _, err := s.Apply(context.Background(), []*Step{fileStep(root2)}, Options{Timer: inlineTimer{}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.RollbackAtBoot(context.Background(), RollbackOptions{Handlers: testHandlers(root2)})
	if err != nil || m == nil || m.State != RolledBack {
		t.Fatalf("%+v %v", m, err)
	}
	os.Remove(filepath.Join(root2, "actions"))
	sameTree(t, before, treeHash(t, root2))
}

// TestApplierDeathRollsBackAtOnce: moat apply dies between two steps
// (SIGKILL) of a change whose window is an hour: the watchdog rolls back
// at once, not when the steps' budget and the window have passed, and
// confirm says what happened rather than "still being applied".
func TestApplierDeathRollsBackAtOnce(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"=apply-and-hold", envRoot+"="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	id := strings.TrimSpace(string(buf[:n]))
	if ValidID(id) != nil {
		cmd.Process.Kill()
		t.Fatalf("applying process said %q", buf[:n])
	}
	s := NewStore(root)
	m, _ := s.Load(id)
	if m.State != Applying || m.Applier != cmd.Process.Pid || !m.Deadline.After(time.Now().Add(time.Hour)) {
		t.Fatalf("before the kill: state %s applier %d (child %d) deadline %s", m.State, m.Applier, cmd.Process.Pid, m.Deadline)
	}
	if _, err := s.Confirm(context.Background(), id, ConfirmOptions{Unattended: true}); err == nil || !strings.Contains(err.Error(), "still being applied") {
		t.Errorf("confirm while the applier lives: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m, _ = s.Load(id); m.State == RolledBack {
			break
		}
	}
	if m.State != RolledBack || !strings.Contains(m.Reason, "died") {
		t.Fatalf("state %s, reason %q", m.State, m.Reason)
	}
	sameTree(t, before, treeHash(t, root))
	waitGone(t, m)
	// Confirm now names the rollback, as apply would.
	if _, err := s.Confirm(context.Background(), id, ConfirmOptions{Unattended: true}); err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Errorf("confirm after the rollback: %v", err)
	}
}

// TestDeadApplierFoundByConfirm: without a watchdog (killed too), the next
// confirm finds the dead applier, rolls back, and says so.
func TestDeadApplierFoundByConfirm(t *testing.T) {
	root := fixture(t)
	before := treeHash(t, root)
	s := NewStore(root)
	m, err := s.begin([]*Step{fileStep(root)}, Options{Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	dead.Run()
	m.Applier, m.ApplierStart = dead.Process.Pid, 1
	s.save(m)
	_, err = s.Confirm(context.Background(), m.ID, ConfirmOptions{Unattended: true, Handlers: testHandlers(root)})
	var rb *RolledBackError
	if !errors.As(err, &rb) || !strings.Contains(rb.Reason, "died") {
		t.Fatalf("confirm: %v", err)
	}
	sameTree(t, before, treeHash(t, root))
	if err := s.RefusePending(); err != nil {
		t.Errorf("after the rollback: %v", err)
	}
}

// TestDeadlineArmedBeforeTheFirstStep: the deadline counts the planned
// layers' budgets and the window, then moves to (steps done + window).
func TestDeadlineArmedBeforeTheFirstStep(t *testing.T) {
	root := fixture(t)
	s := NewStore(root)
	var during *Manifest
	start := time.Now()
	st := fileStep(root)
	st.Layer = "sshd"
	m, err := s.Apply(context.Background(), []*Step{st}, Options{Window: 40 * time.Second, Timer: inlineTimer{}, AfterStep: func(l string) {
		if l == "sshd" {
			id, _ := s.Pending()
			during, _ = s.Load(id)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := StepsBudget([]string{"sshd"}) + 40*time.Second
	if d := during.Deadline.Sub(start); d < want-time.Second || d > want+5*time.Second {
		t.Errorf("deadline during the steps: %s after start, want about %s", d, want)
	}
	// The deadline moved to (steps done + window); the stamp a
	// confirming connection must postdate comes after the probe, so a
	// little later.
	if d := m.Deadline.Sub(m.Activated); d > 40*time.Second || d < 35*time.Second {
		t.Errorf("deadline after the steps: stamp + %s, want the window from when the steps were done", d)
	}
	if m.ActivatedTicks == 0 || m.BootID == "" {
		t.Errorf("activation not recorded: %+v", m)
	}
}

func TestCheckWindow(t *testing.T) {
	for d, ok := range map[time.Duration]bool{0: false, -5 * time.Second: false, 29 * time.Second: false, 30 * time.Second: true,
		2 * time.Minute: true, 30 * time.Minute: true, 31 * time.Minute: false, 720 * time.Hour: false} {
		err := CheckWindow(d, MinWindow)
		if (err == nil) != ok {
			t.Errorf("%s: %v", d, err)
		}
		if err != nil && !strings.Contains(err.Error(), "between 30s and 30m") {
			t.Errorf("%s: the error does not name the range: %v", d, err)
		}
	}
}

// TestRollbackOlderConfirmedAfterLaterRolledBack: order is by what is
// still in effect: once the later change is rolled back, the earlier
// confirmed one may be.
func TestRollbackOlderConfirmedAfterLaterRolledBack(t *testing.T) {
	root := fixture(t)
	s := NewStore(root)
	ctx := context.Background()
	first, err := s.Apply(ctx, []*Step{fileStep(root)}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Confirm(ctx, first.ID, ConfirmOptions{Unattended: true, Handlers: testHandlers(root)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // IDs order by the second
	second, err := s.Apply(ctx, []*Step{{Layer: "x", Files: []File{{Path: "/etc/x", Data: []byte("x")}}}}, Options{Timer: inlineTimer{}, Handlers: testHandlers(root)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RefusePending(); err == nil {
		t.Error("RefusePending passed while a change waits")
	}
	if _, err := s.Confirm(ctx, second.ID, ConfirmOptions{Unattended: true, Handlers: testHandlers(root)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollback(ctx, first.ID, "test", RollbackOptions{Handlers: testHandlers(root)}); err == nil || !strings.Contains(err.Error(), second.ID) {
		t.Fatalf("rolling back under a later change in effect: %v", err)
	}
	if _, err := s.Rollback(ctx, second.ID, "test", RollbackOptions{Handlers: testHandlers(root)}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Rollback(ctx, first.ID, "test", RollbackOptions{Handlers: testHandlers(root)}); err != nil || m.State != RolledBack {
		t.Fatalf("rolling back the earlier change once the later one was: %v", err)
	}
}
