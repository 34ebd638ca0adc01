package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// Plan is what applying a Spec would change, compared as the kernel lists
// both tables (nft -t -s: no set elements, no counter values), so layout
// and ordering of the rendered text do not show as changes.
type Plan struct {
	Table     string // the rendered table
	Live      string // the live table as listed; "" when none is loaded
	Candidate string // the rendered table as the kernel lists it
	Diff      string // unified diff from Live to Candidate; "" when equal
	// Geo counts the geo set elements that would be added and removed.
	GeoAdd, GeoDel int
}

// Changes reports whether applying would change anything.
func (p *Plan) Changes() bool { return p.Diff != "" || p.GeoAdd > 0 || p.GeoDel > 0 }

// MakePlan renders s and compares it with the live table of the caller's
// network namespace. It changes nothing.
func MakePlan(ctx context.Context, s *Spec) (*Plan, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("firewall spec: %w", err)
	}
	p := &Plan{Table: Render(s)}
	var candGeo []Element
	err := inScratch(func() error {
		if _, err := runNFT(ctx, []byte(p.Table), "-f", "-"); err != nil {
			return err
		}
		var err error
		if p.Candidate, err = listTerse(ctx); err != nil {
			return err
		}
		if s.Geo.Mode != "" {
			candGeo, err = listGeo(ctx)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("plan: load the rendered table in a scratch namespace: %w", err)
	}
	live, err := readLive(ctx)
	if err != nil {
		return nil, err
	}
	var liveGeo []Element
	if live.exists {
		if p.Live, err = listTerse(ctx); err != nil {
			return nil, err
		}
		for _, o := range live.objects {
			if o.kind == "set" && o.name == SetGeo4 {
				if liveGeo, err = listGeo(ctx); err != nil {
					return nil, err
				}
			}
		}
	}
	p.Diff = UnifiedDiff("live table inet moat", "rendered table inet moat", p.Live, p.Candidate)
	p.GeoAdd, p.GeoDel = elementDelta(liveGeo, candGeo)
	return p, nil
}

// listTerse lists table inet moat without set elements and counter
// values; "" when the table is not loaded. (Terse listings of the whole
// ruleset are fast; see readLive.)
func listTerse(ctx context.Context) (string, error) {
	out, err := runNFT(ctx, nil, "-t", "-s", "list", "ruleset")
	if err != nil {
		return "", err
	}
	return tableBlock(string(out), "table inet moat {"), nil
}

// tableBlock cuts one table's block out of nft's text listing.
func tableBlock(listing, head string) string {
	i := strings.Index(listing, head+"\n")
	if i < 0 || i > 0 && listing[i-1] != '\n' {
		return ""
	}
	rest := listing[i:]
	if j := strings.Index(rest, "\n}\n"); j >= 0 {
		return rest[:j+3]
	}
	return rest
}

func listGeo(ctx context.Context) ([]Element, error) {
	s, err := NewSets(64)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.List(ctx, KindGeo)
}

// elementDelta counts the prefixes of b missing from a (added) and those
// of a missing from b (removed).
func elementDelta(a, b []Element) (added, removed int) {
	in := func(es []Element) map[netip.Prefix]bool {
		m := make(map[netip.Prefix]bool, len(es))
		for _, e := range es {
			m[e.Prefix] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	for p := range mb {
		if !ma[p] {
			added++
		}
	}
	for p := range ma {
		if !mb[p] {
			removed++
		}
	}
	return added, removed
}
