package ruleset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The kernel cross-check: every case is loaded into a real namespace, TCP
// listeners wait behind it, and a client namespace connects to each port
// over each link and family. Evaluate (on what Live reads back) must agree
// with what the kernel did.

// dialTimeout bounds a probe: a dropped SYN costs this much, in parallel.
const dialTimeout = 1500 * time.Millisecond

var probePorts = []uint16{22, 25, 80, 443, 5001, 5353, 6001, 6050, 6379, 7001, 7050, 7777, 8050, 8080, 8101, 8200, 8201, 9000, 9001, 9002}

// link is a veth pair between client and server namespaces; both ends
// carry the same interface name.
type link struct {
	name       string
	net4, net6 string // "10.77.0." and "fd77::": .1 is the client, .2 the server
}

func (l link) addr(v6 bool, host int) netip.Addr {
	if v6 {
		return netip.MustParseAddr(l.net6 + strconv.Itoa(host))
	}
	return netip.MustParseAddr(l.net4 + strconv.Itoa(host))
}

// connect joins namespaces a and b with a veth pair named ifA in a and ifB
// in b, addressed from l, with static IPv6 neighbours so that no ruleset
// can starve neighbour discovery.
func connect(t *testing.T, a, b netns, ifA, ifB string, l link, hostA, hostB int) {
	t.Helper()
	mustRun(t, "ip", "-n", a.name, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b.name)
	ends := []struct {
		ns   netns
		ifc  string
		host int
	}{{a, ifA, hostA}, {b, ifB, hostB}}
	macs := map[string]string{}
	for _, e := range ends {
		mustRun(t, "ip", "-n", e.ns.name, "addr", "add", l.addr(false, e.host).String()+"/24", "dev", e.ifc)
		mustRun(t, "ip", "-n", e.ns.name, "addr", "add", l.addr(true, e.host).String()+"/64", "dev", e.ifc, "nodad")
		mustRun(t, "ip", "-n", e.ns.name, "link", "set", e.ifc, "up")
		macs[e.ns.name] = strings.TrimSpace(e.ns.run(t, "cat", "/sys/class/net/"+e.ifc+"/address"))
	}
	for i, e := range ends {
		peer := ends[1-i]
		mustRun(t, "ip", "-n", e.ns.name, "neigh", "replace", l.addr(true, peer.host).String(), "lladdr", macs[peer.ns.name], "dev", e.ifc, "nud", "permanent")
	}
}

// listen opens dual-stack TCP listeners on ports inside ns, accepting and
// closing every connection, until the test ends.
func listen(t *testing.T, ns netns, ports []uint16) {
	t.Helper()
	var lns []net.Listener
	err := ns.do(func() error {
		for _, p := range ports {
			ln, err := net.Listen("tcp", fmt.Sprintf("[::]:%d", p))
			if err != nil {
				return err
			}
			lns = append(lns, ln)
		}
		return nil
	})
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns.name, err)
	}
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
}

// reaches dials addr:port from ns: true when the handshake completed.
func reaches(ns netns, addr netip.Addr, port uint16) (bool, error) {
	var ok bool
	err := ns.do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), dialTimeout)
		if err == nil {
			c.Close()
			ok = true
			return nil
		}
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() || errors.Is(err, io.EOF) || isRefused(err) {
			return nil // dropped or rejected
		}
		return err
	})
	return ok, err
}

func isRefused(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "connection reset") || strings.Contains(s, "unreachable")
}

// readLive runs Live inside ns.
func readLive(t *testing.T, ns netns) *Ruleset {
	t.Helper()
	var rs *Ruleset
	if err := ns.do(func() (err error) {
		rs, err = Live(context.Background())
		return err
	}); err != nil {
		t.Fatalf("Live in %s: %v", ns.name, err)
	}
	return rs
}

// probe is one connection attempt and the packet that models it.
type probe struct {
	from   netns
	to     netip.Addr
	port   uint16
	packet Packet
}

// view is a ruleset to hold against the kernel; certain views must give
// certain verdicts.
type modelView struct {
	name    string
	rs      *Ruleset
	certain bool
}

// crossCheck runs the probes in parallel and compares each kernel answer
// with each view's: an uncertain verdict must still bracket it.
func crossCheck(t *testing.T, probes []probe, views ...modelView) {
	t.Helper()
	kernel := make([]bool, len(probes))
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kernel[i], errs[i] = reaches(p.from, p.to, p.port)
		}()
	}
	wg.Wait()
	for i, p := range probes {
		if errs[i] != nil {
			t.Errorf("probe %s: %v", describe(p.packet), errs[i])
			continue
		}
		for _, v := range views {
			opt, pes := v.rs.Evaluate(p.packet, Optimistic), v.rs.Evaluate(p.packet, Pessimistic)
			switch {
			case kernel[i] && !opt.Accepted, !kernel[i] && pes.Accepted:
				t.Errorf("%s %s: kernel accepted=%v, evaluator says %v / %v", v.name, describe(p.packet), kernel[i], opt, pes)
			case v.certain && !opt.Certain:
				t.Errorf("%s %s: kernel accepted=%v, evaluator is uncertain: %v / %v, unsure %v", v.name, describe(p.packet), kernel[i], opt, pes, opt.Unsure)
			default:
				t.Logf("%s %s: kernel accepted=%v; %v", v.name, describe(p.packet), kernel[i], pes)
			}
		}
	}
}

// jsonView parses only what `nft -j list ruleset` shows in ns: iptables-nft
// rules keep their xt matches unknown.
func jsonView(t *testing.T, ns netns) modelView {
	t.Helper()
	rs, err := ParseNFT([]byte(ns.run(t, "nft", "-j", "list", "ruleset")))
	if err != nil {
		t.Fatal(err)
	}
	return modelView{name: "nft-json", rs: rs}
}

func TestKernelInput(t *testing.T) {
	requireRoot(t)
	requireTools(t, "ip", "nft", "iptables-nft-restore", "iptables-legacy-restore", "iptables-nft-save", "iptables-legacy-save")
	links := []link{{"eth0", "10.77.0.", "fd77::"}, {"wg0", "10.78.0.", "fd78::"}}
	for i, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newNetns(t, uniqueName(fmt.Sprintf("k%ds", i)))
			cli := newNetns(t, uniqueName(fmt.Sprintf("k%dc", i)))
			for _, l := range links {
				connect(t, cli, srv, l.name, l.name, l, 1, 2)
			}
			loadInto(t, srv, name)
			listen(t, srv, probePorts)
			rs := readLive(t, srv)

			var probes []probe
			for _, l := range links {
				for _, v6 := range []bool{false, true} {
					for _, port := range probePorts {
						p := Packet{Hook: HookInput, IIf: l.name, Saddr: l.addr(v6, 1), Daddr: l.addr(v6, 2), Proto: "tcp", Dport: port}
						if v := rs.Evaluate(p, Optimistic); v.Rewrite != nil {
							continue // DNATed away: the input path is not where it goes
						}
						probes = append(probes, probe{cli, p.Daddr, port, p})
					}
				}
			}
			// xt matches make the JSON-only view of iptables-nft tables
			// uncertain, but Live reads iptables-nft-save: all are certain.
			views := []modelView{{"live", rs, true}}
			if _, err := os.Stat(filepath.Join(caseDir, name+".legacy")); err != nil {
				views = append(views, jsonView(t, srv)) // nft cannot show legacy tables
			}
			crossCheck(t, probes, views...)
		})
	}
}

func TestKernelForward(t *testing.T) {
	requireRoot(t)
	requireTools(t, "ip", "nft", "iptables-nft-restore", "iptables-nft-save")
	front := link{"eth0", "10.79.0.", "fd79::"}
	back := link{"docker0", "172.30.0.", "fd30::"}
	for i, name := range []string{"docker", "dnat-forward"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cli := newNetns(t, uniqueName(fmt.Sprintf("f%dc", i)))
			rtr := newNetns(t, uniqueName(fmt.Sprintf("f%dr", i)))
			bck := newNetns(t, uniqueName(fmt.Sprintf("f%db", i)))
			connect(t, cli, rtr, "eth0", "eth0", front, 1, 2)
			connect(t, rtr, bck, "docker0", "eth0", back, 1, 2)
			mustRun(t, "ip", "-n", cli.name, "route", "add", "default", "via", front.addr(false, 2).String())
			mustRun(t, "ip", "-n", bck.name, "route", "add", "default", "via", back.addr(false, 1).String())
			rtr.run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
			loadInto(t, rtr, name)
			listen(t, bck, []uint16{80, 81, 82, 83})
			rs := readLive(t, rtr)

			fwd := func(port uint16) Packet {
				return Packet{Hook: HookForward, IIf: "eth0", OIf: "docker0", Saddr: front.addr(false, 1), Daddr: back.addr(false, 2), Proto: "tcp", Dport: port}
			}
			var probes []probe
			published := map[string][]uint16{"docker": {8080, 8081}, "dnat-forward": {8080, 8081, 8083}}[name]
			for _, host := range published {
				p := fwd(host - 8000)
				p.DNAT, p.OrigDaddr, p.OrigDport = true, front.addr(false, 2), host
				probes = append(probes, probe{cli, front.addr(false, 2), host, p})
			}
			for _, port := range []uint16{80, 82} {
				probes = append(probes, probe{cli, back.addr(false, 2), port, fwd(port)})
			}
			crossCheck(t, probes, modelView{"live", rs, true}, jsonView(t, rtr))
		})
	}
}
