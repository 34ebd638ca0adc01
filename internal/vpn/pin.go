package vpn

import (
	"net/netip"
	"slices"
	"strings"
)

// Pin is a VPN range with the interfaces its packets may arrive on. A
// source in the range that arrives anywhere else is not the VPN: a host on
// a container bridge or a second NIC can put any source address on its
// packets, and only the interface tells a tunnel from a forgery.
type Pin struct {
	// Interfaces are names or patterns (wg*) as nftables' iifname reads
	// them: matched by name, so an interface created after the rules (wg0
	// at boot, after moat-firewall) is recognised when it appears.
	Interfaces []string
	Prefixes   []netip.Prefix
}

// Link is a host interface as range detection sees it: its name and its
// addresses with their prefix lengths (host.Interface.Addrs).
type Link struct {
	Name  string
	Addrs []netip.Prefix
}

// Pins pins each VPN range (Prefixes) to the interfaces it arrives on:
//   - the managed WireGuard interface's subnets and its peers' addresses
//     (networks routed through a peer included) to vpn.wireguard's
//     interface;
//   - ranges inside Tailscale's (100.64.0.0/10, fd7a:115c:a1e0::/48) to
//     Tailscale's interface (a tailscale* name in vpn.interfaces, else
//     tailscale0);
//   - any other vpn.ranges entry to the interfaces of links that hold an
//     address whose subnet covers it, or, for VPN-named links (wg*, tun*,
//     …), overlaps it; failing that to vpn.interfaces.
//
// public (the internet-facing interface) is never a range's interface. A
// range with no interface at all is left out: it is not trusted from
// anywhere. The result is deterministic: pins in the order of their first
// range, interfaces sorted.
func (c Config) Pins(links []Link, public string) []Pin {
	pins, _ := c.pin(links, public)
	return pins
}

// Unpinned are the VPN ranges Pins leaves out: no interface carries them
// and vpn.interfaces is empty, so they are trusted from nowhere.
func (c Config) Unpinned(links []Link, public string) []netip.Prefix {
	_, none := c.pin(links, public)
	return none
}

func (c Config) pin(links []Link, public string) (out []Pin, none []netip.Prefix) {
	add := func(ifs []string, p netip.Prefix) {
		ifs = slices.DeleteFunc(slices.Clone(ifs), func(n string) bool { return n == "" || n == public })
		if len(ifs) == 0 {
			none = append(none, p)
			return
		}
		slices.Sort(ifs)
		ifs = slices.Compact(ifs)
		for i := range out {
			if slices.Equal(out[i].Interfaces, ifs) {
				out[i].Prefixes = append(out[i].Prefixes, p)
				return
			}
		}
		out = append(out, Pin{Interfaces: ifs, Prefixes: []netip.Prefix{p}})
	}
	for _, p := range c.Prefixes() {
		switch {
		case c.wireGuardOwns(p):
			add([]string{c.WireGuard.Name()}, p)
		case within(p, TailscaleV4) || within(p, TailscaleV6):
			add(c.tailscaleInterfaces(), p)
		default:
			ifs := detect(links, p, public)
			if len(ifs) == 0 {
				ifs = c.Interfaces
			}
			add(ifs, p)
		}
	}
	return out, none
}

// wireGuardOwns reports whether p is the managed interface's: inside one
// of its subnets, or a peer's address or routed network.
func (c Config) wireGuardOwns(p netip.Prefix) bool {
	w := c.WireGuard
	if w == nil {
		return false
	}
	for _, s := range w.Subnets() {
		if within(p, s) {
			return true
		}
	}
	for _, peer := range w.Peers {
		for _, a := range peer.Addresses {
			if within(p, a.Prefix.Masked()) {
				return true
			}
		}
	}
	return false
}

// tailscaleInterfaces are the tailscale* names in vpn.interfaces, or
// tailscaled's default tailscale0.
func (c Config) tailscaleInterfaces() []string {
	var out []string
	for _, n := range c.Interfaces {
		if strings.HasPrefix(n, "tailscale") {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []string{"tailscale0"}
	}
	return out
}

// detect names the links that carry p: one of their subnets covers it, or
// the link looks like a VPN and one of its subnets overlaps it.
func detect(links []Link, p netip.Prefix, public string) []string {
	var out []string
	for _, l := range links {
		if l.Name == public {
			continue
		}
		for _, a := range l.Addrs {
			if a.Addr().IsLinkLocalUnicast() || a.Addr().Is4() != p.Addr().Is4() {
				continue
			}
			s := a.Masked()
			if within(p, s) || (IsVPNInterface(l.Name) && s.Overlaps(p)) {
				out = append(out, l.Name)
				break
			}
		}
	}
	return out
}

// within reports whether p lies inside outer.
func within(p, outer netip.Prefix) bool {
	return p.Addr().Is4() == outer.Addr().Is4() && outer.Bits() <= p.Bits() && outer.Contains(p.Addr())
}

// PinnedContains reports whether a packet from a arriving on iface is the
// VPN's: a is in a range pinned to iface (patterns like wg* match).
func PinnedContains(pins []Pin, iface string, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range pins {
		if !slices.ContainsFunc(p.Interfaces, func(n string) bool { return MatchInterface(n, iface) }) {
			continue
		}
		for _, r := range p.Prefixes {
			if r.Contains(a) {
				return true
			}
		}
	}
	return false
}

// MatchInterface matches an interface name against a name or a pattern
// ending in * (wg*), as nftables' iifname does.
func MatchInterface(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}
