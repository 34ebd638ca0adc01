package filter

import "net/netip"

// parseAddr parses b as an IPv4 or IPv6 address, strictly: decimal IPv4
// octets without leading zeros, RFC 4291 IPv6 text, no zone, nothing
// before or after. IPv4-mapped IPv6 addresses are unmapped, so one host
// has one key. It allocates nothing, unlike netip.ParseAddr on a
// converted []byte, and agrees with netip.ParseAddr on every input
// without a zone (FuzzParseAddr checks it).
func parseAddr(b []byte) (netip.Addr, bool) {
	for _, c := range b {
		switch c {
		case '.':
			return parseIPv4(b)
		case ':':
			a, ok := parseIPv6(b)
			return a.Unmap(), ok
		}
	}
	return netip.Addr{}, false
}

// parseIPv4 parses dotted-quad b.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var v [4]byte
	if !parseIPv4Into(b, &v) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(v), true
}

func parseIPv4Into(b []byte, v *[4]byte) bool {
	i, n := 0, 0
	for n < 4 {
		if i >= len(b) {
			return false
		}
		start, val := i, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			val = val*10 + int(b[i]-'0')
			i++
			if i-start > 3 {
				return false
			}
		}
		switch {
		case i == start, val > 255, i-start > 1 && b[start] == '0':
			return false
		}
		v[n] = byte(val)
		n++
		if n < 4 {
			if i >= len(b) || b[i] != '.' {
				return false
			}
			i++
		}
	}
	return i == len(b)
}

// parseIPv6 parses b as an IPv6 address: eight groups of at most four hex
// digits, at most one "::", an optional trailing dotted quad.
func parseIPv6(b []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1
	i := 0
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		i = 2
		if i == len(b) {
			return netip.AddrFrom16(ip), true
		}
	}
	n := 0 // bytes filled
	for n < 16 {
		off, val := i, 0
		for i < len(b) && i-off < 5 {
			d, ok := hexVal(b[i])
			if !ok {
				break
			}
			val = val<<4 | d
			i++
		}
		if i-off == 0 || i-off > 4 {
			return netip.Addr{}, false
		}
		if i < len(b) && b[i] == '.' {
			// Embedded IPv4 in the last 32 bits.
			if ellipsis < 0 && n != 12 || n > 12 {
				return netip.Addr{}, false
			}
			var v4 [4]byte
			if !parseIPv4Into(b[off:], &v4) {
				return netip.Addr{}, false
			}
			copy(ip[n:], v4[:])
			n += 4
			i = len(b)
			break
		}
		ip[n], ip[n+1] = byte(val>>8), byte(val)
		n += 2
		if i == len(b) {
			break
		}
		if b[i] != ':' || i+1 == len(b) {
			return netip.Addr{}, false
		}
		i++
		if b[i] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = n
			i++
			if i == len(b) {
				break
			}
		}
	}
	if i != len(b) {
		return netip.Addr{}, false
	}
	if n < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		gap := 16 - n
		copy(ip[ellipsis+gap:], ip[ellipsis:n])
		clear(ip[ellipsis : ellipsis+gap])
	} else if ellipsis >= 0 {
		// "::" must stand for at least one group.
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip), true
}

func hexVal(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// attributable reports whether a is an address a failure can be pinned
// on: a real unicast peer, not the unspecified or a multicast address,
// which no TCP peer can have.
func attributable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}
