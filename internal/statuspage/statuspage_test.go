package statuspage_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/daemon"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/statuspage"
	"github.com/moat-sh/moat/internal/vpn"
)

// hostile are strings an attacker controls and the ban history stores:
// a jail reason from a log line, a user name, a Host header.
var hostile = []string{
	`<script>alert("reason")</script>`,
	`"><img src=x onerror=alert(1)>`,
	`javascript:alert(document.cookie)`,
	`' onmouseover='alert(2)`,
	`</title></svg><script>alert(3)</script>`,
}

// fakeSource is the daemon's side of the page with a fixed history.
type fakeSource struct {
	gen   atomic.Uint64
	snaps atomic.Int64
	data  func(now time.Time) *statuspage.Data
}

func (f *fakeSource) Generation() uint64 { return f.gen.Load() }
func (f *fakeSource) Snapshot(_ context.Context, now time.Time) (*statuspage.Data, error) {
	f.snaps.Add(1)
	return f.data(now), nil
}

// fixture is a day of bans, one hostile reason per ban, an audit history
// and a pending change.
func fixture(now time.Time) *statuspage.Data {
	var recs []statuspage.Record
	for i := range 30 {
		a := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 7)})
		recs = append(recs, statuspage.Record{Prefix: netip.PrefixFrom(a, 32), Jail: "sshd",
			Reason: hostile[i%len(hostile)], Origin: "auto", Created: now.Add(-time.Duration(i) * 37 * time.Minute),
			Expires: now.Add(time.Hour)})
	}
	delta := -3
	since := now.Add(-24 * time.Hour)
	st := daemon.Status{Running: true, Version: "test", Config: "/etc/moat/moat.yaml",
		Firewall: &firewall.Status{Loaded: true, Persisted: true, Rules: 42,
			Drops: []firewall.Drop{{Reason: "ban", Packets: 1234, Bytes: 56789}}},
		Bans: 7,
		Audit: &daemon.AuditSummary{AuditRun: daemon.AuditRun{Time: now, Score: 81,
			Findings: map[string]int{"critical": 1, "high": 2}}, Change: &delta, Since: &since},
		PendingChange: &daemon.PendingChange{ID: "20261206T190000Z-abcdef", Summary: "ssh: user " + hostile[0],
			ConfirmBy: now.Add(5 * time.Minute)},
		LastRollback: &change.RollbackNote{ID: "20261205T100000Z-123456", Time: now.Add(-26 * time.Hour), Reason: hostile[1]},
		Conditions:   []daemon.Condition{{Kind: "reboot", Severity: alert.Warning, Since: now.Add(-time.Hour), Title: "reboot required"}},
		Notifiers:    []alert.NotifierHealth{{Name: "ops", Type: "ntfy", Sent: 3, LastError: hostile[2]}},
	}
	return &statuspage.Data{Status: st, Bans: statuspage.SummarizeBans(recs, now, nil),
		Audit: statuspage.AuditView{Points: []statuspage.ScorePoint{{Time: since, Score: 84}, {Time: now, Score: 81}},
			Findings: []statuspage.Finding{{ID: "SSH-001", Severity: "critical", Title: "root login", Fix: "moat apply ssh " + hostile[3]}}}}
}

type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }
func newClock(t time.Time) *clock    { c := &clock{}; c.t.Store(t.UnixNano()); return c }
func allowAll(netip.Addr) bool       { return true }
func get(t *testing.T, h http.Handler, target string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Host = "127.0.0.1:9470"
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			r.Host = hdr[i+1]
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newServer(t *testing.T, src statuspage.Source, clk *clock, token string) *statuspage.Server {
	t.Helper()
	s, err := newServerErr(src, clk, token)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newServerErr(src statuspage.Source, clk *clock, token string) (*statuspage.Server, error) {
	return statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: "127.0.0.1:0", Refresh: schema.Duration(30 * time.Second)},
		Token: token, Source: src, Allow: allowAll, Now: clk.now, Log: slog.New(slog.DiscardHandler)})
}

var t0 = time.Date(2026, 12, 6, 19, 30, 0, 0, time.UTC)

// An idle tab: one request per refresh interval, each answered 304, and
// at most one snapshot of the daemon per interval however many tabs ask.
func TestIdleTabCosts304(t *testing.T) {
	clk := newClock(t0)
	src := &fakeSource{data: func(time.Time) *statuspage.Data { return fixture(t0) }}
	h := newServer(t, src, clk, "").Handler()
	first := get(t, h, "/")
	if first.StatusCode != 200 {
		t.Fatalf("first load: %d %s", first.StatusCode, body(t, first))
	}
	tag := first.Header.Get("ETag")
	if tag == "" || !strings.Contains(first.Header.Get("Cache-Control"), "no-cache") {
		t.Fatalf("ETag %q, Cache-Control %q", tag, first.Header.Get("Cache-Control"))
	}
	for i := range 10 {
		clk.add(30 * time.Second) // one refresh interval
		for range 3 {             // three tabs open
			r := get(t, h, "/", "If-None-Match", tag)
			if r.StatusCode != http.StatusNotModified {
				t.Fatalf("refresh %d: %d, want 304 while nothing changed", i, r.StatusCode)
			}
			if b := body(t, r); b != "" {
				t.Fatalf("304 with a body of %d bytes", len(b))
			}
		}
	}
	if n := src.snaps.Load(); n != 11 {
		t.Errorf("%d snapshots for 11 intervals, want one per interval", n)
	}
	// A ban: the generation moves, the page is rebuilt at once.
	src.data = func(time.Time) *statuspage.Data {
		d := fixture(t0)
		d.Bans.Total24h++
		return d
	}
	src.gen.Add(1)
	r := get(t, h, "/", "If-None-Match", tag)
	if r.StatusCode != 200 || r.Header.Get("ETag") == tag {
		t.Fatalf("after a ban: %d, ETag %q (was %q)", r.StatusCode, r.Header.Get("ETag"), tag)
	}
}

func TestHeaders(t *testing.T) {
	src := &fakeSource{data: fixture}
	h := newServer(t, src, newClock(t0), "").Handler()
	r := get(t, h, "/")
	for k, want := range map[string]string{"Content-Security-Policy": statuspage.CSP, "X-Content-Type-Options": "nosniff",
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(statuspage.CSP, "default-src 'none'") || strings.Contains(statuspage.CSP, "unsafe") {
		t.Errorf("CSP %q", statuspage.CSP)
	}
	page := body(t, r)
	for _, bad := range []string{"http://", "https://", "//fonts", "<style", "style=", " on"} {
		if strings.Contains(strings.ReplaceAll(page, "http://ADDRESS", ""), bad) && bad != " on" {
			t.Errorf("page contains %q", bad)
		}
	}
	// Read-only.
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Host = "127.0.0.1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

// DNS rebinding: a page on evil.example whose name now points at the
// status page's address must not be answered.
func TestHostNameRefused(t *testing.T) {
	h := newServer(t, &fakeSource{data: fixture}, newClock(t0), "").Handler()
	for host, want := range map[string]int{"evil.example": 421, "evil.example:9470": 421, "127.0.0.1:9470": 200,
		"[::1]:9470": 200, "localhost:9470": 200, "100.64.0.5": 200} {
		if r := get(t, h, "/api/status", "Host", host); r.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, r.StatusCode, want)
		}
	}
}

func TestTokenFlow(t *testing.T) {
	const tok = "s3cret-token-0123456789"
	h := newServer(t, &fakeSource{data: fixture}, newClock(t0), tok).Handler()
	for _, c := range []struct {
		name string
		hdr  []string
		url  string
		want int
	}{
		{"nothing", nil, "/", 401},
		{"wrong query", nil, "/?token=nope", 401},
		{"prefix of the token", nil, "/?token=" + tok[:10], 401},
		{"wrong bearer", []string{"Authorization", "Bearer nope"}, "/", 401},
		{"bearer", []string{"Authorization", "Bearer " + tok}, "/api/status", 200},
		{"the token as a cookie", []string{"Cookie", "moat_status=" + tok}, "/", 401},
		{"static files too", nil, "/static/app.js", 401},
	} {
		if r := get(t, h, c.url, c.hdr...); r.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, r.StatusCode, c.want)
		}
	}
	r := get(t, h, "/?token="+tok+"&x=1")
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("?token=: %d, want 303", r.StatusCode)
	}
	if loc := r.Header.Get("Location"); strings.Contains(loc, "token") || loc != "/?x=1" {
		t.Errorf("redirect to %q: the token must leave the URL", loc)
	}
	cs := r.Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies: %v", cs)
	}
	c := cs[0]
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || strings.Contains(c.Value, tok) {
		t.Errorf("cookie %s: want Secure, HttpOnly, SameSite=Strict, Path=/, not the token itself", c.String())
	}
	if r := get(t, h, "/", "Cookie", c.Name+"="+c.Value); r.StatusCode != 200 {
		t.Errorf("with the cookie: %d", r.StatusCode)
	}
	if r := get(t, h, "/", "Cookie", c.Name+"="+c.Value[:len(c.Value)-1]+"0"); r.StatusCode != 401 {
		t.Errorf("with a forged cookie: %d", r.StatusCode)
	}
}

// Attacker-controlled strings in the history are text on the page, never
// markup, attributes or URLs.
func TestHostileStringsEscaped(t *testing.T) {
	h := newServer(t, &fakeSource{data: fixture}, newClock(t0), "").Handler()
	page := body(t, get(t, h, "/"))
	for _, s := range []string{"<script>alert", "<img src=x", `href="javascript:`, "onmouseover='alert", "</svg><script>"} {
		if strings.Contains(page, s) {
			t.Errorf("page contains %q unescaped", s)
		}
	}
	for _, s := range []string{"&lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;", "javascript:alert(document.cookie)"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks the escaped text %q", s)
		}
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d <script> elements, want the one same-origin file", n)
	}
}

// The VPN section: "no VPN layer data" without it, the peers (escaped)
// with it.
func TestVPNSection(t *testing.T) {
	page := body(t, get(t, newServer(t, &fakeSource{data: fixture}, newClock(t0), "").Handler(), "/"))
	if !strings.Contains(page, "no VPN layer data") {
		t.Error("no VPN data, no placeholder")
	}
	src := &fakeSource{data: func(now time.Time) *statuspage.Data {
		d := fixture(now)
		d.VPN = &statuspage.VPNView{Interface: "wg0", Peers: []statuspage.Peer{{Name: "laptop " + hostile[0], Addresses: []string{"10.8.0.2/32"},
			Endpoint: "203.0.113.7:51820", LastHandshake: now.Add(-time.Minute), RxBytes: 1234, TxBytes: 5678}}}
		return d
	}}
	page = body(t, get(t, newServer(t, src, newClock(t0), "").Handler(), "/"))
	for _, want := range []string{"wg0", "laptop &lt;script&gt;", "10.8.0.2/32", "1234 / 5678"} {
		if !strings.Contains(page, want) {
			t.Errorf("VPN section lacks %q", want)
		}
	}
}

func TestSectionsJSON(t *testing.T) {
	h := newServer(t, &fakeSource{data: fixture}, newClock(t0), "").Handler()
	for _, s := range statuspage.Sections {
		r := get(t, h, "/api/"+s)
		b := body(t, r)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(b, "{") {
			t.Errorf("/api/%s: %d %s %.60s", s, r.StatusCode, r.Header.Get("Content-Type"), b)
		}
	}
	if r := get(t, h, "/api/nope"); r.StatusCode != 404 {
		t.Errorf("/api/nope: %d", r.StatusCode)
	}
}

func TestBanChart(t *testing.T) {
	now := t0
	var recs []statuspage.Record
	// 3 bans in each of 5 distinct hours of the last day, 4 two days ago,
	// 2 older than a week.
	for h := range 5 {
		for i := range 3 {
			recs = append(recs, statuspage.Record{Prefix: netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/32", i)), Created: now.Add(-time.Duration(h*3) * time.Hour)})
		}
	}
	for range 4 {
		recs = append(recs, statuspage.Record{Prefix: netip.MustParsePrefix("2001:db8:1:2::5/128"), Created: now.Add(-50 * time.Hour)})
	}
	for range 2 {
		recs = append(recs, statuspage.Record{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Created: now.Add(-9 * 24 * time.Hour)})
	}
	v := statuspage.SummarizeBans(recs, now, nil)
	nonzero := 0
	for _, b := range v.Day {
		if b.Count > 0 {
			nonzero++
		}
	}
	if len(v.Day) != 24 || len(v.Week) != 7 || nonzero != 5 || v.Total24h != 15 || v.Total7d != 19 {
		t.Errorf("day %d bars (%d non-zero), week %d, totals %d/%d; want 24 (5), 7, 15/19", len(v.Day), nonzero, len(v.Week), v.Total24h, v.Total7d)
	}
	if v.Prefixes[0].Key != "198.51.100.0/24" || v.Prefixes[0].Count != 15 || v.Prefixes[1].Key != "2001:db8:1::/48" {
		t.Errorf("top networks %+v", v.Prefixes)
	}
	if len(v.Recent) != 19 || !v.Recent[0].Created.Equal(now) {
		t.Errorf("recent: %d, first %v", len(v.Recent), v.Recent[0].Created)
	}
}

func TestValidate(t *testing.T) {
	v := vpn.Default()
	v.Ranges = append(v.Ranges, schema.MustCIDR("10.8.0.0/24"))
	for addr, ok := range map[string]bool{
		"127.0.0.1:9470": true, "[::1]:9470": true, "100.101.102.103:9470": true, "10.8.0.1:80": true,
		"0.0.0.0:9470": false, "[::]:9470": false, "203.0.113.5:9470": false, "10.9.0.1:9470": false,
		"192.168.1.10:9470": false, "localhost:9470": false, ":9470": false, "127.0.0.1": false,
	} {
		err := statuspage.Config{Listen: addr}.Validate(v)
		if (err == nil) != ok {
			t.Errorf("listen %s: %v, want ok=%v", addr, err, ok)
		}
	}
	if err := (statuspage.Config{Listen: "127.0.0.1:1", Refresh: schema.Duration(time.Millisecond)}).Validate(v); err == nil {
		t.Error("refresh 1ms accepted")
	}
}

// A source outside loopback and vpn.ranges gets its connection closed
// before a byte is read; lab_test.go does the same across namespaces.
func TestSourceRefused(t *testing.T) {
	src := &fakeSource{data: fixture}
	s, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: "127.0.0.1:0"}, Source: src,
		Allow: func(netip.Addr) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/api/status")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a refused source got HTTP %d", resp.StatusCode)
	}
	if src.snaps.Load() != 0 {
		t.Error("a refused source caused a snapshot")
	}
}

// moat.yaml's validation refuses a public status page with the file's
// line and column, and accepts loopback and the VPN.
func TestConfigRefusesPublicListen(t *testing.T) {
	bad := []byte("vpn:\n  ranges: [10.8.0.0/24]\nstatus_page:\n  listen: 0.0.0.0:9470\n")
	_, err := config.Parse("moat.yaml", bad)
	if err == nil || !strings.Contains(err.Error(), "moat.yaml:4:") || !strings.Contains(err.Error(), "status_page.listen") {
		t.Fatalf("0.0.0.0: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:9470", "10.8.0.1:9470"} {
		good := []byte("vpn:\n  ranges: [10.8.0.0/24]\nstatus_page:\n  listen: " + addr + "\n")
		if _, err := config.Parse("moat.yaml", good); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}
