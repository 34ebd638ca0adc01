package host

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestListenersFixture(t *testing.T) {
	ls, err := New(fixtureRoot).Listeners()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"tcp 0.0.0.0:22 inode=1001 pid=100 sshd wildcard",
		"tcp [::]:22 inode=2001 pid=100 sshd wildcard",
		"tcp 0.0.0.0:80 inode=2003 pid=250 nginx wildcard", // ::ffff:0.0.0.0, unmapped
		"tcp 203.0.113.5:443 inode=1003 pid=250 nginx public",
		"tcp [2001:db8::5]:443 inode=2005 pid=250 nginx public",
		"tcp 127.0.0.1:5432 inode=1002 pid=200 postgres loopback",
		"tcp [::1]:5432 inode=2002 pid=200 postgres loopback",
		"tcp 100.100.1.2:8080 inode=1005 pid=600 tailscaled vpn",
		"tcp 10.0.0.1:8081 inode=1006 pid=0  private",
		"tcp 203.0.113.5:8443 inode=2004 pid=250 nginx public",
		"tcp 10.8.0.1:9100 inode=1007 pid=650 prometheus-node vpn", // on wg0
		"udp 127.0.0.53:53 inode=3002 pid=400 systemd-resolve loopback",
		"udp 0.0.0.0:68 inode=3001 pid=500 dhclient wildcard",
		"udp 0.0.0.0:443 inode=3005 pid=300 caddy wildcard", // SO_REUSEPORT pair, lowest PID
		"udp [fe80::1]:546 inode=4002 pid=900 avahi-daemon private",
		"udp [::]:5353 inode=4001 pid=900 avahi-daemon wildcard",
		"udp 0.0.0.0:51820 inode=0 pid=0  wildcard", // kernel WireGuard socket
	}
	var got []string
	for _, l := range ls {
		got = append(got, fmt.Sprintf("%s %s inode=%d pid=%d %s %s", l.Proto, l.Addr, l.Inode, l.PID, l.Process, l.Scope))
		if l.OwnerUnknown {
			t.Errorf("%s %s: OwnerUnknown as root-equivalent reader", l.Proto, l.Addr)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range ls {
		if l.PID == 250 && l.Cmdline != "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;" {
			t.Errorf("nginx cmdline = %q", l.Cmdline)
		}
		if l.PID == 200 && l.UID != 106 {
			t.Errorf("postgres UID = %d", l.UID)
		}
	}
}

func TestListenersNoIPv6(t *testing.T) {
	dir := tempFixture(t)
	for _, p := range []string{"tcp6", "udp6"} {
		if err := os.Remove(filepath.Join(dir, "proc/net", p)); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := New(dir).Listeners()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Addr.Addr().Is6() {
			t.Errorf("IPv6 listener %v without tcp6/udp6", l.Addr)
		}
	}
}

// TestListenersLive opens a TCP listener and a UDP socket on loopback and
// expects Listeners to find both, owned by this process.
func TestListenersLive(t *testing.T) {
	requireRoot(t)
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	ul, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}

	ls, err := New("").Listeners()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		proto string
		port  int
	}{{"tcp", tl.Addr().(*net.TCPAddr).Port}, {"udp", ul.LocalAddr().(*net.UDPAddr).Port}} {
		found := false
		for _, l := range ls {
			if l.Proto != want.proto || int(l.Addr.Port()) != want.port {
				continue
			}
			found = true
			if l.PID != os.Getpid() || l.Process != strings.TrimSpace(string(comm)) || l.Scope != ScopeLoopback ||
				l.Addr.Addr().String() != "127.0.0.1" || l.OwnerUnknown {
				t.Errorf("%s listener = %+v, want pid %d, process %q, loopback", want.proto, l, os.Getpid(), comm)
			}
		}
		if !found {
			t.Errorf("%s listener on port %d not found among %d", want.proto, want.port, len(ls))
		}
	}
}

func BenchmarkListeners(b *testing.B) {
	h := New("")
	for b.Loop() {
		if _, err := h.Listeners(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPermissionDenied checks that reads a non-root user cannot make are
// reported as such rather than as absence. As root it re-runs itself as
// nobody, since root reads everything.
func TestPermissionDenied(t *testing.T) {
	if dir := os.Getenv("MOAT_HOST_UNPRIVILEGED_ROOT"); dir != "" {
		checkPermissionDenied(t, dir)
		return
	}
	base, err := os.MkdirTemp("", "moat-host-perm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "root")
	copyTree(t, fixtureRoot, dir)
	for _, p := range []string{"etc/shadow", "proc/100/fd", "home/alice/.ssh"} {
		if err := os.Chmod(filepath.Join(dir, p), 0); err != nil {
			t.Fatal(err)
		}
	}
	defer os.Chmod(filepath.Join(dir, "proc/100/fd"), 0o755) // let RemoveAll in
	defer os.Chmod(filepath.Join(dir, "home/alice/.ssh"), 0o755)
	if os.Geteuid() != 0 {
		checkPermissionDenied(t, dir)
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(base, "host.test")
	copyTree(t, self, exe)
	if err := os.Chmod(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestPermissionDenied$", "-test.v")
	cmd.Dir = base
	cmd.Env = append(os.Environ(), "MOAT_HOST_UNPRIVILEGED_ROOT="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestPermissionDenied") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func checkPermissionDenied(t *testing.T, dir string) {
	if os.Geteuid() == 0 {
		t.Fatal("must not run as root")
	}
	h := New(dir)
	_, err := h.ReadFile("/etc/shadow")
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "run as root") {
		t.Errorf("ReadFile(/etc/shadow) error = %v, want permission denied with a hint", err)
	}
	users, err := h.Users()
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Users error = %v, want permission denied", err)
	}
	if len(users) == 0 {
		t.Fatal("Users returned no users with an unreadable shadow")
	}
	for _, u := range users {
		if u.Name == "root" && u.Password.Kind != PasswordUnknown {
			t.Errorf("root password = %v, want unknown", u.Password)
		}
		if u.Name == "old" && u.Password.Kind != PasswordHash {
			t.Errorf("old's passwd hash = %v, want hash", u.Password)
		}
	}
	ls, err := h.Listeners()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		switch {
		case l.Inode == 1001 || l.Inode == 2001: // sshd's fds are unreadable
			if l.PID != 0 || !l.OwnerUnknown {
				t.Errorf("%v: pid %d, OwnerUnknown %v; want unknown owner", l.Addr, l.PID, l.OwnerUnknown)
			}
		case l.Inode == 0:
			if l.OwnerUnknown {
				t.Errorf("%v: kernel socket flagged OwnerUnknown", l.Addr)
			}
		case l.PID == 0 && l.Inode != 1006:
			t.Errorf("%v: owner lost: %+v", l.Addr, l)
		}
	}
}

// TestSockDiagMatchesProc checks the netlink fast path against
// /proc/net/tcp{,6} for a listener of our own, in both families.
func TestSockDiagMatchesProc(t *testing.T) {
	var want []Socket
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			if network == "tcp6" {
				continue // no IPv6 here
			}
			t.Fatal(err)
		}
		defer l.Close()
		want = append(want, Socket{Proto: "tcp", Local: l.Addr().(*net.TCPAddr).AddrPort(), State: tcpListen, UID: os.Geteuid()})
	}
	diag, err := sockDiagListeningTCP()
	if err != nil {
		skipOrFail(t, "sock_diag unavailable: "+err.Error())
	}
	var proc []Socket
	for _, p := range []string{"tcp", "tcp6"} {
		f, err := os.Open("/proc/net/" + p)
		if err != nil {
			continue
		}
		err = parseProcNet(f, p, true, func(s Socket) { proc = append(proc, s) })
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	find := func(in []Socket, w Socket) (Socket, bool) {
		for _, s := range in {
			if s.Local == w.Local {
				return s, true
			}
		}
		return Socket{}, false
	}
	for _, w := range want {
		d, ok1 := find(diag, w)
		p, ok2 := find(proc, w)
		if !ok1 || !ok2 {
			t.Fatalf("%v: in sock_diag %v, in /proc %v", w.Local, ok1, ok2)
		}
		d.Remote, p.Remote = netip.AddrPort{}, netip.AddrPort{} // 0.0.0.0:0 vs :: forms differ by family only
		if d.Local.Addr().Is6() != d.V6OnlyKnown {
			t.Errorf("%v: IPV6_V6ONLY known %v", d.Local, d.V6OnlyKnown)
		}
		d.V6Only, d.V6OnlyKnown = false, false // /proc/net does not show it
		if d != p || d.Inode == 0 || d.UID != w.UID || d.State != tcpListen {
			t.Errorf("sock_diag %+v, /proc %+v", d, p)
		}
	}
}

// TestListenersV6Only: a [::] socket with IPV6_V6ONLY (Go sets it for
// "tcp6") takes no IPv4, one without it ("tcp") does; the kernel says which.
func TestListenersV6Only(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to see every socket's owner")
	}
	only, err := net.Listen("tcp6", "[::]:0")
	if err != nil {
		skipOrFail(t, "no IPv6: "+err.Error())
	}
	defer only.Close()
	dual, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	ls, err := New("/").Listeners()
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16]bool{
		uint16(only.Addr().(*net.TCPAddr).Port): true,
		uint16(dual.Addr().(*net.TCPAddr).Port): false,
	}
	for _, l := range ls {
		v6only, ok := want[l.Addr.Port()]
		if !ok || l.Proto != "tcp" {
			continue
		}
		delete(want, l.Addr.Port())
		if !l.V6OnlyKnown || l.V6Only != v6only {
			t.Errorf("%v: V6Only %v (known %v), want %v", l.Addr, l.V6Only, l.V6OnlyKnown, v6only)
		}
	}
	if len(want) > 0 {
		t.Errorf("listeners not found: %v", want)
	}
}
