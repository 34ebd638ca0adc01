package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair builds two hosts on one dual-stack link.
func pair(t *testing.T) (l *Lab, a, b *Host) {
	l = New(t)
	a, b = l.Host("a"), l.Host("b")
	l.Link(a, "eth0", b, "eth0",
		[]string{"198.51.100.1/24", "2001:db8::1/64"},
		[]string{"198.51.100.2/24", "2001:db8::2/64"})
	return l, a, b
}

func TestEchoAcrossLink(t *testing.T) {
	_, a, b := pair(t)
	for ip, from := range map[string]string{"198.51.100.2": "198.51.100.1", "2001:db8::2": "2001:db8::1"} {
		tcp := net.JoinHostPort(ip, "7000")
		udp := net.JoinHostPort(ip, "7001")
		if a.CanConnect("tcp", tcp, time.Second) || a.CanConnect("udp", udp, time.Second) {
			t.Fatalf("%s: reachable before any server runs", ip)
		}
		b.ServeTCP(t, tcp)
		b.ServeUDP(t, udp)
		if !a.CanConnect("tcp", tcp, 2*time.Second) {
			t.Errorf("tcp %s: not reachable", tcp)
		}
		if !a.CanConnect("udp", udp, 2*time.Second) {
			t.Errorf("udp %s: no echo", udp)
		}

		c, err := a.DialTimeout("tcp", tcp, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprint(c, "ping\n")
		buf := make([]byte, 5)
		if _, err := c.Read(buf); err != nil || string(buf) != "ping\n" {
			t.Errorf("tcp echo %s: got %q, %v", tcp, buf, err)
		}
		if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != from {
			t.Errorf("dialed from %s, want %s", got, from)
		}
		c.Close()
	}
	// The root namespace has none of this.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), "198.51.100.") {
			t.Errorf("lab address %s in the root namespace", a)
		}
	}
}

func TestDoRunsInside(t *testing.T) {
	_, a, _ := pair(t)
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join(netnsDir, a.Netns()), &want); err != nil {
		t.Fatal(err)
	}
	var root unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &root); err != nil {
		t.Fatal(err)
	}
	err := a.Do(func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		if st.Ino != want.Ino {
			return fmt.Errorf("thread's netns inode %d, want %d", st.Ino, want.Ino)
		}
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		if strings.Join(names, ",") != "lo,eth0" {
			return fmt.Errorf("interfaces %v, want lo and eth0", names)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Threads come back home: many calls later, this goroutine still sees
	// the root namespace wherever it runs.
	for range 50 {
		a.Do(func() error { return nil })
	}
	var after unix.Stat_t
	unix.Stat("/proc/thread-self/ns/net", &after)
	if after.Ino != root.Ino {
		t.Errorf("caller's thread left in netns %d, want root %d", after.Ino, root.Ino)
	}

	sentinel := errors.New("sentinel")
	if err := a.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do error = %v, want sentinel", err)
	}
	if err := a.Do(func() error { runtime.Goexit(); return nil }); !errors.Is(err, errGoexit) {
		t.Errorf("Do with Goexit = %v", err)
	}
	func() {
		defer func() {
			if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "boom") {
				t.Errorf("recovered %v, want the panic re-raised", v)
			}
		}()
		a.Do(func() error { panic("boom") })
	}()
}

func TestRunStartSysctl(t *testing.T) {
	_, a, b := pair(t)
	out := a.MustRun(t, "ip", "-br", "addr", "show", "eth0")
	if !strings.Contains(string(out), "198.51.100.1/24") {
		t.Errorf("ip addr in a: %s", out)
	}
	if _, err := a.Run(t.Context(), "false"); err == nil {
		t.Error("Run false: no error")
	}

	a.Sysctl("net.ipv4.ip_forward", "1")
	for h, want := range map[*Host]string{a: "1", b: "0"} {
		if got := strings.TrimSpace(string(h.MustRun(t, "cat", "/proc/sys/net/ipv4/ip_forward"))); got != want {
			t.Errorf("host %s ip_forward = %s, want %s", h.Name(), got, want)
		}
	}
	if err := a.setSysctl("kernel.hostname", "x"); err == nil {
		t.Error("global sysctl accepted")
	}

	p := b.Start(t, "sh", "-c", "echo started; exec sleep 300")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for !strings.Contains(p.Output(), "started") && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(p.Output(), "started") {
		t.Errorf("output = %q", p.Output())
	}
	p.Stop()
	if err := p.Wait(); err == nil {
		t.Error("stopped process exited 0")
	}
	p.Stop() // twice is fine
}

func TestWaitListen(t *testing.T) {
	_, a, _ := pair(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := a.WaitListen(ctx, "tcp", 7100); err == nil {
		t.Fatal("WaitListen on a closed port succeeded")
	}
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	go func() {
		time.Sleep(100 * time.Millisecond)
		a.ServeTCP(t, "[2001:db8::1]:7100")
		a.ServeUDP(t, "198.51.100.1:7101")
	}()
	if err := a.WaitListen(ctx, "tcp", 7100); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitListen(ctx, "udp", 7101); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPClient(t *testing.T) {
	_, a, b := pair(t)
	ln, err := b.Listen("tcp", "[2001:db8::2]:8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	resp, err := a.HTTPClient().Get("http://[2001:db8::2]:8080/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.HasPrefix(string(body), "hello [2001:db8::1]:") {
		t.Errorf("body %q, %v: want a greeting to a's address", body, err)
	}
	if _, err := a.HTTPClient().Get("http://localhost:8080/"); err == nil || !strings.Contains(err.Error(), "IP literal") {
		t.Errorf("dial by name: %v, want an IP literal error", err)
	}
}

// TestTopology builds the shape later layers use: a vps with a public link to
// an attacker, a wg0 link to an admin, and a container behind it.
func TestTopology(t *testing.T) {
	l := New(t)
	vps, attacker, admin, ctr := l.Host("vps"), l.Host("attacker"), l.Host("admin"), l.Host("container")
	l.Link(vps, "eth0", attacker, "eth0", []string{"198.51.100.1/24", "2001:db8:1::1/64"}, []string{"198.51.100.2/24", "2001:db8:1::2/64"})
	l.Link(vps, "wg0", admin, "wg0", []string{"10.99.0.1/24"}, []string{"10.99.0.2/24"})
	l.Link(vps, "veth-ctr", ctr, "eth0", []string{"172.31.250.1/24", "fd00:99::1/64"}, []string{"172.31.250.2/24", "fd00:99::2/64"})
	vps.Sysctl("net.ipv4.ip_forward", "1")
	vps.Sysctl("net.ipv6.conf.all.forwarding", "1")
	ctr.Route("default", "via", "172.31.250.1")
	ctr.Route("default", "via", "fd00:99::1")
	attacker.Route("172.31.250.0/24", "via", "198.51.100.1")
	attacker.Route("fd00:99::/64", "via", "2001:db8:1::1")

	ctr.ServeTCP(t, ":8000")
	for _, addr := range []string{"172.31.250.2:8000", "[fd00:99::2]:8000"} {
		if !attacker.CanConnect("tcp", addr, 2*time.Second) {
			t.Errorf("attacker cannot reach container at %s through vps", addr)
		}
	}
	vps.ServeTCP(t, "10.99.0.1:22")
	if !admin.CanConnect("tcp", "10.99.0.1:22", 2*time.Second) {
		t.Error("admin cannot reach vps over wg0")
	}
	if attacker.CanConnect("tcp", "10.99.0.2:22", 300*time.Millisecond) {
		t.Error("attacker reaches admin without a route")
	}
}

// TestCleanup checks a finished lab leaves no namespace, /etc/netns dir or
// process behind.
func TestCleanup(t *testing.T) {
	var prefix string
	var pid int
	t.Run("lab", func(t *testing.T) {
		l, a, _ := pair(t)
		prefix = l.prefix
		pid = a.Start(t, "sleep", "300").Pid()
		a.StartSSHD(t, SSHDOptions{Users: []SSHUser{{Name: "carol"}}})
		if _, err := os.Stat(filepath.Join(etcNetns, a.Netns())); err != nil {
			t.Fatal(err)
		}
	})
	out, err := ipCmd("netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), prefix) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
	if m, _ := filepath.Glob(filepath.Join(etcNetns, prefix+"*")); len(m) > 0 {
		t.Errorf("/etc/netns dirs left behind: %v", m)
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("process %d still alive: %v", pid, err)
	}
}

// TestSweep fakes a crashed run's leftovers and checks New's janitor takes
// them, but leaves a live owner's alone.
func TestSweep(t *testing.T) {
	New(t) // requirements, and the process token exists
	mk := func(token string) string {
		name := namePrefix + token + "1-x"
		if out, err := ipCmd("netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		os.MkdirAll(filepath.Join(etcNetns, name), 0o755)
		os.MkdirAll(filepath.Join(os.TempDir(), tempPrefix(token)+"homes-1", "u"), 0o755)
		t.Cleanup(func() {
			removeNetns(name)
			os.RemoveAll(filepath.Join(os.TempDir(), tempPrefix(token)+"homes-1"))
		})
		if err := os.WriteFile(lockPath(token), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(lockPath(token)) })
		return name
	}
	dead, alive := mk("zzzz2"), mk("zzzz3")
	f, err := os.Open(lockPath("zzzz3"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	sweep(owner.token)

	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	for _, p := range []string{filepath.Join(netnsDir, dead), filepath.Join(etcNetns, dead), lockPath("zzzz2"), filepath.Join(os.TempDir(), tempPrefix("zzzz2")+"homes-1")} {
		if exists(p) {
			t.Errorf("%s survived the sweep", p)
		}
	}
	for _, p := range []string{filepath.Join(netnsDir, alive), filepath.Join(etcNetns, alive), lockPath("zzzz3"), filepath.Join(os.TempDir(), tempPrefix("zzzz3")+"homes-1")} {
		if !exists(p) {
			t.Errorf("%s of a live owner was swept", p)
		}
	}
	if !exists(lockPath(owner.token)) {
		t.Error("own lock swept")
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string]string{
		"mtabcde1-vps":     "abcde",
		"mtk3x7q1a-admin2": "k3x7q",
		"mtabcde-vps":      "",
		"mtABCDE1-vps":     "",
		"rstest1":          "",
		"mtabcde1-":        "",
	} {
		if got := tokenOf(name); got != want {
			t.Errorf("tokenOf(%q) = %q, want %q", name, got, want)
		}
	}
	for name, ok := range map[string]bool{"wg0": true, "veth-container1": true, "veth-container12": false, "": false, "a/b": false} {
		if err := checkIfName(name); (err == nil) != ok {
			t.Errorf("checkIfName(%q) = %v", name, err)
		}
	}
	for addr, ok := range map[string]bool{"198.51.100.1:22": true, "[2001:db8::1]:22": true, "[fe80::1%eth0]:22": true, "localhost:22": false, "example.com:443": false} {
		if err := checkLiteral("tcp", addr); (err == nil) != ok {
			t.Errorf("checkLiteral(%q) = %v", addr, err)
		}
	}
}

func TestHasSocket(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
`)
	for _, c := range []struct {
		port  int
		state string
		want  bool
	}{{22, stateListen, true}, {8080, stateListen, false}, {8080, "01", true}, {23, stateListen, false}} {
		if got := hasSocket(table, c.port, c.state); got != c.want {
			t.Errorf("hasSocket(%d, %s) = %v", c.port, c.state, got)
		}
	}
	if hasSocket(nil, 22, stateListen) {
		t.Error("empty table has a socket")
	}
}
