package statuspage_test

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/statuspage"
)

// The window, kept up to date ban by ban and hour by hour, shows what a
// count from scratch over the bans still in it shows.
func TestWindowMatchesRecount(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := start
	w := statuspage.NewWindow(nil)
	var all []statuspage.Record
	for step := range 3000 {
		now = now.Add(time.Duration(rng.IntN(15)) * time.Minute)
		// A few sources ban often, the rest once: leaders rise and age out.
		a := netip.AddrFrom4([4]byte{203, 0, byte(rng.IntN(3)), byte(rng.IntN(40))})
		if rng.IntN(4) == 0 {
			a = netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(4))})
		}
		created := now.Add(-time.Duration(rng.IntN(3)) * time.Minute) // now and then out of order
		r := statuspage.Record{Prefix: netip.PrefixFrom(a, 32), Created: created}
		w.Add(r)
		all = append(all, r)
		if step%50 != 0 {
			continue
		}
		w.Advance(now)
		got := w.View(now)
		var live []statuspage.Record
		for _, r := range all {
			if !r.Created.Before(now.Add(-statuspage.Span)) {
				live = append(live, r)
			}
		}
		counts := map[netip.Prefix]int{}
		for _, r := range live {
			counts[r.Prefix]++
		}
		type kc struct {
			p netip.Prefix
			c int
		}
		var want []kc
		for p, c := range counts {
			want = append(want, kc{p, c})
		}
		slices.SortFunc(want, func(a, b kc) int {
			if d := cmp.Compare(b.c, a.c); d != 0 {
				return d
			}
			return a.p.Addr().Compare(b.p.Addr())
		})
		want = want[:min(len(want), 10)]
		if len(got.Sources) != len(want) {
			t.Fatalf("step %d: %d top sources, want %d", step, len(got.Sources), len(want))
		}
		for i := range want {
			if got.Sources[i].Key != want[i].p.String() || got.Sources[i].Count != want[i].c {
				t.Fatalf("step %d: top %d = %+v, want %v %d", step, i, got.Sources[i], want[i].p, want[i].c)
			}
		}
		if w.Len() != len(live) {
			t.Fatalf("step %d: window holds %d, want %d", step, w.Len(), len(live))
		}
		fresh := statuspage.SummarizeBans(live, now, nil)
		if got.Total24h != fresh.Total24h || got.Total7d != fresh.Total7d || !slices.Equal(got.Prefixes, fresh.Prefixes) {
			t.Fatalf("step %d: %d/%d %v, recount %d/%d %v", step, got.Total24h, got.Total7d, got.Prefixes, fresh.Total24h, fresh.Total7d, fresh.Prefixes)
		}
	}
}

type fakeGeo map[netip.Addr]string

func (g fakeGeo) Country(a netip.Addr) (string, bool) {
	cc, ok := g[a]
	return cc, ok
}

// With a geo database, countries are counted per ban and each top source
// carries its country; an address the database does not place counts as
// unknown.
func TestCountries(t *testing.T) {
	geo := fakeGeo{netip.MustParseAddr("192.0.2.1"): "NL", netip.MustParseAddr("192.0.2.2"): "NL", netip.MustParseAddr("198.51.100.7"): "US"}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var recs []statuspage.Record
	for i, a := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.2", "198.51.100.7", "203.0.113.9"} {
		recs = append(recs, statuspage.Record{Prefix: netip.PrefixFrom(netip.MustParseAddr(a), 32), Created: now.Add(-time.Duration(i) * time.Hour)})
	}
	v := statuspage.SummarizeBans(recs, now, geo)
	want := []statuspage.Count{{Key: "NL", Count: 3}, {Key: "US", Count: 1}, {Key: "unknown", Count: 1}}
	if !slices.Equal(v.Countries, want) {
		t.Errorf("countries %v, want %v", v.Countries, want)
	}
	if v.Sources[0].Key != "192.0.2.1/32" || v.Sources[0].Country != "NL" || v.Sources[len(v.Sources)-1].Country != "" {
		t.Errorf("sources %v", v.Sources)
	}
	if statuspage.SummarizeBans(recs, now, nil).Countries != nil {
		t.Error("countries without a geo database")
	}
}
