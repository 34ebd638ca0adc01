package host

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// procTree builds a fake /proc under a temp root.
type procTree struct {
	t    *testing.T
	root string
}

func newProcTree(t *testing.T) *procTree { return &procTree{t: t, root: t.TempDir()} }

// proc adds a process: comm, parent, start ticks, argv, environment.
func (p *procTree) proc(pid, ppid int, comm string, start uint64, argv []string, env ...string) {
	p.t.Helper()
	dir := filepath.Join(p.root, "proc", fmt.Sprint(pid))
	if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
		p.t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 %d 1000 100 18446744073709551615\n", pid, comm, ppid, pid, pid, start)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	write("stat", stat)
	write("comm", comm+"\n")
	write("cmdline", strings.Join(argv, "\x00")+"\x00")
	e := ""
	for _, kv := range env {
		e += kv + "\x00"
	}
	write("environ", e)
}

// socket gives pid an established TCP socket in its /proc/PID/net/tcp.
func (p *procTree) socket(pid int, inode int, local, remote string) {
	p.t.Helper()
	dir := filepath.Join(p.root, "proc", fmt.Sprint(pid))
	os.Symlink(fmt.Sprintf("socket:[%d]", inode), filepath.Join(dir, "fd", "3"))
	os.Symlink("/dev/null", filepath.Join(dir, "fd", "0"))
	os.MkdirAll(filepath.Join(dir, "net"), 0o755)
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n" +
		fmt.Sprintf("   1: %s %s 01 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n", local, remote, inode)
	os.WriteFile(filepath.Join(dir, "net", "tcp"), []byte(tcp), 0o644)
}

const (
	listener = 300
	sshdPriv = 400
	sshdUser = 401
	shell    = 500
)

// session lays out: listener sshd → "sshd: deploy [priv]" → "sshd:
// deploy@pts/0" → bash (SSH_CONNECTION in its environment).
func session(t *testing.T, start uint64, conn string) *procTree {
	p := newProcTree(t)
	p.proc(1, 0, "init", 1, []string{"/sbin/init"})
	p.proc(listener, 1, "sshd", 10, []string{"sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"})
	p.proc(sshdPriv, listener, "sshd", start, []string{"sshd: deploy [priv]"})
	p.proc(sshdUser, sshdPriv, "sshd", start+3, []string{"sshd: deploy@pts/0"})
	p.proc(shell, sshdUser, "bash", start+5, []string{"-bash"}, "HOME=/home/deploy", "SSH_CONNECTION="+conn, "USER=deploy")
	return p
}

func TestOperatorFromTheShell(t *testing.T) {
	p := session(t, 5000, "198.51.100.2 40000 198.51.100.1 22")
	o := New(p.root).Operator(shell, nil)
	if o.SSHD != sshdUser || o.SSHDStart != 5003 || o.User != "deploy" {
		t.Fatalf("%+v", o)
	}
	if o.Conn.String() != "198.51.100.2 40000 198.51.100.1 22" || o.ConnFrom != "environment" {
		t.Fatalf("conn %q from %q", o.Conn, o.ConnFrom)
	}
}

// TestOperatorUnderSudo: sudo drops SSH_CONNECTION; the walk finds it in
// the shell's environment, and the sshd above it.
func TestOperatorUnderSudo(t *testing.T) {
	p := session(t, 5000, "198.51.100.2 40000 198.51.100.1 22")
	p.proc(600, shell, "sudo", 6000, []string{"sudo", "moat", "confirm"}, "SUDO_USER=deploy")
	p.proc(601, 600, "moat", 6001, []string{"moat", "confirm"}, "SUDO_USER=deploy")
	o := New(p.root).Operator(601, func(string) string { return "" })
	if o.SSHD != sshdUser || o.Conn.Client.Port() != 40000 || o.ConnFrom != "environment of PID 500" {
		t.Fatalf("%+v", o)
	}
}

// TestOperatorSocketBeatsEnvironment: SSH_CONNECTION is the user's to set;
// the sshd process's own socket is not.
func TestOperatorSocketBeatsEnvironment(t *testing.T) {
	p := session(t, 5000, "198.51.100.2 40000 198.51.100.1 2222")
	p.socket(sshdUser, 9999, "016433C6:0016", "026433C6:9C41")
	o := New(p.root).Operator(shell, nil)
	if o.ConnFrom != "socket" || o.Conn.String() != "198.51.100.2 40001 198.51.100.1 22" {
		t.Fatalf("%+v", o)
	}
}

// TestOperatorNoSSHD: tmux's server outlives the login that started it and
// hangs off init: no sshd above, whatever its environment says.
func TestOperatorNoSSHD(t *testing.T) {
	p := session(t, 5000, "198.51.100.2 40000 198.51.100.1 22")
	p.proc(700, 1, "tmux: server", 7000, []string{"tmux"}, "SSH_CONNECTION=198.51.100.2 40000 198.51.100.1 22")
	p.proc(701, 700, "bash", 7001, []string{"bash"}, "SSH_CONNECTION=198.51.100.2 40000 198.51.100.1 22")
	o := New(p.root).Operator(701, nil)
	if o.InSSH() {
		t.Fatalf("tmux counted as an ssh session: %+v", o)
	}
	if !o.Conn.Valid() {
		t.Errorf("the address is still the operator's (for init and the lockout check): %+v", o)
	}
}

// TestOperatorControlMaster: a second session multiplexed over a master
// connection runs under the same sshd process, so it has the master's
// start, however late the session itself began.
func TestOperatorControlMaster(t *testing.T) {
	p := session(t, 5000, "198.51.100.2 40000 198.51.100.1 22")
	p.proc(800, sshdUser, "bash", 90000, []string{"bash", "-c", "moat confirm"}, "SSH_CONNECTION=198.51.100.2 40000 198.51.100.1 22")
	o := New(p.root).Operator(800, nil)
	if o.SSHD != sshdUser || o.SSHDStart != 5003 {
		t.Fatalf("%+v", o)
	}
}

// TestOperatorLoop: a parent chain that loops ends.
func TestOperatorLoop(t *testing.T) {
	p := newProcTree(t)
	p.proc(10, 11, "a", 1, nil)
	p.proc(11, 10, "b", 1, nil)
	if o := New(p.root).Operator(10, nil); o.InSSH() {
		t.Fatalf("%+v", o)
	}
}

func TestParseProcStat(t *testing.T) {
	st, err := ParseProcStat([]byte("42 (a) b (c)) R 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 100 0\n"))
	if err != nil || st.Comm != "a) b (c)" || st.State != 'R' || st.PPid != 7 || st.Start != 123456 {
		t.Fatalf("%+v %v", st, err)
	}
	for _, bad := range []string{"", "42 a R 7", "42 (x) R 7 1 2", "42 (x) R -1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "42 (x) RR 7 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 x"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSSHDTitleUser(t *testing.T) {
	for title, want := range map[string]string{
		"sshd: deploy@pts/0":          "deploy",
		"sshd: root@notty":            "root",
		"sshd: deploy [priv]":         "deploy",
		"sshd-session: ops@pts/3":     "ops",
		"sshd: /usr/sbin/sshd -D":     "",
		"sshd: unknown [net]":         "",
		"sshd: [accepted]":            "",
		"/usr/sbin/sshd -D -f x":      "",
		"sshd: 203.0.113.9 [preauth]": "",
	} {
		if got := SSHDTitleUser(title); got != want {
			t.Errorf("%q: %q, want %q", title, got, want)
		}
	}
}

func TestEnvironValue(t *testing.T) {
	env := []byte("A=1\x00SSH_CONNECTION=x y\x00SSH_CONNECTION=second\x00SSH_CONNECTION_X=no\x00")
	if v := EnvironValue(env, "SSH_CONNECTION"); v != "x y" {
		t.Fatalf("%q", v)
	}
	if v := EnvironValue(env, "B"); v != "" {
		t.Fatalf("%q", v)
	}
}

// TestBootTicksIsProcStartClock: a process started after BootTicks has a
// greater start time, on the live kernel.
func TestBootTicksIsProcStartClock(t *testing.T) {
	before, err := BootTicks()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	self, ok := New("").ProcStart(os.Getpid())
	if !ok {
		skipOrFail(t, "no /proc")
	}
	if self > before {
		t.Fatalf("this process started at %d, after BootTicks said %d", self, before)
	}
	// A child started after a tick boundary has a greater start.
	for t0, _ := BootTicks(); ; {
		if t1, _ := BootTicks(); t1 > t0 {
			break
		}
	}
	cmd := exec.Command("sleep", "1")
	if err := cmd.Start(); err != nil {
		skipOrFail(t, err.Error())
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if child, ok := New("").ProcStart(cmd.Process.Pid); !ok || child <= before {
		t.Fatalf("child started at %d, not after %d", child, before)
	}
	after, _ := BootTicks()
	if after < before {
		t.Fatalf("boot clock went back: %d then %d", before, after)
	}
}

func TestOwnAddr(t *testing.T) {
	h := New(fixtureRoot)
	for a, want := range map[string]bool{"127.0.0.1": true, "::1": true, "::ffff:127.0.0.2": true, "0.0.0.0": true, "198.51.100.77": false} {
		if got := h.OwnAddr(netip.MustParseAddr(a)); got != want {
			t.Errorf("%s: %v", a, got)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("42 (sshd) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 100 0\n"))
	f.Add([]byte("1 ((sd-pam)) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 0"))
	f.Add([]byte("7 (a)b) Z"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseProcStat(b)
		if err != nil {
			return
		}
		if st.PPid < 0 || strings.ContainsRune(string(b[:0]), 0) {
			t.Fatalf("%+v", st)
		}
	})
}

func FuzzEnviron(f *testing.F) {
	f.Add([]byte("SSH_CONNECTION=198.51.100.2 40000 198.51.100.1 22\x00HOME=/root\x00"))
	f.Add([]byte("SSH_CONNECTION=\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := EnvironValue(b, "SSH_CONNECTION")
		if strings.ContainsRune(v, 0) {
			t.Fatalf("value holds a NUL: %q", v)
		}
		if c, ok := ParseSSHConnection(v); ok {
			if again, ok := ParseSSHConnection(c.String()); !ok || again != c {
				t.Fatalf("%q → %v → %v", v, c, again)
			}
		}
		SSHDTitleUser(string(b))
	})
}

func TestAcceptedKey(t *testing.T) {
	log := []byte(`Dec  6 17:18:01 vps sshd[100]: Accepted publickey for root from 198.51.100.2 port 40000 ssh2: ED25519 SHA256:old
Connection from 198.51.100.2 port 40001 on 198.51.100.1 port 22 rdomain ""
Accepted key ED25519 SHA256:bBW found at /etc/ssh/keys/root:1
Accepted publickey for deploy from 198.51.100.2 port 40001 ssh2: RSA SHA256:bBW
Accepted publickey for root from 198.51.100.2 port 400010 ssh2: ED25519 SHA256:wrongport
Accepted password for root from 198.51.100.2 port 40002 ssh2`)
	k, ok := AcceptedKey(log, netip.MustParseAddrPort("198.51.100.2:40001"))
	if !ok || k.User != "deploy" || k.Type != "RSA" || k.Fingerprint != "SHA256:bBW" {
		t.Fatalf("%+v %v", k, ok)
	}
	if k, ok := AcceptedKey(log, netip.MustParseAddrPort("198.51.100.2:40000")); !ok || k.Fingerprint != "SHA256:old" {
		t.Fatalf("first line: %+v %v", k, ok)
	}
	if _, ok := AcceptedKey(log, netip.MustParseAddrPort("198.51.100.2:40002")); ok {
		t.Fatal("a password login has no key")
	}
	if _, ok := AcceptedKey(nil, netip.MustParseAddrPort("198.51.100.2:40002")); ok {
		t.Fatal("empty log")
	}
}

func FuzzAcceptedKey(f *testing.F) {
	f.Add([]byte("Accepted publickey for root from 198.51.100.2 port 40000 ssh2: ED25519 SHA256:x\n"), uint16(40000))
	f.Add([]byte("\n\nAccepted publickey for  from 198.51.100.2 port 1 : a SHA256:"), uint16(1))
	f.Fuzz(func(t *testing.T, log []byte, port uint16) {
		k, ok := AcceptedKey(log, netip.AddrPortFrom(netip.MustParseAddr("198.51.100.2"), port))
		if ok && (k.User == "" || !strings.HasPrefix(k.Fingerprint, "SHA256:") || strings.ContainsAny(k.User, " \n")) {
			t.Fatalf("%+v", k)
		}
	})
}

func TestSSHSessions(t *testing.T) {
	p := session(t, 5000, "198.51.100.2 40000 198.51.100.1 22")
	p.socket(sshdUser, 9999, "016433C6:0016", "026433C6:9C41")
	p.socket(sshdPriv, 9999, "016433C6:0016", "026433C6:9C41") // the monitor holds it too
	got, err := New(p.root).SSHSessions()
	if err != nil || len(got) != 1 || got[0].Conn.String() != "198.51.100.2 40001 198.51.100.1 22" || got[0].User != "deploy" {
		t.Fatalf("%+v %v", got, err)
	}
}

// A connection still authenticating shows the user name the client sent,
// which may hold an '@': only a logged-in session's title counts, so an
// attacker cannot make the daemon take its address for the operator's.
func TestLoggedInTitle(t *testing.T) {
	for title, want := range map[string]bool{
		"sshd: deploy@pts/0":         true,
		"sshd: deploy@notty":         true,
		"sshd-session: deploy@pts/3": true,
		"sshd: deploy [priv]":        false,
		"sshd: x@pts/0 [net]":        false,
		"sshd: evil@pts/0 [priv]":    false,
		"sshd: unknown [net]":        false,
		"sshd: [accepted]":           false,
		"sshd: @pts/0":               false,
		"sshd: a@b":                  false,
		"/usr/sbin/sshd -D":          false,
		"sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups": false,
	} {
		if got := loggedInTitle(title); got != want {
			t.Errorf("loggedInTitle(%q) = %v, want %v", title, got, want)
		}
	}
}
