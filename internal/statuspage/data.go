package statuspage

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"time"
)

// Source is where the page's data comes from: the daemon.
type Source interface {
	// Generation is a number that changes whenever the ban store changes
	// (cheap: read on every request). Other data (the audit, the host's
	// conditions) is re-read at most once per refresh interval.
	Generation() uint64
	// Snapshot reads everything the page shows.
	Snapshot(ctx context.Context, now time.Time) (*Data, error)
}

// Data is one snapshot of the page.
type Data struct {
	// Status is the value `moat status --json` prints (the daemon's
	// Status): the page renders its fields and /api/status serves it as
	// is, so the two never disagree.
	Status any
	// Bans summarises the ban history.
	Bans BanView `json:"bans"`
	// Audit is the drift audit's score over time and its urgent findings.
	Audit AuditView `json:"audit"`
	// VPN is the VPN layer's peers; nil until that layer reports any.
	VPN any `json:"vpn"`
}

// Record is one ban from the store's history, as the page needs it.
type Record struct {
	Prefix  netip.Prefix `json:"prefix"`
	Jail    string       `json:"jail"`
	Reason  string       `json:"reason"`
	Origin  string       `json:"origin"`
	Created time.Time    `json:"created"`
	Expires time.Time    `json:"expires,omitzero"`
}

// Bar is one bucket of a chart.
type Bar struct {
	Start time.Time `json:"start"`
	Count int       `json:"count"`
}

// Count is a key and how often it was seen.
type Count struct {
	Key     string `json:"key"`
	Count   int    `json:"count"`
	Country string `json:"country,omitempty"`
}

// BanView is the ban history, summarised.
type BanView struct {
	// Day has 24 hourly bars ending with the current hour; Week 7 daily
	// bars ending today (UTC).
	Day      []Bar   `json:"day"`
	Week     []Bar   `json:"week"`
	Total24h int     `json:"total_24h"`
	Total7d  int     `json:"total_7d"`
	Sources  []Count `json:"top_sources"`
	Prefixes []Count `json:"top_prefixes"`
	// Countries is nil without a geo database.
	Countries []Count  `json:"countries"`
	Recent    []Record `json:"recent"`
}

// Country places an address in a country (internal/geo's *DB).
type Country interface {
	Country(netip.Addr) (string, bool)
}

// Top and recent list lengths.
const (
	topN    = 10
	recentN = 25
)

// SummarizeBans builds the ban view from the history of the last 7 days
// (any order); geo may be nil.
func SummarizeBans(recs []Record, now time.Time, geo Country) BanView {
	now = now.UTC()
	hour := now.Truncate(time.Hour)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	v := BanView{Day: make([]Bar, 24), Week: make([]Bar, 7)}
	for i := range v.Day {
		v.Day[i].Start = hour.Add(time.Duration(i-23) * time.Hour)
	}
	for i := range v.Week {
		v.Week[i].Start = day.AddDate(0, 0, i-6)
	}
	dayFrom, weekFrom := v.Day[0].Start, v.Week[0].Start
	sources := map[netip.Prefix]int{}
	nets := map[netip.Prefix]int{}
	countries := map[string]int{}
	for _, r := range recs {
		c := r.Created.UTC()
		if c.Before(weekFrom) || c.After(now) {
			continue
		}
		v.Total7d++
		v.Week[int(c.Sub(weekFrom)/(24*time.Hour))].Count++
		if !c.Before(dayFrom) {
			v.Total24h++
			v.Day[int(c.Sub(dayFrom)/time.Hour)].Count++
		}
		sources[r.Prefix]++
		nets[network(r.Prefix)]++
	}
	v.Sources = top(sources, topN)
	v.Prefixes = top(nets, topN)
	if geo != nil {
		for p, n := range sources {
			cc, ok := geo.Country(p.Addr())
			if !ok {
				cc = "unknown"
			}
			countries[cc] += n
		}
		v.Countries = topStrings(countries, topN)
		for i := range v.Sources {
			if p, err := netip.ParsePrefix(v.Sources[i].Key); err == nil {
				if cc, ok := geo.Country(p.Addr()); ok {
					v.Sources[i].Country = cc
				}
			}
		}
	}
	v.Recent = recent(recs, recentN)
	return v
}

// network is the /24 (IPv4) or /48 (IPv6) a source belongs to: the
// blocks abusers rent addresses in.
func network(p netip.Prefix) netip.Prefix {
	bits := 24
	if p.Addr().Is6() {
		bits = 48
	}
	if p.Bits() <= bits {
		return p
	}
	n, _ := p.Addr().Prefix(bits)
	return n
}

func top(m map[netip.Prefix]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, c := range m {
		out = append(out, Count{Key: k.String(), Count: c})
	}
	return trim(out, n)
}

func topStrings(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, c := range m {
		out = append(out, Count{Key: k, Count: c})
	}
	return trim(out, n)
}

// trim sorts by count, then key (a stable page for a stable store).
func trim(out []Count, n int) []Count {
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func recent(recs []Record, n int) []Record {
	out := slices.Clone(recs)
	slices.SortFunc(out, func(a, b Record) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.String(), b.Prefix.String())
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// ScorePoint is one audit run's score.
type ScorePoint struct {
	Time  time.Time `json:"time"`
	Score int       `json:"score"`
}

// Finding is an urgent audit finding with its fix.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
	Subject  string `json:"subject,omitempty"`
	Fix      string `json:"fix,omitempty"`
}

// AuditView is the audit's score over time and its urgent findings.
type AuditView struct {
	Points   []ScorePoint `json:"points"`
	Findings []Finding    `json:"findings"`
}

// maxPoints bounds the trend chart: a year of runs is thinned to this
// many points (the lowest score of each slice, the one that matters).
const maxPoints = 120

// Thin reduces points (oldest first) to at most maxPoints, keeping each
// slice's lowest score and its time.
func Thin(points []ScorePoint) []ScorePoint {
	if len(points) <= maxPoints {
		return points
	}
	out := make([]ScorePoint, 0, maxPoints)
	for i := range maxPoints {
		lo, hi := i*len(points)/maxPoints, (i+1)*len(points)/maxPoints
		m := points[lo]
		for _, p := range points[lo:hi] {
			if p.Score < m.Score {
				m = p
			}
		}
		out = append(out, m)
	}
	return out
}
