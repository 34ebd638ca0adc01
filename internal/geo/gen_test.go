package geo

import (
	"math/rand/v2"
	"net/netip"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// genCode is the country code of country i: AA, AB, …
func genCode(i int) string { return string([]byte{byte('A' + i/26), byte('A' + i%26)}) }

// genEntries makes a database shaped like a real country database: runs of
// networks of skewed sizes walking up the address space, often the same
// country as the previous network under a different record (so the writer
// cannot merge them and Prefixes must), now and then a gap or a network
// without a country. Countries are genCode(0..199), the low ones common.
func genEntries(r *rand.Rand, n4, n6 int) []entry {
	// A few records per country, the way registered_country varies.
	const countries, variants = 200, 3
	recs := make([][]entry, countries)
	for c := range recs {
		for v := range variants {
			recs[c] = append(recs[c], entry{record: rec(genCode(c), genCode((c+v)%countries), genCode(v))})
		}
	}
	pick := func() int { return int(r.ExpFloat64()*20) % countries }
	none := rec("", "")

	var out []entry
	walk := func(start netip.Addr, n, minBits, maxBits int) {
		width := start.BitLen()
		cur := u128Of(start)
		country := pick()
		for range n {
			bits := maxBits - int(r.ExpFloat64()*2)%(maxBits-minBits+1)
			for cur.trailingZeros() < width-bits {
				bits++ // align: cur must be the network's first address
			}
			p := netip.PrefixFrom(cur.addr(width), bits)
			var m mmdbtype.Map
			switch x := r.IntN(100); {
			case x < 3:
				m = none
			case x < 6:
				// a gap
			default:
				if x > 55 {
					country = pick()
				}
				m = recs[country][r.IntN(variants)].record
			}
			if m != nil {
				out = append(out, entry{p.String(), m})
			}
			cur = cur.or(ones(width - bits)).addOne()
		}
	}
	walk(netip.MustParseAddr("1.0.0.0"), n4, 16, 24)
	walk(netip.MustParseAddr("2400::"), n6, 28, 48)
	return out
}
