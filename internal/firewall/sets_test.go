package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/moat-sh/moat/internal/lab"
)

func TestRangePrefixes(t *testing.T) {
	a := netip.MustParseAddr
	cases := []struct {
		lo, hi string
		want   string
	}{
		{"1.2.3.4", "1.2.3.4", "1.2.3.4/32"},
		{"10.0.0.0", "10.255.255.255", "10.0.0.0/8"},
		{"10.0.0.0", "10.0.2.255", "10.0.0.0/23 10.0.2.0/24"},
		{"10.0.0.1", "10.0.0.6", "10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", "2001:db8::/64"},
	}
	for _, c := range cases {
		var got []string
		for _, p := range rangePrefixes(a(c.lo), a(c.hi)) {
			got = append(got, p.String())
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%s-%s: got %s, want %s", c.lo, c.hi, g, c.want)
		}
	}
}

func TestFromIntervals(t *testing.T) {
	key := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	// As the kernel dumps them: descending, ends flagged, the top range
	// without an end, and a range nft merged that is not one prefix.
	raw := []nftables.SetElement{
		{Key: key("255.255.255.0"), Timeout: time.Hour, Expires: time.Minute},
		{Key: key("10.0.3.0"), IntervalEnd: true},
		{Key: key("10.0.0.0"), Timeout: time.Hour},
		{Key: key("1.2.3.5"), IntervalEnd: true},
		{Key: key("1.2.3.4"), Timeout: 2 * time.Second, Expires: time.Second},
		{Key: key("1.2.3.4"), IntervalEnd: true},
		{Key: key("1.2.3.3")},
	}
	var got []string
	for _, e := range fromIntervals(raw) {
		got = append(got, fmt.Sprintf("%s/%s/%s", e.Prefix, e.Timeout, e.Expires))
	}
	want := "1.2.3.3/32/0s/0s 1.2.3.4/32/2s/1s 10.0.0.0/23/1h0m0s/0s 10.0.2.0/24/1h0m0s/0s 255.255.255.0/24/1h0m0s/1m0s"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("got  %s\nwant %s", g, want)
	}
}

func TestOutermostAndResolve(t *testing.T) {
	p := netip.MustParsePrefix
	in := []Element{
		{Prefix: p("10.1.2.3/32"), Timeout: 1},
		{Prefix: p("10.0.0.0/8"), Timeout: 2},
		{Prefix: p("192.0.2.1/32"), Timeout: 3},
		{Prefix: p("192.0.2.1/32"), Timeout: 4}, // the latest word wins
	}
	got := outermost(in)
	if len(got) != 2 || got[0].Prefix != p("10.0.0.0/8") || got[1].Timeout != 4 {
		t.Fatalf("outermost: %v", got)
	}
	cur := []Element{{Prefix: p("192.0.2.0/24")}, {Prefix: p("198.51.100.7/32")}, {Prefix: p("198.51.100.9/32")}, {Prefix: p("203.0.113.5/32")}}
	add := []Element{
		{Prefix: p("192.0.2.77/32")},   // inside a wider ban: skipped
		{Prefix: p("198.51.100.0/24")}, // covers two: they go
		{Prefix: p("203.0.113.5/32")},  // the same: replaced, for its timeout
		{Prefix: p("233.252.0.1/32")},  // new
		{Prefix: p("192.0.2.0/25")},    // inside a wider one starting at the same address
	}
	del, keep := resolve(cur, add)
	var dels []string
	for _, d := range del {
		dels = append(dels, d.start.String()+"-"+d.end.String())
	}
	if fmt.Sprint(dels) != "[198.51.100.7-198.51.100.8 198.51.100.9-198.51.100.10 203.0.113.5-203.0.113.6]" {
		t.Errorf("delete: %v", dels)
	}
	if fmt.Sprint(prefixesOf(keep)) != "[198.51.100.0/24 203.0.113.5/32 233.252.0.1/32]" {
		t.Errorf("keep: %v", prefixesOf(keep))
	}
}

func TestWiden(t *testing.T) {
	s := &Sets{v6Prefix: 64}
	got := s.widen([]Element{
		{Prefix: netip.MustParsePrefix("2001:db8:1:2:3:4:5:6/128")},
		{Prefix: netip.MustParsePrefix("::ffff:192.0.2.7/128")},
		{Prefix: netip.MustParsePrefix("2001:db8::/48")},
		{},
	})
	if fmt.Sprint(prefixesOf(got)) != "[2001:db8:1:2::/64 192.0.2.7/32 2001:db8::/48]" {
		t.Errorf("widen: %v", prefixesOf(got))
	}
}

// scratchSets runs fn with a Sets on a fresh table inet moat in a scratch
// namespace.
func scratchSets(t *testing.T, fn func(ctx context.Context, s *Sets)) {
	t.Helper()
	lab.RequireRoot(t)
	lab.RequireTool(t, "nft")
	spec := goldenSpecs()["stage3"] // has geo sets too
	err := inScratch(func() error {
		ctx := context.Background()
		if _, err := Replace(ctx, Render(spec), 64); err != nil {
			return err
		}
		s, err := NewSets(64)
		if err != nil {
			return err
		}
		defer s.Close()
		fn(ctx, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func listed(t *testing.T, ctx context.Context, s *Sets, kind Kind) map[netip.Prefix]Element {
	t.Helper()
	l, err := s.List(ctx, kind)
	if err != nil {
		t.Fatal(err)
	}
	m := map[netip.Prefix]Element{}
	for _, e := range l {
		m[e.Prefix] = e
	}
	return m
}

func TestSetsKernel(t *testing.T) {
	scratchSets(t, func(ctx context.Context, s *Sets) {
		p := netip.MustParsePrefix
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.Ban(ctx, []Element{
			{Prefix: p("192.0.2.7/32"), Timeout: time.Hour},
			{Prefix: p("198.51.100.0/24"), Timeout: time.Hour},
			{Prefix: p("2001:db8:1:2:3:4:5:6/128"), Timeout: time.Hour},
			{Prefix: p("203.0.113.9/32")}, // permanent
		}))
		got := listed(t, ctx, s, KindBan)
		for _, want := range []string{"192.0.2.7/32", "198.51.100.0/24", "2001:db8:1:2::/64", "203.0.113.9/32"} {
			if _, ok := got[p(want)]; !ok {
				t.Errorf("%s not listed: %v", want, got)
			}
		}
		if e := got[p("203.0.113.9/32")]; e.Timeout != 0 {
			t.Errorf("permanent ban has timeout %v", e.Timeout)
		}

		// Idempotent, and a renewed ban takes the new timeout.
		must(s.Ban(ctx, []Element{{Prefix: p("192.0.2.7/32"), Timeout: 10 * time.Hour}}))
		if e := listed(t, ctx, s, KindBan)[p("192.0.2.7/32")]; e.Timeout != 10*time.Hour || e.Expires < 9*time.Hour {
			t.Errorf("renewed ban: %+v", e)
		}

		// Overlaps: inside a wider ban is a no-op; a wider ban replaces
		// the narrower ones it covers.
		must(s.Ban(ctx, []Element{{Prefix: p("198.51.100.77/32"), Timeout: time.Minute}}))
		must(s.Ban(ctx, []Element{{Prefix: p("192.0.2.0/24"), Timeout: 2 * time.Hour}, {Prefix: p("2001:db8:1:2::99/128"), Timeout: time.Hour}}))
		got = listed(t, ctx, s, KindBan)
		if _, ok := got[p("198.51.100.77/32")]; ok {
			t.Error("a ban inside a wider one was added")
		}
		if _, ok := got[p("192.0.2.7/32")]; ok || got[p("192.0.2.0/24")].Timeout != 2*time.Hour {
			t.Errorf("the wider ban did not replace the narrower: %v", got)
		}

		// Unban, absent ones included; IPv6 widened the same way.
		must(s.Unban(ctx, []netip.Prefix{p("192.0.2.0/24"), p("2001:db8:1:2::1/128"), p("233.252.0.1/32")}))
		got = listed(t, ctx, s, KindBan)
		if len(got) != 2 {
			t.Errorf("after unban: %v", got)
		}

		// Sync to a wanted state.
		want := []Element{{Prefix: p("203.0.113.9/32")}, {Prefix: p("233.252.0.0/24"), Timeout: time.Hour}}
		must(s.Sync(ctx, KindBan, want))
		got = listed(t, ctx, s, KindBan)
		if len(got) != 2 || got[p("233.252.0.0/24")].Prefix != p("233.252.0.0/24") {
			t.Errorf("after sync: %v", got)
		}

		// Geo sets: rendered with the table, edited the same way.
		geo := listed(t, ctx, s, KindGeo)
		if _, ok := geo[p("198.18.0.0/15")]; !ok || len(geo) != 3 {
			t.Errorf("geo sets as rendered: %v", geo)
		}
		must(s.Add(ctx, KindGeo, []Element{{Prefix: p("192.0.2.128/25")}}))
		must(s.Delete(ctx, KindGeo, []netip.Prefix{p("198.18.0.0/15")}))
		geo = listed(t, ctx, s, KindGeo)
		if _, ok := geo[p("198.18.0.0/15")]; ok || len(geo) != 2 {
			t.Errorf("geo after edits: %v", geo)
		}
	})
}

func TestSetsExpire(t *testing.T) {
	scratchSets(t, func(ctx context.Context, s *Sets) {
		p := netip.MustParsePrefix("192.0.2.0/28")
		// Long enough to be listed on the next call on a loaded machine.
		if err := s.Ban(ctx, []Element{{Prefix: p, Timeout: 2 * time.Second}}); err != nil {
			t.Fatal(err)
		}
		if _, ok := listed(t, ctx, s, KindBan)[p]; !ok {
			t.Fatal("not added")
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if _, ok := listed(t, ctx, s, KindBan)[p]; !ok {
				// Gone; and it can be banned again at once.
				if err := s.Ban(ctx, []Element{{Prefix: p, Timeout: time.Hour}}); err != nil {
					t.Fatalf("ban again after expiry: %v", err)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the kernel did not expire the ban")
	})
}

func TestSetsBatch(t *testing.T) {
	scratchSets(t, func(ctx context.Context, s *Sets) {
		elems := make([]Element, 0, 20000)
		for i := range 20000 {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			elems = append(elems, Element{Prefix: netip.PrefixFrom(a, 32), Timeout: time.Hour})
		}
		for i := range 2000 {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i), 15: 1})
			elems = append(elems, Element{Prefix: netip.PrefixFrom(a, 128), Timeout: time.Hour})
		}
		start := time.Now()
		if err := s.Ban(ctx, elems); err != nil {
			t.Fatal(err)
		}
		t.Logf("22000 bans in %v", time.Since(start))
		got, err := s.Bans(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 22000 {
			t.Fatalf("listed %d bans, want 22000", len(got))
		}
		// Again: all present, all renewed, no error.
		if err := s.Ban(ctx, elems[:5000]); err != nil {
			t.Fatal(err)
		}
		if !slices.IsSortedFunc(got[:20000], func(a, b Element) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) }) {
			t.Error("list is not sorted")
		}
	})
}

// TestTopOfRangeAndOverlap: a ban reaching the top of the address space
// has no end element, and the kernel cannot see what it overlaps; moat
// must. The case: 200.1.2.0/24, then 192.0.0.0/2 left
// 200.1.3.0-255.255.255.255 unbanned. Also a wider ban from the same
// address must not shrink to the narrower one added after it.
func TestTopOfRangeAndOverlap(t *testing.T) {
	scratchSets(t, func(ctx context.Context, s *Sets) {
		p := netip.MustParsePrefix
		a := netip.MustParseAddr
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		expect := func(what string, addrs map[string]bool) {
			t.Helper()
			var probe []netip.Addr
			var want []bool
			for k, v := range addrs {
				probe = append(probe, a(k))
				want = append(want, v)
			}
			got, err := s.Matches(ctx, KindBan, probe)
			must(err)
			for i := range probe {
				if got[i] != want[i] {
					els, _ := s.Bans(ctx)
					t.Errorf("%s: %s matched %v, want %v (set %v)", what, probe[i], got[i], want[i], prefixesOf(els))
				}
			}
		}
		must(s.Ban(ctx, []Element{{Prefix: p("200.1.2.0/24"), Timeout: time.Hour}}))
		must(s.Ban(ctx, []Element{{Prefix: p("192.0.0.0/2"), Timeout: time.Hour}}))
		expect("/24 then /2", map[string]bool{"191.255.255.255": false, "192.0.0.0": true, "200.1.2.7": true, "200.1.3.0": true, "255.255.255.255": true})

		must(s.Ban(ctx, []Element{{Prefix: p("10.0.0.0/8"), Timeout: time.Hour}}))
		must(s.Ban(ctx, []Element{{Prefix: p("10.0.0.0/16"), Timeout: time.Minute}}))
		expect("/8 then /16 from the same address", map[string]bool{"10.0.0.1": true, "10.1.0.0": true, "10.255.255.255": true, "11.0.0.0": false})

		must(s.Ban(ctx, []Element{{Prefix: p("2001:db8::/32"), Timeout: time.Hour}, {Prefix: p("ffff::/16")}}))
		must(s.Ban(ctx, []Element{{Prefix: p("ffff:ffff::/32"), Timeout: time.Hour}, {Prefix: p("::/0"), Timeout: time.Hour}}))
		expect("v6 /0 over the top", map[string]bool{"::": true, "2001:db8::1": true, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": true})

		// Unbanning the top-of-range ban lifts it whole.
		must(s.Unban(ctx, []netip.Prefix{p("192.0.0.0/2")}))
		expect("after unban", map[string]bool{"200.1.3.0": false, "255.255.255.255": false, "10.5.5.5": true})
	})
}

// TestDamagedSetIsSeenAndRepaired: a set as the old encoding left it
// (a start without its end before another interval) lists as what the
// kernel matches, not as the ban it was meant to be, and adding the ban
// again repairs it.
func TestDamagedSetIsSeenAndRepaired(t *testing.T) {
	scratchSets(t, func(ctx context.Context, s *Sets) {
		a := netip.MustParseAddr
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.writeSpans(ctx, s.set(SetBan4), nil, []span{{start: a("200.1.2.0"), end: a("200.1.3.0")}}))
		must(s.writeSpans(ctx, s.set(SetBan4), nil, []span{{start: a("192.0.0.0")}}))
		got, err := s.Matches(ctx, KindBan, []netip.Addr{a("200.1.3.0"), a("255.255.255.255")})
		must(err)
		if got[0] || got[1] {
			t.Fatalf("the damage did not reproduce: %v", got)
		}
		els, err := s.Bans(ctx)
		must(err)
		for _, e := range els {
			if e.Prefix == netip.MustParsePrefix("192.0.0.0/2") {
				t.Fatal("the damaged set lists as the intended ban: reconcile would never repair it")
			}
		}
		must(s.Ban(ctx, []Element{{Prefix: netip.MustParsePrefix("192.0.0.0/2"), Timeout: time.Hour}}))
		got, err = s.Matches(ctx, KindBan, []netip.Addr{a("200.1.3.0"), a("255.255.255.255"), a("191.255.255.255")})
		must(err)
		if !got[0] || !got[1] || got[2] {
			t.Fatalf("not repaired: %v", got)
		}
	})
}
