package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go4.org/netipx"
	"golang.org/x/sys/unix"

	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/lab"
)

func TestBlockSpans(t *testing.T) {
	p := netip.MustParsePrefix
	v4, v6, err := blockSpans([]netip.Prefix{
		p("10.0.0.0/24"), p("10.0.1.0/24"), // adjacent: one interval
		p("10.0.0.128/25"), // inside: gone
		p("192.0.2.7/32"),
		p("255.255.255.0/24"), // the top: no end element
		p("2001:db8::/32"), p("2001:db8:1::/48"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := func(ss []span) string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%s-%s", s.start, s.end))
		}
		return strings.Join(out, " ")
	}
	if g, w := got(v4), "10.0.0.0-10.0.2.0 192.0.2.7-192.0.2.8 255.255.255.0-invalid IP"; g != w {
		t.Errorf("v4: %s, want %s", g, w)
	}
	if g, w := got(v6), "2001:db8::-2001:db9::"; g != w {
		t.Errorf("v6: %s, want %s", g, w)
	}
}

func TestRenderBlocklists(t *testing.T) {
	s := goldenSpecs()["stage3"]
	if strings.Contains(Render(s), SetBlock4) {
		t.Fatal("blocklist sets rendered without guard.blocklists")
	}
	s.Blocklists = true
	out := Render(s)
	for _, want := range []string{"set block4 {", "set block6 {", `counter drop_blocklist`,
		`ip saddr @block4 counter name "drop_blocklist" drop comment "blocklist"`,
		`ip6 saddr @block6 counter name "drop_blocklist" drop comment "blocklist"`} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered table lacks %q", want)
		}
	}
	// In the guard chain, after its exemptions: the VPN and the admin's
	// sources are never dropped by a list.
	guard := out[strings.Index(out, "chain guard {"):]
	if strings.Index(guard, "@block4") < strings.Index(guard, "return") {
		t.Error("blocklist drop before the guard chain's exemptions")
	}
}

// TestBlocklistDropsListedSources: in a lab namespace, the blocklist
// sets drop a listed source (IPv4 and IPv6) and not an unlisted one; a
// replacement takes effect whole; an admin source stays reachable even
// when a list names it; a refused transaction leaves the old contents;
// and re-applying the table (incrementally or whole) keeps the lists.
func TestBlocklistDropsListedSources(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "nft")
	l := lab.New(t)
	vps, a1, a2 := l.Host("vps"), l.Host("a1"), l.Host("a2")
	l.Link(vps, "eth1", a1, "eth0", []string{"10.0.1.1/24", "fd00:1::1/64"}, []string{"10.0.1.2/24", "fd00:1::2/64"})
	l.Link(vps, "eth2", a2, "eth0", []string{"10.0.2.1/24"}, []string{"10.0.2.2/24"})
	ln, err := vps.Listen("tcp", "[::]:8080")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	reach := func(h *lab.Host, addr string) bool { return h.CanConnect("tcp", addr, 700*time.Millisecond) }
	ctx := context.Background()
	p := netip.MustParsePrefix

	spec := SpecFrom(Default())
	spec.Source = "test"
	spec.BansOnly = true
	spec.Blocklists = true
	spec.Admin = []netip.Prefix{p("10.0.2.2/32")}
	if err := vps.Do(func() error { _, err := Replace(ctx, Render(&spec), 64); return err }); err != nil {
		t.Fatal(err)
	}
	var sets *Sets
	if err := vps.Do(func() (err error) { sets, err = NewSets(64); return err }); err != nil {
		t.Fatal(err)
	}
	defer sets.Close()
	if !reach(a1, "10.0.1.1:8080") || !reach(a1, "[fd00:1::1]:8080") || !reach(a2, "10.0.2.1:8080") {
		t.Fatal("unreachable before any list")
	}

	// The list names a1's networks (overlapping entries, merged).
	if err := sets.ReplaceBlocklist(ctx, []netip.Prefix{p("10.0.1.0/24"), p("10.0.1.2/32"), p("fd00:1::/64"), p("198.51.100.0/24")}); err != nil {
		t.Fatal(err)
	}
	if reach(a1, "10.0.1.1:8080") || reach(a1, "[fd00:1::1]:8080") {
		t.Error("a listed source still connects")
	}
	if !reach(a2, "10.0.2.1:8080") {
		t.Error("a source no list names was dropped")
	}

	// A new copy replaces the old whole: a1 is out of it, and the admin
	// source it names stays reachable (the guard chain exempts it).
	if err := sets.ReplaceBlocklist(ctx, []netip.Prefix{p("10.0.2.0/24"), p("203.0.113.0/24")}); err != nil {
		t.Fatal(err)
	}
	if !reach(a1, "10.0.1.1:8080") || !reach(a1, "[fd00:1::1]:8080") {
		t.Error("a source the new copy no longer lists is still dropped")
	}
	if !reach(a2, "10.0.2.1:8080") {
		t.Error("an admin source was dropped by a list")
	}
	want := []string{"10.0.2.0/24", "203.0.113.0/24"}
	check := func(when string) {
		t.Helper()
		got, err := sets.Blocklisted(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var gs []string
		for _, e := range got {
			gs = append(gs, e.Prefix.String())
		}
		if !slices.Equal(gs, want) {
			t.Errorf("%s: sets hold %v, want %v", when, gs, want)
		}
	}
	check("after the replacement")

	// The flush and the additions are one transaction: one the kernel
	// refuses (an element twice) leaves the old contents in place.
	dup := prefixSpan(p("192.0.2.0/24"), 0)
	err = sets.transact(ctx, SetBlock4, []elemOp{{set: SetBlock4, del: true, flush: true}, {set: SetBlock4, spans: []span{dup, dup}}})
	if !errors.Is(err, unix.EEXIST) {
		t.Fatalf("a duplicate element: %v, want EEXIST", err)
	}
	check("after a refused replacement")

	// moat apply firewall again: incrementally, then whole.
	if err := vps.Do(func() error { _, err := Replace(ctx, Render(&spec), 64); return err }); err != nil {
		t.Fatal(err)
	}
	check("after an incremental apply")
	vps.MustRun(t, "nft", "add", "quota", "inet", "moat", "q", "{", "25", "mbytes", "}") // forces a whole replacement
	var rep *Replaced
	if err := vps.Do(func() (err error) { rep, err = Replace(ctx, Render(&spec), 64); return err }); err != nil {
		t.Fatal(err)
	}
	if rep.Incremental {
		t.Fatal("the replacement was incremental; the test wanted a whole one")
	}
	check("after a whole replacement")
	if reach(a2, "10.0.2.1:8080") != true {
		t.Error("admin dropped after the replacement")
	}
}

// BenchmarkBlocklistLoad100k is a 100,000-entry list parsed (the
// blocklist package's parser) and loaded into the kernel sets in one
// transaction, in a scratch network namespace.
func BenchmarkBlocklistLoad100k(b *testing.B) {
	lab.RequireRoot(b)
	lab.RequireTool(b, "nft")
	var buf bytes.Buffer
	buf.WriteString("; Spamhaus-style header\n")
	for i := range 100_000 {
		// /28s spread over 1.0.0.0-…: no two merge.
		a := uint32(0x01000000) + uint32(i)<<5
		fmt.Fprintf(&buf, "%d.%d.%d.%d/28 ; SBL%d\n", a>>24, a>>16&255, a>>8&255, a&255, i)
	}
	data := buf.Bytes()
	spec := SpecFrom(Default())
	spec.Source = "bench"
	spec.BansOnly = true
	spec.Blocklists = true
	err := inScratch(func() error {
		ctx := context.Background()
		if _, err := Replace(ctx, Render(&spec), 64); err != nil {
			return err
		}
		s, err := NewSets(64)
		if err != nil {
			return err
		}
		defer s.Close()
		var parse, load time.Duration
		b.ResetTimer()
		for b.Loop() {
			t0 := time.Now()
			ps, err := blocklist.Parse(bytes.NewReader(data), blocklist.MaxEntries)
			if err != nil {
				return err
			}
			if len(ps) != 100_000 {
				return fmt.Errorf("parsed %d", len(ps))
			}
			t1 := time.Now()
			if err := s.ReplaceBlocklist(ctx, ps); err != nil {
				return err
			}
			parse, load = parse+t1.Sub(t0), load+time.Since(t1)
		}
		b.StopTimer()
		b.ReportMetric(float64(parse.Milliseconds())/float64(b.N), "parse-ms/op")
		b.ReportMetric(float64(load.Milliseconds())/float64(b.N), "load-ms/op")
		n, err := s.count(SetBlock4)
		if err != nil || n != 100_000 {
			return fmt.Errorf("set holds %d elements (%v)", n, err)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// TestReplaceBlocklistMatchesKernel: random overlapping and adjacent
// lists, IPv4 and IPv6, top of the address space included, replaced
// several times; after each, the kernel's raw elements match exactly the
// addresses the list names (read as the kernel matches them), and no
// others.
func TestReplaceBlocklistMatchesKernel(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "nft")
	spec := goldenSpecs()["stage3"]
	spec.Blocklists = true
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
		rng := rand.New(rand.NewPCG(15, 3))
		randPrefix := func() netip.Prefix {
			if rng.IntN(4) == 0 {
				var b [16]byte
				b[0], b[1] = 0x20, 0x01
				for i := 2; i < 16; i++ {
					b[i] = byte(rng.IntN(4)) // a crowded space: overlaps
				}
				return netip.PrefixFrom(netip.AddrFrom16(b), 32+rng.IntN(97)).Masked()
			}
			a := netip.AddrFrom4([4]byte{byte(rng.IntN(3) * 127), byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			if rng.IntN(50) == 0 {
				a = netip.AddrFrom4([4]byte{255, 255, 255, byte(rng.IntN(256))})
			}
			return netip.PrefixFrom(a, 8+rng.IntN(25)).Masked()
		}
		for round := range 4 {
			var in []netip.Prefix
			for range 300 + round*200 {
				in = append(in, randPrefix())
			}
			if err := s.ReplaceBlocklist(ctx, in); err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
			var b netipx.IPSetBuilder
			for _, p := range in {
				b.AddPrefix(p)
			}
			want, _ := b.IPSet()
			// Probe every range's edges and their neighbours, and random
			// addresses.
			var probe []netip.Addr
			for _, r := range want.Ranges() {
				for _, a := range []netip.Addr{r.From(), r.To(), r.From().Prev(), r.To().Next()} {
					if a.IsValid() {
						probe = append(probe, a)
					}
				}
			}
			for range 500 {
				probe = append(probe, randPrefix().Addr())
			}
			got, err := s.Matches(ctx, KindBlock, probe)
			if err != nil {
				return err
			}
			bad := 0
			for i, a := range probe {
				if got[i] != want.Contains(a) && bad < 10 {
					bad++
					t.Errorf("round %d: %s: kernel %v, list %v", round, a, got[i], want.Contains(a))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBlocklistBeyondSocketBuffer: 480,000 ranges (19 MB of netlink
// messages, past the 8 MiB socket buffer that sendmsg would refuse) still
// load in one transaction.
func TestBlocklistBeyondSocketBuffer(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "nft")
	spec := goldenSpecs()["stage3"]
	spec.Blocklists = true
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
		const n = 480_000
		ps := make([]netip.Prefix, 0, n)
		for i := range n {
			a := uint32(0x01000000) + uint32(i)<<4
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 30))
		}
		// The kernel acknowledged every message of the transaction;
		// listing 480,000 elements back would take a minute.
		return s.ReplaceBlocklist(ctx, ps)
	})
	if err != nil {
		t.Fatal(err)
	}
}
