package ban

import (
	"encoding/binary"
	"iter"
	"net/netip"
	"slices"
)

// prefixSet maps prefixes to expiry times (unix nanoseconds, 0 for never)
// and answers "is this address banned" with one hash probe per prefix
// length in use: in practice two (/32 and the IPv6 ban prefix), however
// many bans there are. Keys and values hold no pointers, so a million
// entries cost the garbage collector nothing to scan. Not safe for
// concurrent use: Store guards it.
type prefixSet struct {
	v4    [33]map[uint32]int64
	v6    [129]map[v6key]int64
	lens4 []int // lengths with entries, longest first
	lens6 []int
	n     int
}

type v6key struct{ hi, lo uint64 }

func key4(a netip.Addr, bits int) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:]) & ^(^uint32(0) >> bits)
}

func key6(a netip.Addr, bits int) v6key {
	b := a.As16()
	k := v6key{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
	switch {
	case bits <= 64:
		k.hi &= ^(^uint64(0) >> bits)
		k.lo = 0
	default:
		k.lo &= ^(^uint64(0) >> (bits - 64))
	}
	return k
}

func (k v6key) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

// set records p (canonical: masked, IPv4 unmapped) with its expiry.
func (s *prefixSet) set(p netip.Prefix, expires int64) {
	bits := p.Bits()
	if p.Addr().Is4() {
		if s.v4[bits] == nil {
			s.v4[bits] = map[uint32]int64{}
			s.lens4 = insertLen(s.lens4, bits)
		}
		m := s.v4[bits]
		k := key4(p.Addr(), bits)
		if _, ok := m[k]; !ok {
			s.n++
		}
		m[k] = expires
		return
	}
	if s.v6[bits] == nil {
		s.v6[bits] = map[v6key]int64{}
		s.lens6 = insertLen(s.lens6, bits)
	}
	m := s.v6[bits]
	k := key6(p.Addr(), bits)
	if _, ok := m[k]; !ok {
		s.n++
	}
	m[k] = expires
}

// get returns p's expiry.
func (s *prefixSet) get(p netip.Prefix) (expires int64, ok bool) {
	if p.Addr().Is4() {
		expires, ok = s.v4[p.Bits()][key4(p.Addr(), p.Bits())]
	} else {
		expires, ok = s.v6[p.Bits()][key6(p.Addr(), p.Bits())]
	}
	return expires, ok
}

// delete removes p and reports whether it was there.
func (s *prefixSet) delete(p netip.Prefix) bool {
	bits := p.Bits()
	if p.Addr().Is4() {
		m := s.v4[bits]
		k := key4(p.Addr(), bits)
		if _, ok := m[k]; !ok {
			return false
		}
		delete(m, k)
		if len(m) == 0 {
			s.v4[bits] = nil // also returns the map's memory
			s.lens4 = removeLen(s.lens4, bits)
		}
	} else {
		m := s.v6[bits]
		k := key6(p.Addr(), bits)
		if _, ok := m[k]; !ok {
			return false
		}
		delete(m, k)
		if len(m) == 0 {
			s.v6[bits] = nil
			s.lens6 = removeLen(s.lens6, bits)
		}
	}
	s.n--
	return true
}

// lookup returns the latest expiry of the prefixes containing a
// (unmapped): 0 if one is permanent; ok is false when none does. The
// caller compares with the clock, which it reads only on a hit: most
// lookups miss, and a clock read costs as much as a probe.
func (s *prefixSet) lookup(a netip.Addr) (expires int64, ok bool) {
	if a.Is4() {
		b := a.As4()
		u := binary.BigEndian.Uint32(b[:])
		for _, bits := range s.lens4 {
			if exp, hit := s.v4[bits][u&^(^uint32(0)>>bits)]; hit {
				if exp == 0 {
					return 0, true
				}
				expires, ok = max(expires, exp), true
			}
		}
		return expires, ok
	}
	for _, bits := range s.lens6 {
		if exp, hit := s.v6[bits][key6(a, bits)]; hit {
			if exp == 0 {
				return 0, true
			}
			expires, ok = max(expires, exp), true
		}
	}
	return expires, ok
}

// contains reports whether a is in a prefix not expired at now.
func (s *prefixSet) contains(a netip.Addr, now int64) bool {
	exp, ok := s.lookup(a)
	return ok && (exp == 0 || exp > now)
}

// covering returns the latest expiry of the prefixes strictly wider than
// p that contain it, as lookup does.
func (s *prefixSet) covering(p netip.Prefix) (expires int64, ok bool) {
	a, pb := p.Addr(), p.Bits()
	hit := func(exp int64) bool {
		if exp == 0 {
			expires, ok = 0, true
			return true
		}
		expires, ok = max(expires, exp), true
		return false
	}
	if a.Is4() {
		for _, bits := range s.lens4 {
			if exp, found := s.v4[bits][key4(a, bits)]; bits < pb && found && hit(exp) {
				return 0, true
			}
		}
		return expires, ok
	}
	for _, bits := range s.lens6 {
		if exp, found := s.v6[bits][key6(a, bits)]; bits < pb && found && hit(exp) {
			return 0, true
		}
	}
	return expires, ok
}

// overlapping returns the prefixes in the set that overlap p, expired or
// not: those containing p by lookup, those inside p by a scan of the
// longer lengths (only for an unban of a network wider than the bans).
func (s *prefixSet) overlapping(p netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	a, pb := p.Addr(), p.Bits()
	if a.Is4() {
		for _, bits := range s.lens4 {
			if bits <= pb {
				if _, ok := s.v4[bits][key4(a, bits)]; ok {
					out = append(out, netip.PrefixFrom(a, bits).Masked())
				}
				continue
			}
			for k := range s.v4[bits] {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], k)
				if q := netip.PrefixFrom(netip.AddrFrom4(b), bits); p.Overlaps(q) {
					out = append(out, q)
				}
			}
		}
		return out
	}
	for _, bits := range s.lens6 {
		if bits <= pb {
			if _, ok := s.v6[bits][key6(a, bits)]; ok {
				out = append(out, netip.PrefixFrom(a, bits).Masked())
			}
			continue
		}
		for k := range s.v6[bits] {
			if q := netip.PrefixFrom(k.addr(), bits); p.Overlaps(q) {
				out = append(out, q)
			}
		}
	}
	return out
}

func (s *prefixSet) len() int { return s.n }

func insertLen(lens []int, bits int) []int {
	lens = append(lens, bits)
	slices.SortFunc(lens, func(a, b int) int { return b - a })
	return lens
}

func removeLen(lens []int, bits int) []int {
	return slices.DeleteFunc(lens, func(b int) bool { return b == bits })
}

// all yields every prefix with its expiry. The set must not change while
// the iteration runs.
func (s *prefixSet) all() iter.Seq2[netip.Prefix, int64] {
	return func(yield func(netip.Prefix, int64) bool) {
		for bits, m := range s.v4 {
			for k, exp := range m {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], k)
				if !yield(netip.PrefixFrom(netip.AddrFrom4(b), bits), exp) {
					return
				}
			}
		}
		for bits, m := range s.v6 {
			for k, exp := range m {
				if !yield(netip.PrefixFrom(k.addr(), bits), exp) {
					return
				}
			}
		}
	}
}
