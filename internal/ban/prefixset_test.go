package ban

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestPrefixSet(t *testing.T) {
	var s prefixSet
	s.set(pfx("10.0.0.0/8"), 0)
	s.set(pfx("192.0.2.1/32"), 100)
	s.set(pfx("2001:db8:1:2::/64"), 0)
	s.set(pfx("2001:db8::5/128"), 0)
	s.set(pfx("0.0.0.0/0"), 50)
	for _, tt := range []struct {
		addr string
		now  int64
		want bool
	}{
		{"10.255.1.1", 200, true},
		{"11.0.0.1", 10, true}, // 0.0.0.0/0 until 50
		{"11.0.0.1", 50, false},
		{"192.0.2.1", 99, true},
		{"192.0.2.1", 100, false},
		{"2001:db8:1:2:ffff::1", 0, true},
		{"2001:db8:1:3::1", 0, false},
		{"2001:db8::5", 0, true},
		{"2001:db8::6", 0, false},
		{"::ffff:10.0.0.1", 0, false}, // callers unmap: an IPv6 address is not an IPv4 one
	} {
		if got := s.contains(netip.MustParseAddr(tt.addr), tt.now); got != tt.want {
			t.Errorf("contains(%s, %d) = %v", tt.addr, tt.now, got)
		}
	}
	if s.len() != 5 || !s.delete(pfx("0.0.0.0/0")) || s.delete(pfx("0.0.0.0/0")) || s.len() != 4 {
		t.Fatal("delete")
	}
	if s.contains(netip.MustParseAddr("11.0.0.1"), 0) || len(s.lens4) != 2 {
		t.Fatalf("after delete: lens %v", s.lens4)
	}
	s.set(pfx("10.0.0.0/8"), 7) // update, not a second entry
	if s.len() != 4 {
		t.Fatal("set twice counted twice")
	}
}

// TestPrefixSetRandom checks contains and overlapping against netip's
// Prefix methods over random prefixes.
func TestPrefixSetRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			b[0], b[1] = 0x20, 0x01 // keep them near each other
			b[2] = byte(r.IntN(4))
			for i := 3; i < 16; i++ {
				b[i] = byte(r.IntN(3))
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(3)), byte(r.IntN(3)), byte(r.IntN(8))})
	}
	var s prefixSet
	var all []netip.Prefix
	for range 400 {
		v6 := r.IntN(2) == 0
		a := randAddr(v6)
		bits := 8 + r.IntN(a.BitLen()-7)
		p, _ := a.Prefix(bits)
		if !slices.Contains(all, p) {
			all = append(all, p)
		}
		s.set(p, 0)
	}
	if s.len() != len(all) {
		t.Fatalf("len %d, want %d", s.len(), len(all))
	}
	for range 5000 {
		a := randAddr(r.IntN(2) == 0)
		want := slices.ContainsFunc(all, func(p netip.Prefix) bool { return p.Contains(a) })
		if got := s.contains(a, 0); got != want {
			t.Fatalf("contains(%s) = %v, want %v", a, got, want)
		}
		q, _ := a.Prefix(8 + r.IntN(a.BitLen()-7))
		var wantO []netip.Prefix
		for _, p := range all {
			if p.Overlaps(q) {
				wantO = append(wantO, p)
			}
		}
		gotO := s.overlapping(q)
		cmp := func(a, b netip.Prefix) int { return a.Compare(b) }
		slices.SortFunc(gotO, cmp)
		slices.SortFunc(wantO, cmp)
		if !slices.Equal(gotO, wantO) {
			t.Fatalf("overlapping(%s) = %v, want %v", q, gotO, wantO)
		}
	}
	for _, p := range all {
		if !s.delete(p) {
			t.Fatalf("delete %s", p)
		}
	}
	if s.len() != 0 || len(s.lens4)+len(s.lens6) != 0 {
		t.Fatal("not empty")
	}
}
