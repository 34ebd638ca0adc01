package blocklist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moat-sh/moat/internal/schema"
)

const dropList = `; Spamhaus DROP List 2026/12/06 - (c) 2026 The Spamhaus Project SLU
; https://www.spamhaus.org/drop/drop.txt
; Last-Modified: Sun, 06 Dec 2026 10:00:00 GMT
; Expires: Mon, 07 Dec 2026 10:00:00 GMT
1.10.16.0/20 ; SBL256894
1.19.0.0/16 ; SBL434604
2.56.192.0/22 ; SBL459831
`

const fireholList = `#
# firehol_level1
#
# ipv4 hash:net ipset
#
0.0.0.0/8
10.0.0.0/8
192.0.2.77
2001:db8:bad::/48
`

func TestParseFormats(t *testing.T) {
	got, err := Parse(strings.NewReader(dropList), MaxEntries)
	if err != nil || len(got) != 3 || got[2] != netip.MustParsePrefix("2.56.192.0/22") {
		t.Fatalf("DROP: %v %v", got, err)
	}
	got, err = Parse(strings.NewReader("\xef\xbb\xbf"+fireholList+"\r\n  \t\n::ffff:198.51.100.0/120\n"), MaxEntries)
	if err != nil {
		t.Fatal(err)
	}
	want := "0.0.0.0/8 10.0.0.0/8 192.0.2.77/32 2001:db8:bad::/48 198.51.100.0/24"
	if g := fmt.Sprint(got); g != "["+want+"]" {
		t.Errorf("FireHOL: %s, want %s", g, want)
	}
}

func TestParseRefusesWithLineNumber(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1.2.3.0/24\n1.2.3.0/33\n", "line 2: not a network"},
		{"1.2.3.0/24 SBL123\n", "line 1: expected one network per line"},
		{"# ok\n\nexample.com\n", "line 3: not an address"},
		{"0.0.0.0/0\n", "line 1: a /0 would block every address"},
		{"fe80::1%eth0\n", "line 1: an address with a zone"},
		{"1.2.3.4\n" + strings.Repeat("x", maxLine+1) + "\n", "line 2: line longer than"},
		{"<html><body>Rate limited</body></html>\n", "line 1: expected one network per line"},
	} {
		_, err := Parse(strings.NewReader(c.in), MaxEntries)
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in[:min(len(c.in), 30)], err, c.want)
		}
	}
	if _, err := Parse(strings.NewReader("1.0.0.0/24\n2.0.0.0/24\n3.0.0.0/24\n"), 2); err == nil || !strings.Contains(err.Error(), "line 3: more than 2 networks") {
		t.Errorf("over the entry bound: %v", err)
	}
}

var quiet = slog.New(slog.DiscardHandler)

// sink records what the manager loads.
type sink struct {
	mu    sync.Mutex
	loads [][]netip.Prefix
	err   error
}

func (s *sink) ReplaceBlocklist(_ context.Context, ps []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.loads = append(s.loads, ps)
	return nil
}

func (s *sink) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.loads) == 0 {
		return "none"
	}
	return fmt.Sprint(s.loads[len(s.loads)-1])
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.loads)
}

// publisher is a list's web server: it serves body with an ETag and a
// Last-Modified, answers conditional requests with 304, and records
// what it was asked.
type publisher struct {
	mu       sync.Mutex
	body     string
	etag     string
	modified time.Time
	requests []http.Header
	status   int
}

func (p *publisher) set(body, etag string, mod time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.body, p.etag, p.modified = body, etag, mod
}

func (p *publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r.Header.Clone())
	if p.status != 0 {
		w.WriteHeader(p.status)
		return
	}
	w.Header().Set("ETag", p.etag)
	w.Header().Set("Last-Modified", p.modified.UTC().Format(http.TimeFormat))
	if r.Header.Get("If-None-Match") == p.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write([]byte(p.body))
}

func (p *publisher) lastRequest() http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[len(p.requests)-1]
}

func newTestManager(t *testing.T, srv *httptest.Server, dir string, src Source, sk Sink, exempt []Exempt) *Manager {
	t.Helper()
	src = src.WithDefaults()
	return New([]Source{src}, Options{StateDir: dir, Sink: sk, Log: quiet,
		Exempt: func() []Exempt { return exempt },
		Feed: func(s Source) Feed {
			if s.URL == "" {
				return &FileFeed{Path: s.File, MaxBytes: s.MaxBytes}
			}
			return &HTTPFeed{URL: s.URL, Client: srv.Client(), MaxBytes: s.MaxBytes, Timeout: 5 * time.Second}
		}})
}

// TestRefreshConditionalGET: a first fetch loads the list; the next
// sends If-None-Match and If-Modified-Since and a 304 keeps the set
// loaded (no reload); a changed list replaces it; a malformed copy is
// refused with its line number and nothing of it is applied; an
// oversized one is refused; an HTTP error keeps the list too.
func TestRefreshConditionalGET(t *testing.T) {
	pub := &publisher{}
	mod := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	pub.set(dropList, `"v1"`, mod)
	srv := httptest.NewTLSServer(pub)
	defer srv.Close()
	sk := &sink{}
	src := Source{Name: "drop", URL: srv.URL + "/drop.txt", MaxBytes: 4096}
	m := newTestManager(t, srv, t.TempDir(), src, sk, nil)
	ctx := context.Background()

	if err := m.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if h := pub.lastRequest(); h.Get("If-None-Match") != "" {
		t.Errorf("first fetch was conditional: %v", h)
	}
	first := "[1.10.16.0/20 1.19.0.0/16 2.56.192.0/22]"
	if sk.last() != first {
		t.Fatalf("loaded %s", sk.last())
	}

	// Unchanged: a 304, nothing reloaded.
	if err := m.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	h := pub.lastRequest()
	if h.Get("If-None-Match") != `"v1"` || h.Get("If-Modified-Since") != mod.Format(http.TimeFormat) {
		t.Errorf("second fetch not conditional: %v", h)
	}
	if sk.count() != 1 {
		t.Errorf("a 304 reloaded the sets (%d loads)", sk.count())
	}
	st := m.Status().Lists[0]
	if st.NotModified != 1 || st.Entries != 3 || st.LastError != "" {
		t.Errorf("status after 304: %+v", st)
	}

	// Changed: replaced.
	pub.set("1.10.16.0/20\n2001:db8::/32 ; SBL9\n", `"v2"`, mod.Add(time.Hour))
	if err := m.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if sk.last() != "[1.10.16.0/20 2001:db8::/32]" {
		t.Fatalf("after change: %s", sk.last())
	}

	// Malformed at line 3: refused whole, the loaded copy stays.
	pub.set("9.9.9.0/24\n8.8.8.0/24\n8.8.4.4/40\n", `"v3"`, mod.Add(2*time.Hour))
	err := m.Refresh(ctx, "drop")
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "nothing of it applied") {
		t.Fatalf("malformed: %v", err)
	}
	if sk.last() != "[1.10.16.0/20 2001:db8::/32]" || sk.count() != 2 {
		t.Errorf("a malformed copy changed the sets: %s", sk.last())
	}
	st = m.Status().Lists[0]
	if !strings.Contains(st.LastError, "line 3") || st.Entries != 2 {
		t.Errorf("status after malformed: %+v", st)
	}
	// The refused copy's validators were not kept: the next fetch asks
	// for a copy newer than the one loaded.
	pub.set("1.10.16.0/20\n2001:db8::/32 ; SBL9\n", `"v2"`, mod.Add(time.Hour))
	if err := m.Refresh(ctx, "drop"); err != nil || pub.lastRequest().Get("If-None-Match") != `"v2"` {
		t.Errorf("after a refused copy the loaded copy's ETag was not sent: %v %v", err, pub.lastRequest())
	}

	// Oversized: refused.
	pub.set(strings.Repeat("10.0.0.0/8\n", 1000), `"v4"`, mod.Add(3*time.Hour))
	if err := m.Refresh(ctx, "drop"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	// A server error.
	pub.mu.Lock()
	pub.status = http.StatusServiceUnavailable
	pub.mu.Unlock()
	if err := m.Refresh(ctx, "drop"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("503: %v", err)
	}
	if sk.last() != "[1.10.16.0/20 2001:db8::/32]" || sk.count() != 2 {
		t.Errorf("a failed fetch changed the sets: %s", sk.last())
	}
	if st := m.Status().Lists[0]; st.Failures != 3 {
		t.Errorf("failures: %+v", st)
	}
}

// TestCacheSurvivesRestartOffline: the last good copy is cached; a
// restart with the publisher gone enforces it from the cache, and a
// cache of another URL is not used.
func TestCacheSurvivesRestartOffline(t *testing.T) {
	pub := &publisher{}
	pub.set(dropList, `"v1"`, time.Now())
	srv := httptest.NewTLSServer(pub)
	dir := t.TempDir()
	src := Source{Name: "drop", URL: srv.URL + "/drop.txt"}
	ctx := context.Background()
	if err := newTestManager(t, srv, dir, src, &sink{}, nil).Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "blocklists", "drop.list"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache: %v %v", fi, err)
	}
	srv.Close() // the network is down

	sk := &sink{}
	m := newTestManager(t, srv, dir, src, sk, nil)
	m.LoadCache(ctx)
	if sk.last() != "[1.10.16.0/20 1.19.0.0/16 2.56.192.0/22]" {
		t.Fatalf("restart offline loaded %s", sk.last())
	}
	if err := m.Refresh(ctx, "drop"); err == nil {
		t.Fatal("a fetch from a closed server succeeded")
	}
	if st := m.Status().Lists[0]; !st.FromCache || st.Entries != 3 || st.LastError == "" {
		t.Errorf("status: %+v", st)
	}
	if sk.count() != 1 {
		t.Error("a failed fetch reloaded")
	}

	// The same name pointed elsewhere: the old origin's copy is not used.
	sk2 := &sink{}
	other := src
	other.URL = "https://lists.example/other.txt"
	newTestManager(t, srv, dir, other, sk2, nil).LoadCache(ctx)
	if sk2.count() != 0 {
		t.Errorf("another URL's cache was loaded: %s", sk2.last())
	}
}

// TestCarveOuts: entries overlapping networks never blocked (the host,
// the VPN, admin sources, guard.ignore) lose those parts, and are
// reported.
func TestCarveOuts(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "list.txt")
	os.WriteFile(f, []byte("10.0.0.0/8\n192.0.2.0/24\n203.0.113.7\n2001:db8::/32\n"), 0o644)
	sk := &sink{}
	exempt := []Exempt{
		{netip.MustParsePrefix("10.8.0.0/24"), "vpn"},
		{netip.MustParsePrefix("203.0.113.7/32"), "admin"},
		{netip.MustParsePrefix("2001:db8::1/128"), "host"},
	}
	m := newTestManager(t, nil, dir, Source{Name: "local", File: f}, sk, exempt)
	if err := m.Refresh(context.Background(), "local"); err != nil {
		t.Fatal(err)
	}
	sk.mu.Lock()
	loaded := sk.loads[0]
	sk.mu.Unlock()
	for _, p := range loaded {
		for _, e := range exempt {
			if p.Overlaps(e.Prefix) {
				t.Errorf("loaded %s overlaps %s (%s)", p, e.Prefix, e.Why)
			}
		}
	}
	for _, a := range []string{"10.0.0.1", "10.9.0.1", "10.7.255.255", "192.0.2.1", "2001:db8::2"} {
		in := false
		for _, p := range loaded {
			in = in || p.Contains(netip.MustParseAddr(a))
		}
		if !in {
			t.Errorf("%s carved out with the exemptions", a)
		}
	}
	st := m.Status()
	if st.CarvedTotal != 3 || len(st.Carved) != 3 || st.Carved[0].Why != "vpn" {
		t.Errorf("carve-outs reported: %+v", st.Carved)
	}
	// A file unchanged since: not read again.
	if err := m.Refresh(context.Background(), "local"); err != nil || sk.count() != 1 {
		t.Errorf("unchanged file reloaded: %v, %d loads", err, sk.count())
	}
}

// TestOfferRawBytes: bytes from another source (a fleet's shared store)
// load exactly as a fetch does, and a malformed offer changes nothing.
func TestOfferRawBytes(t *testing.T) {
	sk := &sink{}
	var published []string
	m := New([]Source{{Name: "shared", URL: "https://lists.example/x"}}, Options{StateDir: t.TempDir(), Sink: sk, Log: quiet,
		Published: func(name string, data []byte, v Validators) { published = append(published, name) }})
	ctx := context.Background()
	if err := m.Offer(ctx, "shared", []byte("192.0.2.0/24\n"), Validators{ETag: `"a"`}); err != nil {
		t.Fatal(err)
	}
	if err := m.Offer(ctx, "shared", []byte("192.0.2.0/24\nnot-a-network\n"), Validators{}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("malformed offer: %v", err)
	}
	if err := m.Offer(ctx, "nope", []byte("192.0.2.0/24\n"), Validators{}); err == nil {
		t.Error("an offer for an unknown list was taken")
	}
	if sk.last() != "[192.0.2.0/24]" || sk.count() != 1 {
		t.Errorf("loads: %s (%d)", sk.last(), sk.count())
	}
	if len(published) != 0 {
		t.Error("an offered copy was published again")
	}
}

// TestSinkFailureKeepsRetrying: a load the firewall refuses (table not
// loaded yet) is reported and marked for retry; the next load succeeds.
func TestSinkFailureKeepsRetrying(t *testing.T) {
	sk := &sink{err: errors.New("table inet moat has no blocklist sets")}
	m := New([]Source{{Name: "x", URL: "https://lists.example/x"}}, Options{Sink: sk, Log: quiet})
	ctx := context.Background()
	if err := m.Offer(ctx, "x", []byte("192.0.2.0/24\n"), Validators{}); err == nil {
		t.Fatal("sink failure not reported")
	}
	if st := m.Status(); !strings.Contains(st.LoadError, "no blocklist sets") {
		t.Errorf("status: %+v", st)
	}
	sk.mu.Lock()
	sk.err = nil
	sk.mu.Unlock()
	if err := m.Load(ctx); err != nil || sk.last() != "[192.0.2.0/24]" {
		t.Errorf("retry: %v %s", err, sk.last())
	}
	if m.Status().LoadError != "" {
		t.Error("load error not cleared")
	}
}

func TestValidate(t *testing.T) {
	ok := []Source{{Name: "spamhaus-drop", URL: "https://www.spamhaus.org/drop/drop.txt"}, {Name: "local", File: "/etc/moat/block.txt", Refresh: schema.Duration(time.Hour)}}
	if err := Validate(ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src  []Source
		want string
	}{
		{[]Source{{Name: "a", URL: "http://x/y"}}, "https://"},
		{[]Source{{Name: "a"}}, "exactly one of url"},
		{[]Source{{Name: "a", URL: "https://x/", File: "/a"}}, "exactly one of url"},
		{[]Source{{Name: "a", File: "rel.txt"}}, "absolute path"},
		{[]Source{{Name: "A B", File: "/a"}}, "expected a name"},
		{[]Source{{Name: "a", File: "/a"}, {Name: "a", File: "/b"}}, "names two lists"},
		{[]Source{{Name: "a", File: "/a", Refresh: schema.Duration(time.Minute)}}, "at least 5m"},
		{[]Source{{Name: "a", File: "/a", MaxBytes: 10}}, "max_bytes"},
	} {
		if err := Validate(c.src); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.src, err, c.want)
		}
	}
}

// TestSharedCopy: a fresh copy another host fetched replaces this host's
// fetch; a stale one, the same one again, a malformed one or one for a
// file list are not taken; status says where the copy came from.
func TestSharedCopy(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	fetches := 0
	var shared SharedCopy
	have := false
	sk := &sink{}
	dir := t.TempDir()
	lf := filepath.Join(dir, "local.txt")
	os.WriteFile(lf, []byte("198.51.100.0/24\n"), 0o600)
	m := New([]Source{{Name: "drop", URL: "https://lists.example/drop", Refresh: schema.Duration(time.Hour)}, {Name: "local", File: lf}},
		Options{StateDir: dir, Sink: sk, Log: quiet, Now: clock,
			Feed: func(s Source) Feed {
				if s.URL == "" {
					return &FileFeed{Path: s.File}
				}
				return feedFunc(func(context.Context, Validators) (Fetched, error) {
					fetches++
					return Fetched{Data: []byte("192.0.2.0/24\n")}, nil
				})
			},
			Shared: func(context.Context, string) (SharedCopy, bool) { return shared, have }})
	ctx := context.Background()
	from := func(name string) string {
		for _, l := range m.Status().Lists {
			if l.Name == name {
				return l.From
			}
		}
		return ""
	}
	// Nothing shared (or the fleet is down): the host fetches itself.
	if err := m.Refresh(ctx, "drop"); err != nil || fetches != 1 || from("drop") != "https://lists.example/drop" {
		t.Fatalf("own fetch: %v, %d fetches, from %q", err, fetches, from("drop"))
	}
	// A fresh copy from another host: taken, no fetch.
	now = now.Add(2 * time.Hour)
	shared, have = SharedCopy{From: "fleet:h1", Data: []byte("203.0.113.0/24\n"), Time: now.Add(-10 * time.Minute)}, true
	if err := m.Refresh(ctx, "drop"); err != nil || fetches != 1 || sk.last() != "[203.0.113.0/24]" || from("drop") != "fleet:h1" {
		t.Fatalf("shared copy: %v, %d fetches, %s, from %q", err, fetches, sk.last(), from("drop"))
	}
	loads := sk.count()
	// The same copy offered again: nothing reloaded.
	if ok, err := m.OfferShared(ctx, "drop", shared); ok || err != nil || sk.count() != loads {
		t.Errorf("same copy again: %v %v, %d loads", ok, err, sk.count())
	}
	// A malformed copy: refused whole, the copy in force stays.
	bad := SharedCopy{From: "fleet:h2", Data: []byte("192.0.2.0/24\nnot-a-network\n"), Time: now}
	if ok, err := m.OfferShared(ctx, "drop", bad); ok || err == nil || !strings.Contains(err.Error(), "line 2") || sk.last() != "[203.0.113.0/24]" {
		t.Errorf("malformed copy: %v %v, %s", ok, err, sk.last())
	}
	// A stale copy: not taken; the host fetches itself when due.
	stale := SharedCopy{From: "fleet:h2", Data: []byte("192.0.2.99/32\n"), Time: now.Add(-2 * time.Hour)}
	if ok, err := m.OfferShared(ctx, "drop", stale); ok || err != nil || sk.last() != "[203.0.113.0/24]" {
		t.Errorf("stale copy: %v %v, %s", ok, err, sk.last())
	}
	now = now.Add(2 * time.Hour)
	if err := m.Refresh(ctx, "drop"); err != nil || fetches != 2 || from("drop") != "https://lists.example/drop" {
		t.Errorf("stale shared copy: %v, %d fetches, from %q", err, fetches, from("drop"))
	}
	// A file list stays local.
	if ok, err := m.OfferShared(ctx, "local", SharedCopy{From: "fleet:h1", Data: []byte("0.0.0.0/0\n"), Time: now}); ok || err == nil {
		t.Errorf("file list taken from the fleet: %v %v", ok, err)
	}
	// The cache remembers where a shared copy came from.
	now = now.Add(time.Minute)
	shared = SharedCopy{From: "fleet:h1", Data: []byte("203.0.113.0/24\n"), Time: now}
	if ok, err := m.OfferShared(ctx, "drop", shared); !ok || err != nil {
		t.Fatalf("fresh copy: %v %v", ok, err)
	}
	m2 := New([]Source{{Name: "drop", URL: "https://lists.example/drop"}}, Options{StateDir: dir, Sink: &sink{}, Log: quiet})
	m2.LoadCache(ctx)
	if l := m2.Status().Lists[0]; l.From != "fleet:h1" || !l.FromCache || l.Entries != 1 {
		t.Errorf("cached shared copy: %+v", l)
	}
}

type feedFunc func(context.Context, Validators) (Fetched, error)

func (f feedFunc) Fetch(ctx context.Context, v Validators) (Fetched, error) { return f(ctx, v) }

// TestNotModifiedPublishedAgain: in a fleet, the host that fetched a list
// publishes it again when the origin answers 304, so the shared copy
// stays fresh; a file list is never published.
func TestNotModifiedPublishedAgain(t *testing.T) {
	pub := &publisher{}
	pub.set(dropList, `"v1"`, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	srv := httptest.NewTLSServer(pub)
	defer srv.Close()
	dir := t.TempDir()
	lf := filepath.Join(dir, "local.txt")
	os.WriteFile(lf, []byte("198.51.100.0/24\n"), 0o600)
	var published []string
	m := New([]Source{{Name: "drop", URL: srv.URL + "/drop.txt"}, {Name: "local", File: lf}}, Options{StateDir: dir, Sink: &sink{}, Log: quiet,
		Feed: func(s Source) Feed {
			if s.URL == "" {
				return &FileFeed{Path: s.File}
			}
			return &HTTPFeed{URL: s.URL, Client: srv.Client(), Timeout: 5 * time.Second}
		},
		Published: func(name string, data []byte, _ Validators) { published = append(published, name+"="+string(data)) }})
	ctx := context.Background()
	for range 2 {
		if err := m.Refresh(ctx, "drop"); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Refresh(ctx, "local"); err != nil {
		t.Fatal(err)
	}
	if st := m.Status().Lists[0]; st.NotModified != 1 {
		t.Fatalf("no 304: %+v", st)
	}
	if len(published) != 2 || published[0] != "drop="+dropList || published[1] != published[0] {
		t.Errorf("published %q", published)
	}
}

// TestRefusalReasons: each refused update is counted under its reason
// in the metric, and the last refusal stays in the status after the
// list is taken again.
func TestRefusalReasons(t *testing.T) {
	pub := &publisher{}
	mod := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	pub.set(dropList, `"v1"`, mod)
	srv := httptest.NewTLSServer(pub)
	defer srv.Close()
	sk := &sink{}
	m := newTestManager(t, srv, t.TempDir(), Source{Name: "drop", URL: srv.URL + "/drop.txt", MaxBytes: 4096}, sk, nil)
	ctx := context.Background()
	if err := m.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		body, reason string
		status       int
	}{
		{"9.9.9.0/24\nnot a network\n", RefusalParse, 0},
		{strings.Repeat("10.0.0.0/8\n", 1000), RefusalTooLarge, 0},
		{"# nothing\n", RefusalEmpty, 0},
		{dropList, RefusalFetch, http.StatusBadGateway},
	}
	for i, s := range steps {
		pub.set(s.body, fmt.Sprintf(`"r%d"`, i), mod.Add(time.Duration(i+1)*time.Hour))
		pub.mu.Lock()
		pub.status = s.status
		pub.mu.Unlock()
		if err := m.Refresh(ctx, "drop"); err == nil {
			t.Fatalf("%s: accepted", s.reason)
		}
		if st := m.Status().Lists[0]; st.LastRefusalReason != s.reason || st.Refused[s.reason] != 1 {
			t.Fatalf("after a %s refusal: %+v", s.reason, st)
		}
	}
	pub.mu.Lock()
	pub.status = 0
	pub.mu.Unlock()
	pub.set("1.10.16.0/20\n", `"ok"`, mod.Add(10*time.Hour))
	if err := m.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	st := m.Status().Lists[0]
	if st.LastError != "" || st.LastRefusalReason != RefusalFetch || !strings.Contains(st.LastRefusal, "502") {
		t.Fatalf("the last refusal did not outlive the success: %+v", st)
	}
	// The metric, as a scrape reads it.
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "moat_blocklist_refused_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "reason" {
					got[lp.GetValue()] = mt.GetCounter().GetValue()
				}
			}
		}
	}
	for _, r := range RefusalReasons {
		if got[r] != 1 {
			t.Errorf("moat_blocklist_refused_total{reason=%q} = %v, want 1", r, got[r])
		}
	}
}
