package ruleset

import (
	"encoding/binary"
	"net/netip"
)

// xtMatch evaluates an iptables-nft match from the info struct the kernel
// holds (<linux/netfilter/xt_*.h>, host byte order unless noted). An
// extension or revision not modelled here is undecided, never guessed.
func (e *evaluator) xtMatch(x *xtExpr) tri {
	v := &e.view
	b := x.info
	ne := binary.NativeEndian
	switch x.name {
	case "comment":
		return yes
	case "tcp":
		// struct xt_tcp { u16 spts[2], dpts[2]; u8 option, flg_mask, flg_cmp, invflags; }
		if len(b) < 12 {
			return maybe
		}
		if !v.l4Known || v.l4 != 6 {
			return maybeIf(!v.l4Known)
		}
		inv := b[11]
		r := portRange(v.sport, ne.Uint16(b[0:]), ne.Uint16(b[2:]), inv&0x01 != 0)
		r = and(r, portRange(v.dport, ne.Uint16(b[4:]), ne.Uint16(b[6:]), inv&0x02 != 0))
		if b[9] != 0 {
			f := maybe
			if v.flagsKnow {
				f = triOf(byte(v.tcpFlags)&b[9] == b[10])
				if inv&0x04 != 0 {
					f = f.not()
				}
			}
			r = and(r, f)
		}
		if b[8] != 0 {
			r = and(r, maybe) // a TCP option
		}
		return r
	case "udp":
		// struct xt_udp { u16 spts[2], dpts[2]; u8 invflags; }
		if len(b) < 9 {
			return maybe
		}
		if !v.l4Known || v.l4 != 17 {
			return maybeIf(!v.l4Known)
		}
		inv := b[8]
		return and(portRange(v.sport, ne.Uint16(b[0:]), ne.Uint16(b[2:]), inv&0x01 != 0),
			portRange(v.dport, ne.Uint16(b[4:]), ne.Uint16(b[6:]), inv&0x02 != 0))
	case "multiport":
		return v.multiport(x.rev, b)
	case "state":
		// struct xt_state_info { unsigned int statemask; }
		if len(b) < 4 || !v.stateKnown {
			return maybe
		}
		bit := uint32(v.state)
		if v.state == ctStateBits["untracked"] {
			bit = 1 << 4 // XT_STATE_UNTRACKED
		}
		return triOf(ne.Uint32(b)&bit != 0)
	case "limit":
		return yes // one fresh connection is under every rate
	case "hashlimit":
		// struct xt_hashlimit_mtinfo1/2/3 { char name[16]; cfg { u32 mode; ... } }:
		// "upto" matches a fresh source, "above" (XT_HASHLIMIT_INVERT) does not.
		if x.rev < 1 || len(b) < 20 {
			return maybe
		}
		return triOf(ne.Uint32(b[16:])&(1<<3) == 0)
	case "connlimit":
		// struct xt_connlimit_info { nf_inet_addr mask; u32 limit, flags; }:
		// this connection alone is counted.
		if len(b) < 24 {
			return maybe
		}
		return triOf((1 > ne.Uint32(b[16:])) != (ne.Uint32(b[20:])&1 != 0))
	case "recent":
		// struct xt_recent_mtinfo { u32 seconds, hit_count; u8 check_set, invert; ... }:
		// a fresh source is in no list; --set adds it and matches.
		if len(b) < 10 {
			return maybe
		}
		return triOf((b[8]&2 != 0) != (b[9] != 0))
	case "conntrack":
		return v.conntrack(x.rev, b)
	case "iprange":
		return v.iprange(x.rev, b)
	case "addrtype":
		return v.addrtype(x.rev, b)
	}
	return maybe
}

func maybeIf(unknown bool) tri {
	if unknown {
		return maybe
	}
	return no
}

func and(a, b tri) tri {
	switch {
	case a == no || b == no:
		return no
	case a == maybe || b == maybe:
		return maybe
	}
	return yes
}

func portRange(p, lo, hi uint16, inv bool) tri {
	if lo == 0 && hi == 0xffff && !inv {
		return yes
	}
	if p == 0 {
		return maybe
	}
	r := triOf(lo <= p && p <= hi)
	if inv {
		r = r.not()
	}
	return r
}

// xtStateBit maps nft's ct state bits to xt_conntrack's: the same for
// invalid, established, related and new; untracked differs.
func xtStateBit(nft uint64) uint32 {
	if nft == ctStateBits["untracked"] {
		return 1 << 8 // XT_CONNTRACK_STATE_UNTRACKED
	}
	return uint32(nft)
}

func (v *view) multiport(rev uint32, b []byte) tri {
	// struct xt_multiport { u8 flags, count; u16 ports[15]; } and _v1 adds
	// u8 pflags[15], invert.
	if len(b) < 32 {
		return maybe
	}
	if !v.l4Known || !hasPorts(v.l4) {
		return maybeIf(!v.l4Known)
	}
	flags, count := b[0], int(b[1])
	if count > 15 {
		return maybe
	}
	ne := binary.NativeEndian
	port := func(i int) uint16 { return ne.Uint16(b[2+2*i:]) }
	var pflags []byte
	invert := false
	if rev >= 1 {
		if len(b) < 48 {
			return maybe
		}
		pflags, invert = b[32:47], b[47] != 0
	}
	matches := func(p uint16) tri {
		if p == 0 {
			return maybe
		}
		for i := 0; i < count; i++ {
			if pflags != nil && pflags[i] != 0 && i+1 < count {
				if port(i) <= p && p <= port(i+1) {
					return triOf(!invert)
				}
				i++
				continue
			}
			if port(i) == p {
				return triOf(!invert)
			}
		}
		return triOf(invert)
	}
	switch flags {
	case 0: // source
		return matches(v.sport)
	case 1: // destination
		return matches(v.dport)
	case 2: // either
		s, d := matches(v.sport), matches(v.dport)
		switch {
		case s == yes || d == yes:
			return yes
		case s == maybe || d == maybe:
			return maybe
		}
		return no
	}
	return maybe
}

// conntrack reads struct xt_conntrack_mtinfo1/2/3: eight nf_inet_addr
// (128 bytes), expires (8), l4proto (2), four ports (8), match_flags and
// invert_flags (u16 each), then state_mask and status_mask (u8 in rev 1,
// u16 after). Only the state part is modelled.
func (v *view) conntrack(rev uint32, b []byte) tri {
	const flagsAt = 146
	if rev < 1 || len(b) < flagsAt+6 {
		return maybe
	}
	ne := binary.NativeEndian
	match, inv := ne.Uint16(b[flagsAt:]), ne.Uint16(b[flagsAt+2:])
	var stateMask uint32
	if rev == 1 {
		stateMask = uint32(b[flagsAt+4])
	} else {
		stateMask = uint32(ne.Uint16(b[flagsAt+4:]))
	}
	const flagState = 1 << 0
	if match&^(flagState|1<<13) != 0 { // anything but state (and its alias flag)
		return maybe
	}
	if match&flagState == 0 {
		return yes
	}
	if !v.stateKnown {
		return maybe
	}
	bit := xtStateBit(v.state)
	if v.status&ctStatusBits["dnat"] != 0 {
		bit |= 1 << 7 // XT_CONNTRACK_STATE_DNAT
	}
	r := triOf(stateMask&bit != 0)
	if inv&flagState != 0 {
		r = r.not()
	}
	return r
}

// iprange reads struct xt_iprange_mtinfo: src_min, src_max, dst_min,
// dst_max (nf_inet_addr, network order) and flags.
func (v *view) iprange(rev uint32, b []byte) tri {
	if rev != 1 || len(b) < 65 {
		return maybe
	}
	flags := b[64]
	addr := func(at int) netip.Addr {
		if v.v6 {
			return netip.AddrFrom16([16]byte(b[at : at+16]))
		}
		return netip.AddrFrom4([4]byte(b[at : at+4]))
	}
	check := func(a netip.Addr, lo, hi int, inv bool) tri {
		if !a.IsValid() {
			return maybe
		}
		r := triOf(a.Compare(addr(lo)) >= 0 && a.Compare(addr(hi)) <= 0)
		if inv {
			r = r.not()
		}
		return r
	}
	r := yes
	if flags&0x01 != 0 {
		r = and(r, check(v.saddr, 0, 16, flags&0x10 != 0))
	}
	if flags&0x02 != 0 {
		r = and(r, check(v.daddr, 32, 48, flags&0x20 != 0))
	}
	return r
}

// addrtype reads struct xt_addrtype_info_v1 { u16 source, dest; u32 flags; }
// (or rev 0: u16 source, dest; u32 invert_source, invert_dest): route types
// as bits 1<<RTN_*.
func (v *view) addrtype(rev uint32, b []byte) tri {
	ne := binary.NativeEndian
	var src, dst uint16
	var invSrc, invDst, limit bool
	switch {
	case rev == 1 && len(b) >= 8:
		src, dst = ne.Uint16(b[0:]), ne.Uint16(b[2:])
		f := ne.Uint32(b[4:])
		invSrc, invDst, limit = f&1 != 0, f&2 != 0, f&(4|8) != 0
	case rev == 0 && len(b) >= 12:
		src, dst = ne.Uint16(b[0:]), ne.Uint16(b[2:])
		invSrc, invDst = ne.Uint32(b[4:]) != 0, ne.Uint32(b[8:]) != 0
	default:
		return maybe
	}
	if limit {
		return maybe
	}
	if v.v6 {
		return and(v.addrtype6(v.saddr, src, invSrc, v.saddr.IsValid() && v.saddr.IsLoopback()),
			v.addrtype6(v.daddr, dst, invDst, v.local))
	}
	const rtnUnicast, rtnLocal = 1, 2
	r := yes
	if src != 0 {
		typ := uint16(1 << rtnUnicast)
		switch {
		case !v.saddr.IsValid():
			r = and(r, maybe)
		case v.saddr.IsLoopback():
			typ = 1 << rtnLocal
		}
		m := triOf(src&typ != 0)
		if invSrc {
			m = m.not()
		}
		if v.saddr.IsValid() {
			r = and(r, m)
		}
	}
	if dst != 0 {
		typ := uint16(1 << rtnUnicast)
		if v.local {
			typ = 1 << rtnLocal
		}
		m := triOf(dst&typ != 0)
		if invDst {
			m = m.not()
		}
		r = and(r, m)
	}
	return r
}

// addrtype6 is xt_addrtype's match_type6: for IPv6 the requested types are
// each a condition on the address (UNICAST holds for any unicast address,
// local ones included), and only LOCAL, ANYCAST and UNREACHABLE ask the
// routing table.
func (v *view) addrtype6(a netip.Addr, mask uint16, inv, local bool) tri {
	if mask == 0 {
		return yes
	}
	if !a.IsValid() {
		return maybe
	}
	const (
		unspec      = 1 << 0
		unicast     = 1 << 1
		localT      = 1 << 2
		anycast     = 1 << 4
		multicast   = 1 << 5
		unreachable = 1 << 7
	)
	r := yes
	switch {
	case mask&multicast != 0 && !a.IsMulticast(),
		mask&unicast != 0 && (a.IsMulticast() || a.IsUnspecified()),
		mask&unspec != 0 && !a.IsUnspecified():
		r = no
	case mask&(localT|anycast|unreachable) != 0:
		typ := uint16(unicast)
		if local {
			typ = localT
		}
		r = triOf(mask&typ != 0)
	}
	if inv {
		r = r.not()
	}
	return r
}
