package statuspage

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
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
	// VPN is the VPN layer's peers; nil ("no VPN layer data") until the
	// daemon has that layer's data.
	VPN *VPNView `json:"vpn"`
}

// VPNView is the VPN's interface and its peers, for the page.
type VPNView struct {
	Interface string `json:"interface"`
	Peers     []Peer `json:"peers"`
}

// Peer is one VPN peer as the page shows it.
type Peer struct {
	Name          string    `json:"name"`
	Addresses     []string  `json:"addresses"`
	Endpoint      string    `json:"endpoint,omitempty"`
	LastHandshake time.Time `json:"last_handshake,omitzero"`
	RxBytes       uint64    `json:"rx_bytes"`
	TxBytes       uint64    `json:"tx_bytes"`
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
	topCount = 10
	recentN  = 25
)

// SummarizeBans builds the ban view from the history of the last 7 days
// (any order); geo may be nil.
func SummarizeBans(recs []Record, now time.Time, geo Country) BanView {
	w := NewWindow(geo)
	for _, r := range recs {
		w.Add(r)
	}
	w.Advance(now)
	return w.View(now)
}

// Span is how much history a Window keeps: the 7-day chart from the
// start of its first day (UTC).
const Span = 8 * 24 * time.Hour

// Window is the ban history of the last Span, kept up to date entry by
// entry: adding a ban or letting one age out costs a few map updates, so
// a page over 100,000 bans is built without reading them again.
type Window struct {
	geo       Country
	recs      []Record // by Created, oldest first
	hours     map[int64]int
	sources   *board[netip.Prefix]
	nets      *board[netip.Prefix]
	countries *board[string]
	country   map[netip.Prefix]string
}

// NewWindow returns an empty window; geo may be nil.
func NewWindow(geo Country) *Window {
	w := &Window{geo: geo, hours: map[int64]int{}, sources: newBoard(topCount, comparePrefix, netip.Prefix.String),
		nets: newBoard(topCount, comparePrefix, netip.Prefix.String)}
	if geo != nil {
		w.countries = newBoard(topCount, strings.Compare, func(s string) string { return s })
		w.country = map[netip.Prefix]string{}
	}
	return w
}

// Len is the number of bans in the window.
func (w *Window) Len() int { return len(w.recs) }

// Add counts one ban.
func (w *Window) Add(r Record) {
	r.Created = r.Created.UTC()
	// Recorded in order almost always; a ban dated earlier (imported,
	// from a fleet peer) is put in its place.
	i := len(w.recs)
	for i > 0 && w.recs[i-1].Created.After(r.Created) {
		i--
	}
	w.recs = slices.Insert(w.recs, i, r)
	w.count(r, 1)
}

func (w *Window) count(r Record, d int) {
	h := r.Created.Unix() / 3600
	if w.hours[h] += d; w.hours[h] <= 0 {
		delete(w.hours, h)
	}
	w.sources.add(r.Prefix, d)
	w.nets.add(network(r.Prefix), d)
	if w.geo != nil {
		cc, ok := w.country[r.Prefix]
		if !ok {
			if cc, ok = w.geo.Country(r.Prefix.Addr()); !ok {
				cc = "unknown"
			}
			w.country[r.Prefix] = cc
		}
		w.countries.add(cc, d)
		if w.sources.counts[r.Prefix] == 0 {
			delete(w.country, r.Prefix)
		}
	}
}

// Advance forgets the bans older than Span before now.
func (w *Window) Advance(now time.Time) {
	from := now.Add(-Span)
	n := 0
	for n < len(w.recs) && w.recs[n].Created.Before(from) {
		w.count(w.recs[n], -1)
		n++
	}
	if n > 0 {
		w.recs = slices.Delete(w.recs, 0, n)
	}
}

// View summarises the window as of now.
func (w *Window) View(now time.Time) BanView {
	now = now.UTC()
	hour := now.Truncate(time.Hour)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	v := BanView{Day: make([]Bar, 24), Week: make([]Bar, 7)}
	for i := range v.Day {
		v.Day[i].Start = hour.Add(time.Duration(i-23) * time.Hour)
		v.Day[i].Count = w.hours[v.Day[i].Start.Unix()/3600]
		v.Total24h += v.Day[i].Count
	}
	for i := range v.Week {
		v.Week[i].Start = day.AddDate(0, 0, i-6)
		for h := range 24 {
			v.Week[i].Count += w.hours[v.Week[i].Start.Unix()/3600+int64(h)]
		}
		v.Total7d += v.Week[i].Count
	}
	v.Sources = w.sources.view()
	v.Prefixes = w.nets.view()
	if w.geo != nil {
		v.Countries = w.countries.view()
		for i := range v.Sources {
			if p, err := netip.ParsePrefix(v.Sources[i].Key); err == nil && w.country[p] != "unknown" {
				v.Sources[i].Country = w.country[p]
			}
		}
	}
	v.Recent = w.recent(recentN)
	return v
}

// recent is the newest n bans, newest first.
func (w *Window) recent(n int) []Record {
	out := slices.Clone(w.recs[max(len(w.recs)-n, 0):])
	slices.SortFunc(out, func(a, b Record) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.String(), b.Prefix.String())
	})
	return out
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

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// board counts keys and keeps its n leaders (by count, ties in key
// order) up to date as counts rise: a new ban costs a look at n entries,
// not a pass over every source. Only when a leader's count falls (a ban
// ages out) is the board recounted, on the next view.
type board[K comparable] struct {
	counts  map[K]int
	n       int
	compare func(a, b K) int
	str     func(K) string
	top     []ranked[K]
	ok      bool
}

type ranked[K any] struct {
	k K
	c int
}

func newBoard[K comparable](n int, compare func(a, b K) int, str func(K) string) *board[K] {
	return &board[K]{counts: map[K]int{}, n: n, compare: compare, str: str, ok: true}
}

func (b *board[K]) order(x, y ranked[K]) int {
	if d := cmp.Compare(y.c, x.c); d != 0 {
		return d
	}
	return b.compare(x.k, y.k)
}

func (b *board[K]) add(k K, d int) {
	c := b.counts[k] + d
	if c <= 0 {
		delete(b.counts, k)
	} else {
		b.counts[k] = c
	}
	if !b.ok {
		return
	}
	i := slices.IndexFunc(b.top, func(e ranked[K]) bool { return e.k == k })
	if d < 0 {
		if i >= 0 {
			b.ok = false // a leader fell: who replaces it needs a recount
		}
		return
	}
	if i >= 0 {
		b.top = slices.Delete(b.top, i, i+1)
	}
	b.insert(ranked[K]{k, c})
}

// insert puts e among the leaders if it belongs there.
func (b *board[K]) insert(e ranked[K]) {
	if len(b.top) == b.n && b.order(e, b.top[b.n-1]) >= 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(b.top, e, b.order)
	b.top = slices.Insert(b.top, i, e)
	if len(b.top) > b.n {
		b.top = b.top[:b.n]
	}
}

// view returns the leaders, recounting them first if one fell.
func (b *board[K]) view() []Count {
	if !b.ok {
		b.top = b.top[:0]
		for k, c := range b.counts {
			b.insert(ranked[K]{k, c})
		}
		b.ok = true
	}
	out := make([]Count, len(b.top))
	for i, e := range b.top {
		out[i] = Count{Key: b.str(e.k), Count: e.c}
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
