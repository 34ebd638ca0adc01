package geo

import (
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// maxNetworks bounds a walk, empty networks included: GeoLite2-Country has
// about 0.5 million networks with data, the City editions a few million.
var maxNetworks = 1 << 25 // a variable for the test of the bound

// Prefixes walks the database once and returns the networks of the given
// countries (ISO 3166-1 alpha-2, either case) as minimal merged CIDR lists
// per family, sorted. A network counts for a country by the same rule as
// Country. A country the database has no networks for contributes
// nothing; it is not an error (small territories have none).
func (db *DB) Prefixes(countries []string) (v4, v6 []netip.Prefix, err error) {
	want := make(map[string]bool, len(countries))
	for _, c := range countries {
		code, ok := normCode(c)
		if !ok {
			return nil, nil, fmt.Errorf("geo prefixes: %q is not a two-letter country code (hint: use ISO 3166-1 alpha-2 codes like DE or US)", c)
		}
		want[code] = true
	}
	r := db.reader.Load()
	if r == nil {
		return nil, nil, ErrClosed
	}
	if len(want) == 0 {
		return nil, nil, nil
	}

	// Whether a record matches, by data offset: a few hundred records are
	// shared by all networks, so each is decoded once.
	match := make(map[uintptr]bool, 512)
	var s4, s6 []span
	// Every network is yielded, empty and aliased ones too, so that the
	// count bounds the walk: a damaged tree whose nodes share children could
	// otherwise have the reader enumerate an astronomic number of paths
	// without yielding one. Aliases are skipped here instead.
	n := 0
	for res := range r.Networks(maxminddb.IncludeNetworksWithoutData(), maxminddb.IncludeAliasedNetworks()) {
		if err := res.Err(); err != nil {
			return nil, nil, fmt.Errorf("walk geo database %s: %w (hint: the file may be damaged; download it again)", db.meta.Path, err)
		}
		if n++; n > maxNetworks {
			return nil, nil, fmt.Errorf("walk geo database %s: more than %d networks, more than any country database has (hint: the file may be damaged; download it again)", db.meta.Path, maxNetworks)
		}
		if !res.Found() {
			continue
		}
		p := res.Prefix()
		if p.Addr().Is6() && aliasOfIPv4(p) {
			continue
		}
		off := res.Offset()
		ok, seen := match[off]
		if !seen {
			code, err := decodeCode(res)
			if err != nil {
				return nil, nil, fmt.Errorf("walk geo database %s: %w", db.meta.Path, err)
			}
			ok = want[code]
			match[off] = ok
		}
		if !ok {
			continue
		}
		if p.Addr().Is4() {
			s4 = append(s4, spanOf(p))
		} else {
			s6 = append(s6, spanOf(p))
		}
	}
	return appendMerged(nil, s4, 32), appendMerged(nil, s6, 128), nil
}

// ipv4Aliases are the IPv6 ranges that MaxMind trees point at the IPv4
// subtree: IPv4-mapped, Teredo and 6to4.
var ipv4Aliases = [...]netip.Prefix{
	netip.MustParsePrefix("::ffff:0:0/96"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// aliasOfIPv4 reports whether an IPv6 network lies inside an IPv4 alias.
func aliasOfIPv4(p netip.Prefix) bool {
	for _, a := range ipv4Aliases {
		if p.Bits() >= a.Bits() && a.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
