// Package prefix is the one answer to "which network does a source stand
// for": the canonical form of a prefix (masked, no zone, IPv4-mapped
// written as IPv4) and the widening of IPv6 sources to the ban prefix
// (attackers rotate inside their /64). The jail counts and decides by it,
// the firewall's ban sets store by it, so a decision and its kernel
// element never disagree.
package prefix

import "net/netip"

// Canonical masks p, drops its zone and writes an IPv4-mapped prefix as
// IPv4. ok is false for an invalid prefix, and for a mapped one shorter
// than /96, which covers more than IPv4 and has no IPv4 form.
func Canonical(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return netip.Prefix{}, false
		}
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked(), true
}

// Widen returns the prefix source a is counted and banned by: the address
// alone for IPv4, its /v6Bits network for IPv6 (v6Bits 128: the address
// alone). a is unmapped first.
func Widen(a netip.Addr, v6Bits int) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(v6Bits)
	return p
}

// WidenPrefix is Canonical, then an IPv6 prefix longer than v6Bits is
// widened to v6Bits.
func WidenPrefix(p netip.Prefix, v6Bits int) (netip.Prefix, bool) {
	p, ok := Canonical(p)
	if !ok {
		return p, false
	}
	if p.Addr().Is6() && p.Bits() > v6Bits {
		p = netip.PrefixFrom(p.Addr(), v6Bits).Masked()
	}
	return p, true
}
