package blocklist

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go4.org/netipx"

	"github.com/moat-sh/moat/internal/change"
)

// Sink holds what the lists block: the firewall's blocklist sets.
type Sink interface {
	// ReplaceBlocklist makes the sets hold exactly prefixes (IPv4 and
	// IPv6, not overlapping), in one transaction: never empty between
	// the old contents and the new.
	ReplaceBlocklist(ctx context.Context, prefixes []netip.Prefix) error
}

// Exempt is a network never blocked, whatever a list says, and why.
type Exempt struct {
	Prefix netip.Prefix
	Why    string // "vpn", "admin", "guard.ignore", "host", …
}

// Options are a Manager's inputs besides its sources.
type Options struct {
	// StateDir keeps the last good copy of each list, under blocklists/.
	StateDir string
	Sink     Sink
	// Exempt is asked at every load: the host's addresses may change.
	Exempt func() []Exempt
	// Feed picks a list's feed (nil: HTTPFeed for url, FileFeed for
	// file).
	Feed func(Source) Feed
	// Published, when set, is handed every list fetched from its origin
	// and parsed: a fleet distributes those bytes, and the other hosts
	// hand them to Offer.
	Published func(name string, data []byte, v Validators)
	// Shared, when set, is asked before a URL list is fetched for a copy
	// another host fetched (a fleet's bucket); a copy younger than the
	// list's refresh interval is loaded instead of contacting the origin.
	// It answers false when it has none, or cannot tell (a fleet down):
	// the host then fetches itself.
	Shared func(ctx context.Context, name string) (SharedCopy, bool)
	Now    func() time.Time
	Log    *slog.Logger
}

// Manager keeps the lists loaded and refreshed.
type Manager struct {
	o     Options
	lists []*list // in config order

	applyMu sync.Mutex // one load into the sink at a time

	mu       sync.Mutex
	applied  time.Time
	applyErr string
	ranges   int
	kernel   int // prefixes handed to the sink
	carved   []Carve
	nCarved  int
	pending  bool // a load failed and is retried
}

type list struct {
	src  Source
	feed Feed

	// guarded by Manager.mu
	prefixes           []netip.Prefix
	v4, v6             int
	val                Validators
	loaded, fromCache  bool
	lastFetch, changed time.Time
	lastErr            string
	lastErrAt          time.Time
	// The last refusal stays after a later success (lastErr does not):
	// the operator sees what was refused, and why, until the next one.
	lastRefusal       string
	lastRefusalReason string
	lastRefusalAt     time.Time
	refused           map[string]uint64 // by Refusal* reason
	fetches, notMod   uint64
	changes           uint64
	failures          uint64
	next              time.Time
	// from is where the copy in force came from: the origin (URL or
	// file) or "fleet:<host>"; sum its bytes' hash, to skip the same
	// copy offered again.
	from string
	sum  [sha256.Size]byte
}

// SharedCopy is a list's bytes as another host fetched them.
type SharedCopy struct {
	From string // "fleet:<host>"
	Data []byte
	Time time.Time // when the other host fetched (published) it
}

// sharedSlack delays a host's own refresh past the moment a shared copy
// goes stale, so that the host that fetched it, due first, fetches again
// and the others take its copy: about one fetch per refresh per fleet.
func sharedSlack(refresh time.Duration) time.Duration { return min(refresh/10, 5*time.Minute) }

// Carve is a list's entry overlapping a network never blocked: that part
// of it is left out of the sets.
type Carve struct {
	List   string       `json:"list"`
	Entry  netip.Prefix `json:"entry"`
	Exempt netip.Prefix `json:"exempt"`
	Why    string       `json:"why"`
}

// maxCarves bounds the carve-outs kept for status.
const maxCarves = 100

// New returns a Manager for srcs (validated; defaults filled here).
func New(srcs []Source, o Options) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Exempt == nil {
		o.Exempt = func() []Exempt { return nil }
	}
	m := &Manager{o: o}
	for _, s := range srcs {
		s = s.WithDefaults()
		var f Feed
		switch {
		case o.Feed != nil:
			f = o.Feed(s)
		case s.URL != "":
			f = &HTTPFeed{URL: s.URL, MaxBytes: s.MaxBytes, Timeout: time.Duration(s.Timeout)}
		default:
			f = &FileFeed{Path: s.File, MaxBytes: s.MaxBytes}
		}
		m.lists = append(m.lists, &list{src: s, feed: f})
	}
	return m
}

func (m *Manager) list(name string) *list {
	for _, l := range m.lists {
		if l.src.Name == name {
			return l
		}
	}
	return nil
}

// Run loads the cached copies, then refreshes each list on its schedule
// until ctx ends. A failed load into the sink is retried every minute.
func (m *Manager) Run(ctx context.Context) error {
	m.LoadCache(ctx)
	now := m.o.Now()
	m.mu.Lock()
	for _, l := range m.lists {
		l.next = now // fetch at start: the cache may be old
	}
	m.mu.Unlock()
	for {
		now := m.o.Now()
		wait := time.Hour
		var due []*list
		m.mu.Lock()
		for _, l := range m.lists {
			if !l.next.After(now) {
				due = append(due, l)
			} else {
				wait = min(wait, l.next.Sub(now))
			}
		}
		pending := m.pending
		m.mu.Unlock()
		for _, l := range due {
			if ctx.Err() != nil {
				return nil
			}
			_ = m.Refresh(ctx, l.src.Name)
		}
		if pending && len(due) == 0 {
			_ = m.Load(ctx)
		}
		if len(due) > 0 {
			continue
		}
		if pending {
			wait = min(wait, time.Minute)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Refresh fetches list name now; on a good new copy it is cached and
// loaded. On any failure the copy loaded before stays in force.
func (m *Manager) Refresh(ctx context.Context, name string) error {
	l := m.list(name)
	if l == nil {
		return fmt.Errorf("no blocklist %q", name)
	}
	m.mu.Lock()
	prev := l.val
	if !l.loaded {
		prev = Validators{} // nothing loaded: a 304 would leave nothing
	}
	m.mu.Unlock()
	if m.o.Shared != nil && l.src.URL != "" {
		if c, ok := m.o.Shared(ctx, name); ok && m.fresh(l, c) {
			_, err := m.OfferShared(ctx, name, c)
			if err == nil {
				return nil
			}
			// A shared copy that does not parse: fetch it ourselves.
		}
	}
	got, err := l.feed.Fetch(ctx, prev)
	now := m.o.Now()
	m.mu.Lock()
	l.fetches++
	l.lastFetch = now
	l.next = now.Add(time.Duration(l.src.Refresh))
	m.mu.Unlock()
	if err != nil {
		return m.failed(l, now, fmt.Errorf("fetch %s: %w", l.src.Where(), err))
	}
	if got.NotModified {
		m.mu.Lock()
		l.notMod++
		l.lastErr = ""
		l.fromCache = false // the origin confirmed the copy in force
		own := l.from == l.src.Where()
		m.mu.Unlock()
		if m.o.Published != nil && own {
			// Published again, so the fleet's copy is fresh once more
			// and the other hosts go on skipping their fetch.
			if data, err := m.cachedBody(name); err == nil {
				m.o.Published(name, data, got.Validators)
			}
		}
		return nil
	}
	if err := m.take(ctx, l, got.Data, got.Validators, false, l.src.Where()); err != nil {
		return m.failed(l, now, err)
	}
	if m.o.Published != nil && l.src.URL != "" { // a file list stays local
		m.o.Published(name, got.Data, got.Validators)
	}
	return nil
}

// Offer loads bytes for list name that came from elsewhere than its own
// feed (a fleet's shared store): parsed, cached and loaded exactly as a
// fetch's, refused whole when a line is malformed.
func (m *Manager) Offer(ctx context.Context, name string, data []byte, v Validators) error {
	l := m.list(name)
	if l == nil {
		return fmt.Errorf("no blocklist %q in guard.blocklists", name)
	}
	if int64(len(data)) > l.src.MaxBytes {
		return m.failed(l, m.o.Now(), fmt.Errorf("%w: %d bytes offered, bound %d", ErrTooLarge, len(data), l.src.MaxBytes))
	}
	if err := m.take(ctx, l, data, v, false, "offered"); err != nil {
		return m.failed(l, m.o.Now(), err)
	}
	return nil
}

// fresh: c is younger than l's refresh interval.
func (m *Manager) fresh(l *list, c SharedCopy) bool {
	return m.o.Now().Sub(c.Time) < time.Duration(l.src.Refresh)
}

// OfferShared loads another host's copy of URL list name, parsed, cached
// and loaded like a fetch's and refused whole when a line is malformed,
// unless the copy in force is the same or newer (it returns false then).
// A file list stays local: it is refused. The list's own fetch is put
// off until the copy goes stale.
func (m *Manager) OfferShared(ctx context.Context, name string, c SharedCopy) (bool, error) {
	l := m.list(name)
	if l == nil {
		return false, fmt.Errorf("no blocklist %q in guard.blocklists", name)
	}
	if l.src.URL == "" {
		return false, fmt.Errorf("blocklist %s is a local file: not taken from %s", name, c.From)
	}
	if !m.fresh(l, c) {
		return false, nil // stale: the host fetches itself when due
	}
	sum := sha256.Sum256(c.Data)
	m.mu.Lock()
	same := l.loaded && (sum == l.sum || !c.Time.After(l.changed))
	if same {
		l.next = later(l.next, c.Time.Add(time.Duration(l.src.Refresh)+sharedSlack(time.Duration(l.src.Refresh))))
	}
	m.mu.Unlock()
	if same {
		return false, nil
	}
	if int64(len(c.Data)) > l.src.MaxBytes {
		return false, m.failed(l, m.o.Now(), fmt.Errorf("%w: %d bytes offered by %s, bound %d", ErrTooLarge, len(c.Data), c.From, l.src.MaxBytes))
	}
	if err := m.take(ctx, l, c.Data, Validators{}, false, c.From); err != nil {
		return false, m.failed(l, m.o.Now(), fmt.Errorf("copy from %s: %w", c.From, err))
	}
	m.mu.Lock()
	l.changed = c.Time
	l.next = c.Time.Add(time.Duration(l.src.Refresh) + sharedSlack(time.Duration(l.src.Refresh)))
	m.mu.Unlock()
	return true, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Reasons a list update is refused (the metric's reason label).
const (
	RefusalFetch    = "fetch"     // the origin could not be fetched
	RefusalParse    = "parse"     // a line is not a network
	RefusalTooLarge = "too_large" // more bytes or networks than the bound
	RefusalEmpty    = "empty"     // a URL list with no network at all
)

// RefusalReasons lists every Refusal*.
var RefusalReasons = []string{RefusalFetch, RefusalParse, RefusalTooLarge, RefusalEmpty}

var errEmpty = errors.New("the list holds no networks")

// refusalReason classifies a failed update.
func refusalReason(err error) string {
	var pe *ParseError
	switch {
	case errors.Is(err, ErrTooLarge):
		return RefusalTooLarge
	case errors.Is(err, errEmpty):
		return RefusalEmpty
	case errors.As(err, &pe):
		if strings.HasPrefix(pe.Msg, "more than ") || strings.HasPrefix(pe.Msg, "line longer") {
			return RefusalTooLarge
		}
		return RefusalParse
	}
	return RefusalFetch
}

// failed records err on l (whose loaded copy stays) and returns it. A
// failure retries sooner than the schedule, but not before 15 minutes.
func (m *Manager) failed(l *list, now time.Time, err error) error {
	reason := refusalReason(err)
	m.mu.Lock()
	l.failures++
	l.lastErr = err.Error()
	l.lastErrAt = now
	l.lastRefusal, l.lastRefusalReason, l.lastRefusalAt = err.Error(), reason, now
	if l.refused == nil {
		l.refused = map[string]uint64{}
	}
	l.refused[reason]++
	l.next = now.Add(min(time.Duration(l.src.Refresh), 15*time.Minute))
	m.mu.Unlock()
	m.o.Log.Warn("blocklist not refreshed; the copy loaded before stays", "list", l.src.Name, "err", err)
	return err
}

// take parses data as l's new copy and, when it parses, caches and loads
// it. fromCache marks data read back from the cache (not written again).
func (m *Manager) take(ctx context.Context, l *list, data []byte, v Validators, fromCache bool, from string) error {
	ps, err := Parse(bytes.NewReader(data), MaxEntries)
	if err != nil {
		return fmt.Errorf("list %s refused, nothing of it applied: %w", l.src.Name, err)
	}
	if len(ps) == 0 && l.src.URL != "" {
		// A publisher's glitch (an empty 200, a truncated file) must not
		// lift every block; a file the operator empties is taken.
		return fmt.Errorf("list %s refused: %w in the copy from %s (to drop a list, remove it from guard.blocklists)", l.src.Name, errEmpty, l.src.Where())
	}
	if !fromCache && m.o.StateDir != "" {
		if err := m.writeCache(l, data, v, from); err != nil {
			// Enforcing the new copy matters more than caching it.
			m.o.Log.Warn("blocklist not cached; a restart without network falls back to the older copy", "list", l.src.Name, "err", err)
		}
	}
	v4 := 0
	for _, p := range ps {
		if p.Addr().Is4() {
			v4++
		}
	}
	m.mu.Lock()
	l.prefixes, l.v4, l.v6 = ps, v4, len(ps)-v4
	l.val, l.loaded, l.fromCache = v, true, fromCache
	l.from, l.sum = from, sha256.Sum256(data)
	if !fromCache {
		l.changes++
		l.changed = m.o.Now()
		l.lastErr = ""
	}
	m.mu.Unlock()
	return m.Load(ctx)
}

// Load hands the union of every loaded list, without the exempt
// networks, to the sink in one replacement.
func (m *Manager) Load(ctx context.Context) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	var b netipx.IPSetBuilder
	m.mu.Lock()
	snap := make([]*list, 0, len(m.lists))
	for _, l := range m.lists {
		if l.loaded {
			for _, p := range l.prefixes {
				b.AddPrefix(p)
			}
			snap = append(snap, &list{src: l.src, prefixes: l.prefixes})
		}
	}
	m.mu.Unlock()
	var carved []Carve
	n := 0
	for _, e := range m.o.Exempt() {
		if !e.Prefix.IsValid() {
			continue
		}
		e.Prefix = e.Prefix.Masked()
		for _, l := range snap {
			for _, p := range l.prefixes {
				if p.Overlaps(e.Prefix) {
					n++
					if len(carved) < maxCarves {
						carved = append(carved, Carve{List: l.src.Name, Entry: p, Exempt: e.Prefix, Why: e.Why})
					}
				}
			}
		}
		b.RemovePrefix(e.Prefix)
	}
	set, err := b.IPSet()
	if err != nil {
		return fmt.Errorf("merge blocklists: %w", err)
	}
	ps := set.Prefixes()
	var serr error
	if m.o.Sink != nil {
		serr = m.o.Sink.ReplaceBlocklist(ctx, ps)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.carved, m.nCarved = carved, n
	if serr != nil {
		m.applyErr = serr.Error()
		m.pending = true
		return fmt.Errorf("load blocklists into the firewall: %w", serr)
	}
	m.applyErr, m.pending = "", false
	m.applied = m.o.Now()
	m.ranges = len(set.Ranges())
	m.kernel = len(ps)
	if n > 0 {
		m.o.Log.Warn("blocklist entries overlap networks never blocked; those parts are left out", "entries", n, "first", carved[0].Entry.String()+" ("+carved[0].List+") overlaps "+carved[0].Exempt.String()+" ("+carved[0].Why+")")
	}
	return nil
}

// cacheHeader starts a cached copy: a comment to the parser, so the file
// parses as the list it holds, and the metadata on the same line.
const cacheHeader = "# moat blocklist cache "

type cacheMeta struct {
	Where      string     `json:"where"`
	From       string     `json:"from,omitempty"` // "fleet:<host>": another host fetched it
	Validators Validators `json:"validators"`
	Fetched    time.Time  `json:"fetched"`
}

func (m *Manager) cachePath(name string) string {
	return filepath.Join(m.o.StateDir, "blocklists", name+".list")
}

func (m *Manager) writeCache(l *list, data []byte, v Validators, from string) error {
	meta, err := json.Marshal(cacheMeta{Where: l.src.Where(), From: from, Validators: v, Fetched: m.o.Now().UTC()})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(m.o.StateDir, "blocklists"), 0o700); err != nil {
		return err
	}
	buf := make([]byte, 0, len(cacheHeader)+len(meta)+1+len(data))
	buf = append(append(append(append(buf, cacheHeader...), meta...), '\n'), data...)
	return change.WriteAtomic(m.cachePath(l.src.Name), buf, 0o600)
}

// cachedBody is the list's cached copy without the cache's header.
func (m *Manager) cachedBody(name string) ([]byte, error) {
	if m.o.StateDir == "" {
		return nil, errors.New("no cache")
	}
	data, err := os.ReadFile(m.cachePath(name))
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(data, []byte(cacheHeader)) {
		return nil, errors.New("not a moat blocklist cache")
	}
	_, body, _ := bytes.Cut(data, []byte("\n"))
	return body, nil
}

// LoadCache loads the last good copy of every list that has one from the
// same origin, so a restart without network still enforces them.
func (m *Manager) LoadCache(ctx context.Context) {
	if m.o.StateDir == "" {
		return
	}
	found := false
	for _, l := range m.lists {
		m.mu.Lock()
		loaded := l.loaded // offered by a fleet already: newer than the cache
		m.mu.Unlock()
		if loaded {
			continue
		}
		data, err := os.ReadFile(m.cachePath(l.src.Name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			m.o.Log.Warn("blocklist cache not read", "list", l.src.Name, "err", err)
			continue
		}
		head, _, _ := bytes.Cut(data, []byte("\n"))
		var meta cacheMeta
		js, ok := bytes.CutPrefix(head, []byte(cacheHeader))
		if !ok || json.Unmarshal(js, &meta) != nil || meta.Where != l.src.Where() {
			continue // another origin's copy, or not moat's
		}
		ps, err := Parse(bytes.NewReader(data), MaxEntries)
		if err != nil {
			m.o.Log.Warn("blocklist cache refused", "list", l.src.Name, "err", err)
			continue
		}
		v4 := 0
		for _, p := range ps {
			if p.Addr().Is4() {
				v4++
			}
		}
		m.mu.Lock()
		l.prefixes, l.v4, l.v6 = ps, v4, len(ps)-v4
		l.val, l.loaded, l.fromCache, l.changed = meta.Validators, true, true, meta.Fetched
		l.from, l.sum = cmp.Or(meta.From, l.src.Where()), sha256.Sum256(data[min(len(head)+1, len(data)):])
		m.mu.Unlock()
		found = true
	}
	if found {
		if err := m.Load(ctx); err != nil {
			m.o.Log.Warn("cached blocklists not loaded; retried", "err", err)
		}
	}
}

// ListStatus is one list in `moat status`.
type ListStatus struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// From is where the copy in force came from: Source, or
	// "fleet:<host>" when another host of the fleet fetched it.
	From    string `json:"from,omitempty"`
	Loaded  bool   `json:"loaded"`
	Entries int    `json:"entries"`
	IPv4    int    `json:"ipv4"`
	IPv6    int    `json:"ipv6"`
	// FromCache: the copy loaded is the cached one, not fetched by this
	// run yet.
	FromCache   bool      `json:"from_cache"`
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	LastChange  time.Time `json:"last_change,omitzero"`
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastRefusal is the last update refused (kept after later
	// successes), LastRefusalReason its class (a Refusal* reason).
	LastRefusal       string            `json:"last_refusal,omitempty"`
	LastRefusalReason string            `json:"last_refusal_reason,omitempty"`
	LastRefusalAt     time.Time         `json:"last_refusal_at,omitzero"`
	Refused           map[string]uint64 `json:"refused,omitempty"`
	Fetches           uint64            `json:"fetches"`
	NotModified       uint64            `json:"not_modified"`
	Changes           uint64            `json:"changes"`
	Failures          uint64            `json:"failures"`
}

// Status is the blocklists in `moat status`.
type Status struct {
	Lists []ListStatus `json:"lists"`
	// Ranges are the merged address ranges blocked; Prefixes the set
	// elements loaded for them.
	Ranges   int       `json:"ranges"`
	Prefixes int       `json:"prefixes"`
	Loaded   time.Time `json:"loaded,omitzero"`
	// LoadError: the last load into the firewall failed (retried).
	LoadError string `json:"load_error,omitempty"`
	// Carved are entries overlapping networks never blocked (the first
	// 100 of CarvedTotal).
	Carved      []Carve `json:"carved,omitempty"`
	CarvedTotal int     `json:"carved_total"`
}

// Status reports every list.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Ranges: m.ranges, Prefixes: m.kernel, Loaded: m.applied, LoadError: m.applyErr,
		Carved: slices.Clone(m.carved), CarvedTotal: m.nCarved, Lists: []ListStatus{}}
	for _, l := range m.lists {
		st.Lists = append(st.Lists, ListStatus{Name: l.src.Name, Source: l.src.Where(), From: l.from, Loaded: l.loaded,
			Entries: len(l.prefixes), IPv4: l.v4, IPv6: l.v6, FromCache: l.fromCache,
			LastRefresh: l.lastFetch, LastChange: l.changed, NextRefresh: l.next,
			LastError: l.lastErr, LastErrorAt: l.lastErrAt, Refused: maps.Clone(l.refused),
			LastRefusal: l.lastRefusal, LastRefusalReason: l.lastRefusalReason, LastRefusalAt: l.lastRefusalAt,
			Fetches: l.fetches, NotModified: l.notMod, Changes: l.changes, Failures: l.failures})
	}
	return st
}
