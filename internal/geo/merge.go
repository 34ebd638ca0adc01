package geo

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
)

// Merge returns the fewest prefixes that cover exactly the addresses of ps:
// overlapping and adjacent prefixes are joined, duplicates dropped. The
// result is sorted, IPv4 before IPv6, and its prefixes do not overlap.
// Invalid prefixes are ignored; IPv4-mapped IPv6 prefixes stay IPv6. ps is
// not modified.
func Merge(ps []netip.Prefix) []netip.Prefix {
	n4 := 0
	for _, p := range ps {
		if p.Addr().Is4() {
			n4++
		}
	}
	s4, s6 := make([]span, 0, n4), make([]span, 0, len(ps)-n4)
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		if p.Addr().Is4() {
			s4 = append(s4, spanOf(p))
		} else {
			s6 = append(s6, spanOf(p))
		}
	}
	out := appendMerged(nil, s4, 32)
	return appendMerged(out, s6, 128)
}

// u128 is an address as an integer: IPv4 in the low 32 bits, IPv6 in all.
type u128 struct{ hi, lo uint64 }

func (u u128) cmp(v u128) int {
	if c := cmp.Compare(u.hi, v.hi); c != 0 {
		return c
	}
	return cmp.Compare(u.lo, v.lo)
}

func (u u128) or(v u128) u128 { return u128{u.hi | v.hi, u.lo | v.lo} }

func (u u128) sub(v u128) u128 {
	lo, borrow := bits.Sub64(u.lo, v.lo, 0)
	return u128{u.hi - v.hi - borrow, lo}
}

// addOne returns u+1, wrapping to zero after the maximum.
func (u u128) addOne() u128 {
	lo, carry := bits.Add64(u.lo, 1, 0)
	return u128{u.hi + carry, lo}
}

// trailingZeros is 128 for zero.
func (u u128) trailingZeros() int {
	if u.lo != 0 {
		return bits.TrailingZeros64(u.lo)
	}
	return 64 + bits.TrailingZeros64(u.hi)
}

func (u u128) bitLen() int {
	if u.hi != 0 {
		return 64 + bits.Len64(u.hi)
	}
	return bits.Len64(u.lo)
}

// ones returns an integer with its low n bits set, 0 <= n <= 128.
func ones(n int) u128 {
	if n >= 64 {
		// A shift by 64 yields 0 in Go, so n == 128 gives all ones.
		return u128{1<<(n-64) - 1, ^uint64(0)}
	}
	return u128{0, 1<<n - 1}
}

func u128Of(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var u u128
	for i := range 8 {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[i+8])
	}
	return u
}

func (u u128) addr(width int) netip.Addr {
	if width == 32 {
		v := uint32(u.lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	for i := range 8 {
		b[7-i] = byte(u.hi >> (8 * i))
		b[15-i] = byte(u.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// span is an inclusive address range of one family.
type span struct{ first, last u128 }

func spanOf(p netip.Prefix) span {
	first := u128Of(p.Masked().Addr())
	return span{first, first.or(ones(p.Addr().BitLen() - p.Bits()))}
}

// appendMerged sorts spans (all of one family, width 32 or 128), joins
// overlapping and adjacent ones and appends the minimal prefix cover of
// each joined range to dst.
func appendMerged(dst []netip.Prefix, spans []span, width int) []netip.Prefix {
	if len(spans) == 0 {
		return dst
	}
	// Database walks yield spans in order; pdqsort is linear on sorted input.
	slices.SortFunc(spans, func(a, b span) int { return a.first.cmp(b.first) })
	cur := spans[0]
	for _, s := range spans[1:] {
		// Joinable when s starts at or before cur.last+1. cur.last being
		// the family's maximum makes every later span joinable; the check
		// avoids the wrap of addOne.
		if cur.last == ones(width) || s.first.cmp(cur.last.addOne()) <= 0 {
			if s.last.cmp(cur.last) > 0 {
				cur.last = s.last
			}
			continue
		}
		dst = appendRange(dst, cur, width)
		cur = s
	}
	return appendRange(dst, cur, width)
}

// appendRange appends the minimal prefix cover of one range: from the
// left, the largest block that is aligned at the current address and does
// not pass the end. Greedy is optimal here; the result is unique.
func appendRange(dst []netip.Prefix, r span, width int) []netip.Prefix {
	first := r.first
	for {
		host := min(first.trailingZeros(), width) // alignment allows 2^host
		d := r.last.sub(first)                    // the range holds d+1 addresses
		fit := d.bitLen()                         // 2^fit-1 <= d unless d is all ones below fit
		if d != ones(fit) {
			fit--
		}
		host = min(host, fit)
		dst = append(dst, netip.PrefixFrom(first.addr(width), width-host))
		end := first.or(ones(host))
		if end == r.last {
			return dst
		}
		first = end.addOne()
	}
}
