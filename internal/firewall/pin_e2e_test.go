package firewall

import (
	"context"
	"net/netip"
	"testing"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/ruleset"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// Forged VPN sources, each on an interface that is not the VPN's. The vps
// routes each back where it came from, so a TCP handshake can complete:
// the harshest case, where only the arrival interface tells a tunnel from
// a forgery (a LAN host claiming a VPN address, a container network that
// overlaps the VPN's).
const (
	lanVPS4     = "192.0.2.1"
	lanHost4    = "192.0.2.2"
	spoofLAN4   = "10.8.0.66"
	spoofLAN6   = "fd00:8::66"
	spoofDock4  = "10.8.0.77"
	spoofPublic = "10.8.0.88"
)

// TestVPNSourcePinned attacks the promise that only the VPN gets VPN
// privileges: VPN-range sources arriving on a second NIC, on the Docker
// bridge and on the public interface reach neither SSH (exposure vpn) nor
// the VPN-only ports, local or published, while the real VPN interface
// still does. Before moat's table the same forged sources connect, so the
// drops are the table's doing; and the reachability model the audit and
// the lockout check use gives the kernel's answer for every probe.
func TestVPNSourcePinned(t *testing.T) {
	w := newWorld(t)
	lan := w.l.Host("lan")
	w.l.Link(w.vps, "eth1", lan, "eth0", []string{lanVPS4 + "/24", "fd00:99::1/64"}, []string{lanHost4 + "/24", "fd00:99::2/64"})
	lan.Route("default", "via", lanVPS4)
	lan.Route("default", "via", "fd00:99::1")
	lan.MustRun(t, "ip", "addr", "add", spoofLAN4+"/32", "dev", "eth0")
	lan.MustRun(t, "ip", "addr", "add", spoofLAN6+"/128", "dev", "eth0", "nodad")
	w.vps.Route(spoofLAN4+"/32", "dev", "eth1")
	w.vps.Route(spoofLAN6+"/128", "via", "fd00:99::2", "dev", "eth1")
	w.container.MustRun(t, "ip", "addr", "add", spoofDock4+"/32", "dev", "eth0")
	w.vps.Route(spoofDock4+"/32", "dev", "docker0")
	w.attacker.MustRun(t, "ip", "addr", "add", spoofPublic+"/32", "dev", "eth0")
	w.vps.Route(spoofPublic+"/32", "dev", "eth0")

	type forged struct {
		probe
		iif string
	}
	var forgeries []forged
	for _, dst := range []struct {
		network string
		port    int
	}{{"tcp", 22}, {"tcp", 5432}, {"tcp", 6379}, {"udp", 5353}, {"tcp", 9090}} {
		forgeries = append(forgeries,
			// To the vps's address on the arrival interface, which a UDP
			// reply comes from.
			forged{probe{from: lan, src: spoofLAN4, network: dst.network, dst: hostPort(lanVPS4, dst.port)}, "eth1"},
			forged{probe{from: lan, src: spoofLAN6, network: dst.network, dst: hostPort("fd00:99::1", dst.port)}, "eth1"},
			forged{probe{from: w.container, src: spoofDock4, network: dst.network, dst: hostPort("172.17.0.1", dst.port)}, "docker0"},
			forged{probe{from: w.attacker, src: spoofPublic, network: dst.network, dst: hostPort(vpsPub4, dst.port)}, "eth0"},
		)
	}
	// Without moat every forgery gets through: the setup is sound.
	var before []probe
	for _, f := range forgeries {
		if netip.MustParseAddrPort(f.dst).Port() != 9090 { // published: Docker's own rules decide
			p := f.probe
			p.open = true
			before = append(before, p)
		}
	}
	check(t, before)
	if t.Failed() {
		t.Fatal("the forged sources do not reach the vps without moat: the test proves nothing")
	}

	spec := w.spec(schema.ExposureVPN)
	// The host's links, as moat apply reads them: 10.8.0.0/24 is wg0's.
	if err := w.vps.Do(func() error {
		ifs, err := host.New("").Interfaces()
		for _, i := range ifs {
			spec.Links = append(spec.Links, vpn.Link{Name: i.Name, Addrs: i.Addrs})
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w.apply(t, spec)

	var after []probe
	for _, f := range forgeries {
		after = append(after, f.probe)
	}
	for _, port := range []int{22, 5432, 6379, 9090} {
		after = append(after,
			probe{from: w.admin, network: "tcp", dst: hostPort(vpsVPN4, port), open: true},
			probe{from: w.admin, network: "tcp", dst: hostPort(vpsVPN6, port), open: true})
	}
	after = append(after, probe{from: w.admin, network: "udp", dst: hostPort(vpsVPN4, 5353), open: true})
	check(t, after)

	// The model agrees with the kernel: each forgery dropped, the VPN
	// accepted, read from the live table.
	var rs *ruleset.Ruleset
	if err := w.vps.Do(func() (err error) {
		rs, err = ruleset.Live(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	model := func(iif, src, dst string, proto string, port uint16) ruleset.Verdict {
		return rs.Evaluate(ruleset.Packet{Hook: ruleset.HookInput, IIf: iif,
			Saddr: netip.MustParseAddr(src), Daddr: netip.MustParseAddr(dst), Proto: proto, Sport: 40000, Dport: port}, ruleset.Optimistic)
	}
	for _, f := range forgeries {
		if netip.MustParseAddrPort(f.dst).Port() == 9090 {
			continue // published: the forward path, DNATed
		}
		addr, port := netip.MustParseAddrPort(f.dst).Addr(), netip.MustParseAddrPort(f.dst).Port()
		if v := model(f.iif, f.src, addr.String(), f.network, port); v.Accepted {
			t.Errorf("the model accepts what the kernel must drop: %s on %s (%v)", f.probe, f.iif, v.Rule)
		}
	}
	for _, port := range []uint16{22, 5432} {
		if v := model("wg0", admin4, vpsVPN4, "tcp", port); !v.Accepted || !v.Certain {
			t.Errorf("the model does not surely accept the VPN's %s → %s:%d: %+v", admin4, vpsVPN4, port, v)
		}
	}

	// A boot: the VPN interface appears after the table (moat-vpn starts
	// after moat-firewall), with a new index. Matched by name, it is the
	// VPN at once; the forgeries stay dropped.
	w.vps.MustRun(t, "ip", "link", "del", "wg0")
	w.l.Link(w.vps, "wg0", w.admin, "wg0", []string{vpsVPN4 + "/24", vpsVPN6 + "/64"}, []string{admin4 + "/24", admin6 + "/64"})
	check(t, append([]probe{
		{from: w.admin, network: "tcp", dst: hostPort(vpsVPN4, 22), open: true},
		{from: w.admin, network: "tcp", dst: hostPort(vpsVPN6, 5432), open: true},
	}, after[:8]...))
}
