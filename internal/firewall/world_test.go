package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
	"golang.org/x/sys/unix"
)

// The world of the end-to-end tests: a vps with a public interface (eth0,
// towards attacker), a VPN interface (wg0, towards admin) and a Docker-like
// bridge (docker0, towards container, whose ports Docker's own iptables
// rules publish through DNAT).
const (
	vpsPub4    = "198.51.100.1"
	attacker4  = "198.51.100.2"
	attacker4b = "198.51.100.3" // a second source on the attacker's side
	vpsPub6    = "2001:db8:1::1"
	attacker6  = "2001:db8:1::2"
	vpsPub6b   = "2001:db8:2::1"
	attacker6b = "2001:db8:2::2" // another /64
	vpsVPN4    = "10.8.0.1"
	admin4     = "10.8.0.2"
	vpsVPN6    = "fd00:8::1"
	admin6     = "fd00:8::2"
	container4 = "172.17.0.2"
	container6 = "fd00:17::2"
)

type world struct {
	l                               *lab.Lab
	vps, attacker, admin, container *lab.Host
	root                            string // where Apply persists
}

// newWorld builds the hosts, Docker's rules and the listeners: on the vps
// (wildcard) tcp 22 80 443 5432 6379 8443 and udp 51820 5353 1194; on the
// container tcp 80 5432 9090 and udp 9999, published as tcp 8080→80,
// 5433→5432, 9090→9090 and udp 9999→9999.
func newWorld(t *testing.T) *world {
	t.Helper()
	lab.RequireRoot(t)
	lab.RequireTool(t, "nft", "iptables", "ip6tables")
	l := lab.New(t)
	w := &world{l: l, vps: l.Host("vps"), attacker: l.Host("attacker"), admin: l.Host("admin"), container: l.Host("container"), root: t.TempDir()}
	l.Link(w.vps, "eth0", w.attacker, "eth0",
		[]string{vpsPub4 + "/24", vpsPub6 + "/64", vpsPub6b + "/64"},
		[]string{attacker4 + "/24", attacker4b + "/24", attacker6 + "/64", attacker6b + "/64"})
	l.Link(w.vps, "wg0", w.admin, "wg0",
		[]string{vpsVPN4 + "/24", vpsVPN6 + "/64"},
		[]string{admin4 + "/24", admin6 + "/64"})
	l.Link(w.vps, "docker0", w.container, "eth0",
		[]string{"172.17.0.1/16", "fd00:17::1/64"},
		[]string{container4 + "/16", container6 + "/64"})
	w.container.Route("default", "via", "172.17.0.1")
	w.container.Route("default", "via", "fd00:17::1")
	w.vps.Sysctl("net.ipv4.ip_forward", "1")
	w.vps.Sysctl("net.ipv6.conf.all.forwarding", "1")

	// Docker's rules, as dockerd writes them through iptables-nft: DNAT
	// for published ports, and a FORWARD chain (policy drop) that accepts
	// them. moat must close what Docker opens.
	for _, fam := range []struct{ cmd, addr string }{{"iptables", container4}, {"ip6tables", container6}} {
		dst := fam.addr
		if fam.cmd == "ip6tables" {
			dst = "[" + dst + "]"
		}
		run := func(args ...string) { w.vps.MustRun(t, fam.cmd, args...) }
		run("-t", "nat", "-N", "DOCKER")
		run("-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DOCKER")
		run("-P", "FORWARD", "DROP")
		run("-N", "DOCKER")
		run("-A", "FORWARD", "-o", "docker0", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
		run("-A", "FORWARD", "-o", "docker0", "-j", "DOCKER")
		run("-A", "FORWARD", "-i", "docker0", "!", "-o", "docker0", "-j", "ACCEPT")
		for _, p := range []struct{ proto, pub, priv string }{{"tcp", "8080", "80"}, {"tcp", "5433", "5432"}, {"tcp", "9090", "9090"}, {"udp", "9999", "9999"}} {
			run("-t", "nat", "-A", "DOCKER", "!", "-i", "docker0", "-p", p.proto, "--dport", p.pub, "-j", "DNAT", "--to-destination", dst+":"+p.priv)
			run("-A", "DOCKER", "-d", fam.addr, "!", "-i", "docker0", "-o", "docker0", "-p", p.proto, "--dport", p.priv, "-j", "ACCEPT")
		}
	}
	for _, p := range []string{"22", "80", "443", "5432", "6379", "8443"} {
		w.vps.ServeTCP(t, ":"+p)
	}
	for _, p := range []string{"51820", "5353", "1194"} {
		w.vps.ServeUDP(t, ":"+p)
	}
	for _, p := range []string{"80", "5432", "9090"} {
		w.container.ServeTCP(t, ":"+p)
	}
	w.container.ServeUDP(t, ":9999")
	return w
}

// spec is the world's configuration under an SSH exposure.
func (w *world) spec(exposure schema.Exposure) *Spec {
	return &Spec{
		Source:          "world_test.go",
		PublicInterface: "eth0",
		Public:          ports("80", "443", "8080", "51820/udp", "9999/udp"),
		VPNPorts:        ports("5432", "6379", "9090", "5353/udp"),
		SSH:             SSH{Port: 22, Exposure: exposure, RateLimit: schema.Rate{N: 10, Per: time.Minute}},
		VPN:             vpn.Config{Interfaces: []string{"wg0"}, Ranges: cidrs("10.8.0.0/24", "fd00:8::/64")},
		BanIPv6Prefix:   64,
	}
}

// reach returns the admin's path as the cli would: the admin's session
// arrives over the VPN.
func (w *world) reach(t *testing.T) Reach {
	t.Helper()
	var ifs []host.Interface
	if err := w.vps.Do(func() (err error) {
		ifs, err = host.New("").Interfaces()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return Reach{Interfaces: ifs, Operator: netip.MustParseAddr(admin4), Server: netip.MustParseAddr(vpsVPN4), SSHDPorts: []uint16{22}}
}

// apply applies s on the vps as `moat apply firewall` would.
func (w *world) apply(t *testing.T, s *Spec) *Applied {
	t.Helper()
	a, err := w.tryApply(t, s)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return a
}

func (w *world) tryApply(t *testing.T, s *Spec) (*Applied, error) {
	t.Helper()
	var a *Applied
	reach := w.reach(t)
	err := w.vps.Do(func() error {
		paths, err := OperatorPaths(s, reach)
		if err != nil {
			return err
		}
		a, err = Apply(context.Background(), s, ApplyOptions{Paths: paths, Root: w.root})
		return err
	})
	return a, err
}

// sets opens the set API inside the vps.
func (w *world) sets(t *testing.T) *Sets {
	t.Helper()
	var s *Sets
	if err := w.vps.Do(func() (err error) {
		s, err = NewSets(64)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// probeTimeout bounds a connection attempt the firewall may drop: replies
// over veth take well under a millisecond. A loaded machine may still
// miss it, so an attempt expected to pass is retried alone with
// answerTimeout before it counts as dropped.
const (
	probeTimeout  = 400 * time.Millisecond
	answerTimeout = 5 * time.Second
)

var udpProbe = []byte("moat-firewall-probe\n")

// connect reports whether h, from source address src ("" for the
// kernel's choice), completes a TCP handshake with dst, or for UDP gets
// its probe echoed.
func connect(h *lab.Host, network, src, dst string) bool {
	return connectWithin(h, network, src, dst, probeTimeout)
}

// connectWithin is connect with its timeout.
func connectWithin(h *lab.Host, network, src, dst string, timeout time.Duration) bool {
	ok := false
	err := h.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		if src != "" {
			a := netip.MustParseAddr(src)
			if network == "udp" {
				d.LocalAddr = &net.UDPAddr{IP: a.AsSlice()}
			} else {
				d.LocalAddr = &net.TCPAddr{IP: a.AsSlice()}
			}
		}
		c, err := d.Dial(network, dst)
		if err != nil {
			return nil
		}
		defer c.Close()
		if network == "tcp" {
			ok = true
			return nil
		}
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write(udpProbe); err != nil {
			return nil
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		ok = err == nil && bytes.Equal(buf[:n], udpProbe)
		return nil
	})
	if err != nil {
		panic(err)
	}
	return ok
}

// probe is one reachability expectation.
type probe struct {
	from    *lab.Host
	src     string // source address; "" for the default
	network string
	dst     string // host:port
	open    bool
}

func (p probe) String() string {
	src := p.src
	if src == "" {
		src = p.from.Name()
	}
	want := "dropped"
	if p.open {
		want = "open"
	}
	return fmt.Sprintf("%s → %s/%s should be %s", src, p.dst, p.network, want)
}

// check runs the probes in parallel and reports every mismatch.
func check(t *testing.T, probes []probe) {
	t.Helper()
	got := make([]bool, len(probes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, p := range probes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			got[i] = connect(p.from, p.network, p.src, p.dst)
		})
	}
	wg.Wait()
	for i, p := range probes {
		// A late goroutine on a loaded machine looks dropped: what was
		// meant to pass gets a second, unhurried try on its own. A port
		// truly dropped stays dropped.
		if p.open && !got[i] {
			got[i] = connectWithin(p.from, p.network, p.src, p.dst, answerTimeout)
		}
		if got[i] != p.open {
			t.Errorf("%v, but was %s", p, map[bool]string{true: "open", false: "dropped"}[got[i]])
		}
	}
}

func hostPort(addr string, port int) string { return net.JoinHostPort(addr, strconv.Itoa(port)) }

// scanTCP connects from h to every TCP port of dst, many at once from
// non-blocking sockets, and returns the ports that completed a handshake.
// A dropped port costs one timeout per batch, not per port.
func scanTCP(h *lab.Host, dst netip.Addr, timeout time.Duration, batch int) ([]int, error) {
	var open []int
	err := h.Do(func() error {
		fam := unix.AF_INET
		if dst.Is6() {
			fam = unix.AF_INET6
		}
		sockaddr := func(port int) unix.Sockaddr {
			if dst.Is6() {
				return &unix.SockaddrInet6{Port: port, Addr: dst.As16()}
			}
			return &unix.SockaddrInet4{Port: port, Addr: dst.As4()}
		}
		for start := 1; start <= 65535; start += batch {
			end := min(start+batch, 65536)
			var pfds []unix.PollFd
			var fds []int
			port := map[int32]int{}
			closeAll := func() {
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
			for p := start; p < end; p++ {
				fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					closeAll()
					return fmt.Errorf("socket: %w", err)
				}
				// RST on close: no TIME_WAIT, no FIN to a dropped port.
				unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
				fds = append(fds, fd)
				if err := unix.Connect(fd, sockaddr(p)); err != nil && !errors.Is(err, unix.EINPROGRESS) {
					continue
				}
				pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT})
				port[int32(fd)] = p
			}
			deadline := time.Now().Add(timeout)
			pending := pfds
			for len(pending) > 0 {
				left := time.Until(deadline)
				if left <= 0 {
					break
				}
				n, err := unix.Poll(pending, int(left.Milliseconds())+1)
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if err != nil {
					closeAll()
					return fmt.Errorf("poll: %w", err)
				}
				if n == 0 {
					break
				}
				rest := pending[:0]
				for _, p := range pending {
					if p.Revents == 0 {
						rest = append(rest, p)
						continue
					}
					if soErr, err := unix.GetsockoptInt(int(p.Fd), unix.SOL_SOCKET, unix.SO_ERROR); err == nil && soErr == 0 {
						open = append(open, port[p.Fd])
					}
				}
				for i := range rest {
					rest[i].Revents = 0
				}
				pending = rest
			}
			closeAll()
		}
		return nil
	})
	return open, err
}
