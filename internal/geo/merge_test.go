package geo

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go4.org/netipx"
)

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func join(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"empty", nil, ""},
		{"single", []string{"192.0.2.0/24"}, "192.0.2.0/24"},
		{"host bits masked", []string{"192.0.2.77/24"}, "192.0.2.0/24"},
		{"duplicates", []string{"192.0.2.0/24", "192.0.2.0/24"}, "192.0.2.0/24"},
		{"adjacent halves", []string{"192.0.2.128/25", "192.0.2.0/25"}, "192.0.2.0/24"},
		{"adjacent unaligned", []string{"10.0.1.0/24", "10.0.2.0/24"}, "10.0.1.0/24 10.0.2.0/24"},
		{"run of three", []string{"10.0.3.0/24", "10.0.1.0/24", "10.0.2.0/24"}, "10.0.1.0/24 10.0.2.0/23"},
		{"run of four", []string{"10.0.3.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.0.0/24"}, "10.0.0.0/22"},
		{"contained", []string{"10.1.0.0/16", "10.0.0.0/8", "10.200.3.0/24"}, "10.0.0.0/8"},
		{"overlap extends", []string{"10.0.0.0/23", "10.0.1.0/24", "10.0.2.0/23"}, "10.0.0.0/22"},
		{"gap kept", []string{"10.0.0.0/24", "10.0.2.0/24"}, "10.0.0.0/24 10.0.2.0/24"},
		{"hosts to blocks", []string{"10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", "10.0.0.4/32", "10.0.0.5/32", "10.0.0.6/32"},
			"10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32"},
		{"whole v4", []string{"0.0.0.0/1", "128.0.0.0/1"}, "0.0.0.0/0"},
		{"whole v4 twice", []string{"0.0.0.0/0", "0.0.0.0/0", "1.2.3.4/32"}, "0.0.0.0/0"},
		{"top of v4", []string{"255.255.255.255/32", "255.255.255.254/32"}, "255.255.255.254/31"},
		{"bottom of v4", []string{"0.0.0.1/32", "0.0.0.0/32"}, "0.0.0.0/31"},
		{"whole v6", []string{"8000::/1", "::/1"}, "::/0"},
		{"top of v6", []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128"},
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"},
		{"v6 across 64-bit halves", []string{"2001:db8:0:0:8000::/65", "2001:db8:0:1::/65"}, "2001:db8:0:0:8000::/65 2001:db8:0:1::/65"},
		{"v6 halves join", []string{"2001:db8::/33", "2001:db8:8000::/33"}, "2001:db8::/32"},
		{"families apart, v4 first", []string{"2001:db8::/32", "10.0.0.0/8", "2001:db9::/32", "11.0.0.0/8"},
			"10.0.0.0/7 2001:db8::/31"},
		{"mapped stays v6", []string{"::ffff:10.0.0.0/104", "10.0.0.0/8"}, "10.0.0.0/8 ::ffff:10.0.0.0/104"},
		{"zero v4 and v6 apart", []string{"0.0.0.0/0", "::/0"}, "0.0.0.0/0 ::/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := prefixes(t, tt.in...)
			orig := slices.Clone(in)
			got := join(Merge(in))
			if got != tt.want {
				t.Errorf("Merge(%v)\n got: %s\nwant: %s", tt.in, got, tt.want)
			}
			if !slices.Equal(in, orig) {
				t.Errorf("Merge modified its input")
			}
		})
	}
}

func TestMergeIgnoresInvalid(t *testing.T) {
	got := Merge([]netip.Prefix{{}, netip.MustParsePrefix("10.0.0.0/8")})
	if join(got) != "10.0.0.0/8" {
		t.Errorf("got %s", join(got))
	}
}

// checkMerged asserts that out is a valid merge of in: sorted, disjoint,
// no two siblings (which makes it the unique minimal cover), and covering
// exactly the addresses of in.
func checkMerged(t testing.TB, in, out []netip.Prefix) {
	t.Helper()
	for i, p := range out {
		if p != p.Masked() {
			t.Fatalf("output %s is not masked", p)
		}
		if i == 0 {
			continue
		}
		q := out[i-1]
		if q.Addr().Is4() != p.Addr().Is4() {
			if p.Addr().Is4() {
				t.Fatalf("IPv4 %s after IPv6 %s", p, q)
			}
			continue
		}
		if spanOf(q).last.cmp(spanOf(p).first) >= 0 {
			t.Fatalf("output not sorted or overlapping: %s then %s", q, p)
		}
		if q.Bits() == p.Bits() && q.Bits() > 0 {
			pq, _ := q.Addr().Prefix(q.Bits() - 1)
			pp, _ := p.Addr().Prefix(p.Bits() - 1)
			if pq == pp {
				t.Fatalf("siblings %s and %s should be one %s", q, p, pq)
			}
		}
	}
	// Both sides are unions of intervals: they cover the same addresses
	// iff they agree at every interval edge of either side and just past it.
	covered := func(ps []netip.Prefix, a netip.Addr) bool {
		for _, p := range ps {
			if p.IsValid() && p.Contains(a) {
				return true
			}
		}
		return false
	}
	var probes []netip.Addr
	for _, p := range slices.Concat(in, out) {
		if !p.IsValid() {
			continue
		}
		first := p.Masked().Addr()
		last := netipx.PrefixLastIP(p)
		probes = append(probes, first, last, first.Prev(), last.Next())
	}
	for _, a := range probes {
		if !a.IsValid() {
			continue
		}
		if ci, co := covered(in, a), covered(out, a); ci != co {
			t.Fatalf("address %s: covered by input %v, by output %v", a, ci, co)
		}
	}
}

// netipxMerge is an independent implementation of Merge.
func netipxMerge(ps []netip.Prefix) []netip.Prefix {
	var b netipx.IPSetBuilder
	for _, p := range ps {
		if p.IsValid() {
			b.AddPrefix(p)
		}
	}
	s, _ := b.IPSet()
	return s.Prefixes()
}

func randomPrefixes(r *rand.Rand, n int) []netip.Prefix {
	// Few bases and long prefixes make overlaps and adjacency common.
	bases := []netip.Addr{
		netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("255.255.255.0"),
		netip.MustParseAddr("::"), netip.MustParseAddr("2001:db8::"), netip.MustParseAddr("2001:db8:0:0:ffff:ffff:ffff:ff00"),
		netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00"),
	}
	ps := make([]netip.Prefix, n)
	for i := range ps {
		base := bases[r.IntN(len(bases))]
		b := base.AsSlice()
		b[len(b)-1] = byte(r.IntN(256))
		b[len(b)-2] ^= byte(r.IntN(4))
		a, _ := netip.AddrFromSlice(b)
		w := a.BitLen()
		bits := w - r.IntN(12)
		if r.IntN(20) == 0 {
			bits = r.IntN(w + 1) // now and then a huge one
		}
		ps[i] = netip.PrefixFrom(a, bits)
	}
	return ps
}

func TestMergeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		in := randomPrefixes(r, 1+r.IntN(64))
		got := Merge(in)
		checkMerged(t, in, got)
		if want := netipxMerge(in); !slices.Equal(got, want) {
			t.Fatalf("case %d: Merge(%s)\n got: %s\nwant: %s", i, join(in), join(got), join(want))
		}
	}
}

// TestMergeExhaustive compares coverage address by address in a small
// space, independently of any interval reasoning.
func TestMergeExhaustive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	space := netip.MustParsePrefix("10.0.0.0/22")
	index := func(a netip.Addr) int { b := a.As4(); return int(b[2])<<8 | int(b[3]) }
	for range 500 {
		var in []netip.Prefix
		var want [1024]bool
		for range 1 + r.IntN(24) {
			bits := 22 + r.IntN(11)
			a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))})
			p := netip.PrefixFrom(a, bits).Masked()
			in = append(in, p)
			for a := p.Addr(); p.Contains(a); a = a.Next() {
				want[index(a)] = true
			}
		}
		var got [1024]bool
		for _, p := range Merge(in) {
			if !space.Contains(p.Addr()) || p.Bits() < space.Bits() {
				t.Fatalf("output %s outside the input space", p)
			}
			for a := p.Addr(); p.Contains(a); a = a.Next() {
				got[index(a)] = true
			}
		}
		if got != want {
			t.Fatalf("Merge(%s) covers different addresses", join(in))
		}
	}
}

// FuzzMerge decodes prefixes from bytes, four per prefix, in a few small
// regions of both families so that overlap and adjacency are frequent.
func FuzzMerge(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2, 24, 0, 1, 3, 24})
	f.Add([]byte{1, 0, 0, 128, 1, 0, 1, 128, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := decodePrefixes(data)
		got := Merge(in)
		checkMerged(t, in, got)
		if want := netipxMerge(in); !slices.Equal(got, want) {
			t.Fatalf("Merge(%s)\n got: %s\nwant: %s", join(in), join(got), join(want))
		}
	})
}

func decodePrefixes(data []byte) []netip.Prefix {
	var ps []netip.Prefix
	for len(data) >= 4 && len(ps) < 256 {
		sel, x, y, bits := data[0], data[1], data[2], int(data[3])
		data = data[4:]
		var b []byte
		switch sel % 6 {
		case 0:
			b = []byte{10, 0, x, y}
		case 1:
			b = []byte{0, 0, x, y}
		case 2:
			b = []byte{255, 255, x, y}
		case 3:
			b = []byte{0x20, 0x01, 0x0d, 0xb8, 15: 0}
			b[14], b[15] = x, y
		case 4:
			b = make([]byte, 16)
			b[14], b[15] = x, y
		case 5:
			b = slices.Repeat([]byte{0xff}, 16)
			b[14], b[15] = x, y
		}
		a, _ := netip.AddrFromSlice(b)
		ps = append(ps, netip.PrefixFrom(a, bits%(a.BitLen()+1)))
	}
	return ps
}

func ExampleMerge() {
	for _, p := range Merge([]netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/25"),
		netip.MustParsePrefix("198.51.100.128/25"),
		netip.MustParsePrefix("198.51.101.0/24"),
		netip.MustParsePrefix("198.51.102.0/24"),
	}) {
		fmt.Println(p)
	}
	// Output:
	// 198.51.100.0/23
	// 198.51.102.0/24
}
