package lab

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Lab is a set of hosts and links that lives until its test ends.
type Lab struct {
	t      testing.TB
	prefix string // mt<token><n>-

	mu         sync.Mutex
	hosts      []*Host
	procs      []*Proc
	transports []*http.Transport
	links      int
}

// Host is a network namespace standing in for a machine.
type Host struct {
	lab   *Lab
	name  string // as the test calls it, e.g. "vps"
	ns    string // the namespace's name, for `ip netns exec`
	users map[string]sshUser
}

// New returns an empty lab removed when t ends. It skips (or in strict mode
// fails) t without root, iproute2 or the right to create namespaces.
func New(t testing.TB) *Lab {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "ip")
	if err := netnsSupported(); err != nil {
		Require(t, false, fmt.Sprintf("cannot create network namespaces: %v", err))
	}
	token, err := processToken()
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	l := &Lab{t: t, prefix: namePrefix + token + strconv.FormatUint(nextLab(), 36) + "-"}
	t.Cleanup(l.close)
	return l
}

// Host creates a host: a namespace with lo up and IPv6 duplicate address
// detection off, so addresses work the moment they are added.
func (l *Lab) Host(name string) *Host {
	l.t.Helper()
	if err := checkHostName(name); err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	h := &Host{lab: l, name: name, ns: l.prefix + name}
	l.mu.Lock()
	for _, o := range l.hosts {
		if o.name == name {
			l.mu.Unlock()
			l.t.Fatalf("lab: host %q already exists", name)
		}
	}
	l.hosts = append(l.hosts, h) // before creating it: a half-made host is removed too
	l.mu.Unlock()

	l.ip("netns", "add", h.ns)
	l.ip("-n", h.ns, "link", "set", "lo", "up")
	for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
		if err := h.setSysctl(k, "0"); err != nil && !isNotExist(err) { // no IPv6 in this kernel: fine
			l.t.Fatalf("lab: host %s: %v", name, err)
		}
	}
	return h
}

// Link joins a and b with a veth pair named aIf on a and bIf on b, adds the
// addresses (CIDR, e.g. "198.51.100.1/24", "2001:db8::1/64") and sets both
// ends up. The names are the test's choice, "wg0" included: to the code under
// test it is just an interface. a and b may be the same host.
func (l *Lab) Link(a *Host, aIf string, b *Host, bIf string, aAddrs, bAddrs []string) {
	l.t.Helper()
	type end struct {
		h     *Host
		ifc   string
		addrs []netip.Prefix
	}
	ends := []*end{{h: a, ifc: aIf}, {h: b, ifc: bIf}}
	for i, cidrs := range [][]string{aAddrs, bAddrs} {
		err := checkIfName(ends[i].ifc)
		if err == nil {
			ends[i].addrs, err = parsePrefixes(cidrs)
		}
		if err != nil {
			l.t.Fatalf("lab: link %s-%s: %v", a.name, b.name, err)
		}
	}
	// Both ends are created straight in their namespaces, so names never
	// meet in the root namespace, where other labs run concurrently.
	//
	// Explicit, distinct interface indexes: the kernel delays (up to a second)
	// the carrier-up of a veth whose index equals its peer's, which is what
	// two fresh namespaces would both hand out; packets sent meanwhile are
	// dropped.
	l.mu.Lock()
	l.links++
	idx := 1000 + 2*l.links
	l.mu.Unlock()
	l.ip("-n", a.ns, "link", "add", aIf, "index", strconv.Itoa(idx), "type", "veth",
		"peer", "name", bIf, "index", strconv.Itoa(idx+1), "netns", b.ns)
	for _, e := range ends {
		for _, p := range e.addrs {
			args := []string{"-n", e.h.ns, "addr", "add", p.String(), "dev", e.ifc}
			if p.Addr().Is6() {
				args = append(args, "nodad")
			}
			l.ip(args...)
		}
		l.ip("-n", e.h.ns, "link", "set", e.ifc, "up")
	}
	for _, e := range ends {
		if err := e.h.waitRunning(e.ifc); err != nil {
			l.t.Fatalf("lab: link %s-%s: %v", a.name, b.name, err)
		}
	}
}

// waitRunning waits until the kernel's link watcher has marked ifc
// operational. Until then its queue discards packets, and a first ARP or
// neighbour solicitation lost to it costs a test a one-second retry.
func (h *Host) waitRunning(ifc string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var running bool
		err := h.Do(func() error {
			i, err := net.InterfaceByName(ifc)
			running = err == nil && i.Flags&net.FlagRunning != 0
			return err
		})
		if err != nil || running {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interface %s on host %s not running after 5s", ifc, h.name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Name is the host's name as the test gave it.
func (h *Host) Name() string { return h.name }

// Netns is the namespace's name, for tools that take one (ip -n, ip netns exec).
func (h *Host) Netns() string { return h.ns }

// Route runs `ip route add ARGS` on h; ip picks the family from the
// addresses, e.g. Route("default", "via", "2001:db8::1").
func (h *Host) Route(args ...string) {
	h.lab.t.Helper()
	h.lab.ip(append([]string{"-n", h.ns, "route", "add"}, args...)...)
}

// Sysctl sets a per-namespace sysctl on h, e.g. Sysctl("net.ipv4.ip_forward",
// "1"). Only net.* keys are accepted: the others are global to the machine.
// Use '/' as separator for keys whose parts hold dots (interface "eth0.10").
func (h *Host) Sysctl(key, value string) {
	h.lab.t.Helper()
	if err := h.setSysctl(key, value); err != nil {
		h.lab.t.Fatalf("lab: host %s: %v", h.name, err)
	}
}

func (h *Host) setSysctl(key, value string) error {
	path := key
	if !strings.Contains(key, "/") {
		path = strings.ReplaceAll(key, ".", "/")
	}
	if !strings.HasPrefix(path, "net/") || strings.Contains(path, "..") {
		return fmt.Errorf("sysctl %s: only net.* keys are per namespace", key)
	}
	// /proc/sys/net resolves to the namespace of the thread that opens it.
	return h.Do(func() error {
		return writeFile(filepath.Join("/proc/sys", path), value)
	})
}

func (l *Lab) ip(args ...string) {
	l.t.Helper()
	if out, err := ipCmd(args...).CombinedOutput(); err != nil {
		l.t.Fatalf("lab: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

var ipPath = sync.OnceValue(func() string {
	if p, err := lookTool("ip"); err == nil {
		return p
	}
	return "ip"
})

func ipCmd(args ...string) *exec.Cmd { return exec.Command(ipPath(), args...) }

// close stops the lab's processes, then removes its hosts; their veth pairs
// and routes go with them.
func (l *Lab) close() {
	l.mu.Lock()
	procs, hosts, transports := l.procs, l.hosts, l.transports
	l.mu.Unlock()
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
	for i := len(hosts) - 1; i >= 0; i-- {
		if err := removeNetns(hosts[i].ns); err != nil {
			l.t.Errorf("lab: remove host %s: %v", hosts[i].name, err)
		}
	}
}

// netnsSupported probes once whether this process may create namespaces.
var netnsSupported = sync.OnceValue(func() error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends in the probe namespace and so must
		// die with this goroutine.
		runtime.LockOSThread()
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	return <-errc
})
