package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moat-sh/moat/internal/schema"
)

// sameAnswer compares two answers as a client sees them: status, headers
// (Date aside) and body.
func sameAnswer(t *testing.T, what string, a, b *http.Response, abody, bbody string) {
	t.Helper()
	if a.StatusCode != b.StatusCode {
		t.Errorf("%s: status %d vs %d", what, a.StatusCode, b.StatusCode)
	}
	ha, hb := a.Header.Clone(), b.Header.Clone()
	ha.Del("Date")
	hb.Del("Date")
	if len(ha) != len(hb) {
		t.Errorf("%s: headers differ:\n%v\n%v", what, ha, hb)
	}
	for k, v := range ha {
		if !slices.Equal(v, hb[k]) {
			t.Errorf("%s: header %s: %q vs %q", what, k, v, hb[k])
		}
	}
	if abody != bbody {
		t.Errorf("%s: bodies differ:\n%q\n%q", what, abody, bbody)
	}
}

func TestDeniedRouteIsTheSitesOwn404(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/admin", Upstream: a.URL, Allow: []string{"vpn"}}, // the test client is not on the VPN
	)
	e := startEnv(t, a, cfg, Deps{VPN: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")}})
	missing, mbody := e.mustGet("https://app.test/no-such-page")
	if missing.StatusCode != 404 || !strings.Contains(mbody, "Oops") {
		t.Fatalf("the app's 404: %d %q", missing.StatusCode, mbody)
	}
	for _, p := range []string{"/admin", "/admin/", "/ADMIN/x", "/admin/../admin", "//admin", "/administrator"} {
		denied, dbody := e.mustGet("https://app.test" + p)
		sameAnswer(t, p, denied, missing, dbody, mbody)
	}
	// The protected page never reached the app.
	for _, r := range a.requests() {
		if strings.HasPrefix(strings.ToLower(r.URL.Path), "/admin") {
			t.Errorf("the app saw %s", r.URL.Path)
		}
	}
	// A path a lenient application reads as /admin is answered as missing.
	for _, p := range []string{"/public/..;/admin", "/;/admin", "/x/..%5cadmin"} {
		got, gbody := e.mustGet("https://app.test" + p)
		sameAnswer(t, p, got, missing, gbody, mbody)
	}

	// Over HTTP/2 too.
	h2 := e.newClient(true)
	d2, d2body, err := e.do(h2, "GET", "https://app.test/admin", "")
	if err != nil {
		t.Fatal(err)
	}
	m2, m2body, _ := e.do(h2, "GET", "https://app.test/no-such-page", "")
	sameAnswer(t, "h2", d2, m2, d2body, m2body)
}

func TestDeniedRouteWithoutFallbackIsGateway404(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/app", Upstream: a.URL},
		Route{Path: "/admin", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}},
	)
	e := startEnv(t, a, cfg, Deps{})
	missing, mbody := e.mustGet("https://app.test/nothing")
	denied, dbody := e.mustGet("https://app.test/admin")
	if missing.StatusCode != 404 || mbody != "404 Not Found\n" {
		t.Fatalf("gateway 404: %d %q", missing.StatusCode, mbody)
	}
	sameAnswer(t, "no fallback", denied, missing, dbody, mbody)
	// HEAD too.
	hm, _, _ := e.do(e.client, "HEAD", "https://app.test/nothing", "")
	hd, _, _ := e.do(e.client, "HEAD", "https://app.test/admin", "")
	sameAnswer(t, "HEAD", hd, hm, "", "")
}

// TestDeniedTimingIsNoise: a refused route costs what a missing path
// costs because it does the same work, one upstream round trip for a
// missing path, and that is what is asserted (counts, not a stopwatch,
// which a loaded machine would make flaky). Median latencies are logged.
func TestDeniedTimingIsNoise(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/admin", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}},
	)
	e := startEnv(t, a, cfg, Deps{})
	var denied, missing []time.Duration
	measure := func(url string) time.Duration {
		t.Helper()
		before := len(a.requests())
		start := time.Now()
		resp, _ := e.mustGet(url)
		d := time.Since(start)
		seen := a.requests()[before:]
		if resp.StatusCode != 404 || len(seen) != 1 || seen[0].Method != "GET" {
			t.Fatalf("%s: status %d after %d upstream requests; want the site's 404 after one", url, resp.StatusCode, len(seen))
		}
		if strings.HasSuffix(url, "/admin") {
			if seen[0].URL.Path == "/admin" {
				t.Fatal("the refused path reached the upstream")
			}
		}
		return d
	}
	for i := range 20 {
		if i%2 == 0 {
			denied = append(denied, measure("https://app.test/admin"))
			missing = append(missing, measure("https://app.test/missing"))
		} else {
			missing = append(missing, measure("https://app.test/missing"))
			denied = append(denied, measure("https://app.test/admin"))
		}
	}
	t.Logf("median denied %v, missing %v (not asserted)", median(denied), median(missing))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func TestDenyDropClosesUnanswered(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/admin", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}, Deny: "drop"},
	)
	e := startEnv(t, a, cfg, Deps{})
	out, err := e.rawTLS("app.test", "GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if err != nil || out != "" {
		t.Fatalf("got %q %v", out, err)
	}
	// HTTP/2: the stream is reset, and the connection goes on.
	h2 := e.newClient(true)
	if _, _, err := e.do(h2, "GET", "https://app.test/admin", ""); err == nil {
		t.Error("h2: a dropped request must fail")
	}
	if resp, _, err := e.do(h2, "GET", "https://app.test/", ""); err != nil || resp.StatusCode != 200 {
		t.Errorf("h2 after a drop: %v %v", resp, err)
	}
}

func TestSpoofedForwardedForIgnored(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/echo", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}},
	)
	e := startEnv(t, a, cfg, Deps{})
	for _, h := range []string{"X-Forwarded-For", "X-Real-IP", "CF-Connecting-IP", "True-Client-IP", "Forwarded"} {
		v := "10.1.2.3"
		if h == "Forwarded" {
			v = "for=10.1.2.3"
		}
		resp, _ := e.mustGet("https://app.test/echo", h, v)
		if resp.StatusCode != 404 {
			t.Errorf("%s from an untrusted peer was believed: %d", h, resp.StatusCode)
		}
	}
}

func TestTrustedProxyForwardedFor(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/echo", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}},
	)
	cfg.TrustedProxies = []schema.CIDR{schema.MustCIDR("127.0.0.0/8"), schema.MustCIDR("192.168.0.0/16")}
	e := startEnv(t, a, cfg, Deps{})
	cases := []struct {
		xff    string
		status int
		client string
	}{
		{"10.1.2.3", 200, "10.1.2.3"},
		{"10.1.2.3, 192.168.1.1", 200, "10.1.2.3"}, // through another trusted hop
		{"10.9.9.9, 6.6.6.6", 404, "6.6.6.6"},      // the client wrote 10.9.9.9 itself
		{"garbage, 10.1.2.3", 200, "10.1.2.3"},     // junk left of the client is irrelevant
		{"6.6.6.6, garbage", 404, "127.0.0.1"},     // junk where the client should be: the proxy's own
	}
	for _, c := range cases {
		resp, body := e.mustGet("https://app.test/echo", "X-Forwarded-For", c.xff)
		if resp.StatusCode != c.status {
			t.Errorf("XFF %q: status %d, want %d", c.xff, resp.StatusCode, c.status)
			continue
		}
		if c.status == 200 {
			var got appEcho
			json.Unmarshal([]byte(body), &got)
			if xff := got.Header.Get("X-Forwarded-For"); xff != c.xff+", 127.0.0.1" {
				t.Errorf("XFF %q: upstream saw %q", c.xff, xff)
			}
			if got.Header.Get("X-Real-Ip") != c.client {
				t.Errorf("XFF %q: X-Real-IP %q, want %q", c.xff, got.Header.Get("X-Real-Ip"), c.client)
			}
		}
	}
}

// TestRateLimitExactTokenArithmetic: on a fake clock, the limiter admits
// exactly what an ideal token bucket admits for the same arrival times,
// whatever the machine's speed.
func TestRateLimitExactTokenArithmetic(t *testing.T) {
	a := newApp(t)
	const limit, burst = 50, 10
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL, RateLimit: &RouteRateLimit{Rate: rate(limit, time.Second), Burst: burst}})
	clk := newFakeClock()
	e := startEnvClock(t, a, cfg, Deps{}, clk)
	get := func() int {
		t.Helper()
		resp, _, err := e.get("https://app.test/")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
		}
		return resp.StatusCode
	}
	// 100 requests a second for 4 s, at an uneven beat (as a loaded
	// sender's would be): 7, 13, 10 ms apart.
	const n = 400
	tokens, last, model, admitted := float64(burst), clk.now(), 0, 0
	for i := range n {
		clk.advance(time.Duration([]int{7, 13, 10}[i%3]) * time.Millisecond)
		now := clk.now()
		// The ideal bucket, in the limiter's own arithmetic.
		tokens = min(float64(burst), tokens+float64(now-last)/1e9*limit)
		last = now
		if tokens >= 1 {
			tokens--
			model++
		}
		switch code := get(); code {
		case 200:
			admitted++
		case 429:
		default:
			t.Fatalf("status %d", code)
		}
	}
	if admitted != model {
		t.Errorf("admitted %d, an ideal token bucket %d", admitted, model)
	}
	if nominal := burst + limit*4; admitted > nominal {
		t.Errorf("admitted %d, more than the rate allows (%d)", admitted, nominal)
	}
	// One failure for the first trip, none more within 10 s.
	if f, ok := e.fails.next(liveness); !ok || f.Kind != FailureRateLimit || f.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("rate-limit failure: %+v %v", f, ok)
	}
	if f, more := e.fails.pending(); more {
		t.Errorf("a second report within 10 s: %+v", f)
	}
	// 10 s later (on the clock), a trip is reported again.
	clk.advance(reportEvery)
	for range burst {
		if code := get(); code != 200 {
			t.Fatalf("a full bucket refused: %d", code)
		}
	}
	if code := get(); code != 429 {
		t.Fatalf("an empty bucket admitted: %d", code)
	}
	if f, ok := e.fails.pending(); !ok || f.Kind != FailureRateLimit {
		t.Errorf("no report 10 s after the last: %+v %v", f, ok)
	}
	// Concurrent clients at one instant: exactly the burst.
	clk.advance(time.Hour)
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			resp, _, err := e.get("https://app.test/")
			switch {
			case err != nil:
				t.Error(err)
			case resp.StatusCode == 200:
				ok.Add(1)
			case resp.StatusCode == 429:
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != burst || limited.Load() != 64-burst {
		t.Errorf("64 requests at once: %d admitted, %d limited; want %d and %d", ok.Load(), limited.Load(), burst, 64-burst)
	}
}

func TestRateLimitDrop(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL, RateLimit: &RouteRateLimit{Rate: rate(1, time.Hour), Burst: 1, Action: "drop"}})
	e := startEnv(t, a, cfg, Deps{})
	e.mustGet("https://app.test/")
	out, err := e.rawTLS("app.test", "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if out != "" || err != nil {
		t.Fatalf("got %q %v", out, err)
	}
}

func TestHoneypotReportedAtOnce(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	missing, mbody := e.mustGet("https://app.test/not-here")
	resp, body := e.mustGet("https://app.test/.env")
	// Reported before the answer went out: there when the answer is.
	f, ok := e.fails.pending()
	if !ok {
		t.Fatal("no failure reported by the time the answer arrived")
	}
	if f.Kind != FailureHoneypot || f.Addr != netip.MustParseAddr("127.0.0.1") || !strings.Contains(f.Detail, "/.env") {
		t.Errorf("failure %+v", f)
	}
	sameAnswer(t, "honeypot", resp, missing, body, mbody)
	// Any case, below the trap, on :80 and on unknown hosts too.
	for _, u := range []string{"https://app.test/PHPMyAdmin/index.php", "http://app.test/wp-login.php", "http://unknown.test/.git/config"} {
		e.get(u)
		if f, ok := e.fails.next(time.Second); !ok || f.Kind != FailureHoneypot {
			t.Errorf("%s: %+v %v", u, f, ok)
		}
	}
	if _, more := e.fails.next(50 * time.Millisecond); more {
		t.Error("extra failures")
	}
}

func writeHtpasswd(t *testing.T, cost int, users map[string]string) string {
	var b strings.Builder
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), cost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + string(h) + "\n")
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(path, []byte(b.String()), 0o600)
	return path
}

// TestBasicAuth counts bcrypt comparisons instead of timing them: the
// failure budget and the cache decide whether a request hashes, on a fake
// clock, so the test means the same on any machine.
func TestBasicAuth(t *testing.T) {
	a := newApp(t)
	// The lowest cost: what is counted is how many hashes are made, not
	// how long they take.
	const cost = bcrypt.MinCost
	hp := writeHtpasswd(t, cost, map[string]string{"alice": "correct horse"})
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL, BasicAuth: &BasicAuth{Htpasswd: hp, Realm: "gpu"}})
	clk := newFakeClock()
	e := startEnvClock(t, a, cfg, Deps{}, clk)
	b := e.g.rt.Load().sites["app.test"].routes[0].basic
	resp, _ := e.mustGet("https://app.test/")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="gpu", charset="UTF-8"` {
		t.Fatalf("no credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if f, ok := e.fails.pending(); ok {
		t.Errorf("a request without credentials is not a failure: %+v", f)
	}
	// auth makes one attempt and returns its status and how many bcrypt
	// comparisons it cost.
	auth := func(user, pass string) (int, int64) {
		t.Helper()
		before := b.hashes.Load()
		req, _ := http.NewRequest("GET", "https://app.test/", nil)
		req.SetBasicAuth(user, pass)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, b.hashes.Load() - before
	}
	expect := func(what string, code int, hashes int64, wantCode int, wantHashes int64) {
		t.Helper()
		if code != wantCode || hashes != wantHashes {
			t.Errorf("%s: %d after %d bcrypt comparisons; want %d after %d", what, code, hashes, wantCode, wantHashes)
		}
	}
	code, h := auth("alice", "correct horse")
	expect("right password", code, h, 200, 1)
	// Wrong password and unknown user cost the same: one comparison each,
	// against a hash of the same cost. Both are reported.
	if got := mustCost(t, b.dummy.hash); got != cost {
		t.Errorf("the unknown-user hash has cost %d, the file's %d: user names could be told apart by time", got, cost)
	}
	for range 3 {
		code, h = auth("alice", "nope")
		expect("wrong password", code, h, 401, 1)
		code, h = auth("mallory", "nope")
		expect("unknown user", code, h, 401, 1)
	}
	for range 6 {
		if f, ok := e.fails.pending(); !ok || f.Kind != FailureAuth {
			t.Fatalf("auth failure not reported: %+v", f)
		}
	}
	// The budget is 10 failures (the right password above was refunded):
	// 4 more are hashed, then none.
	for range authFailBurst - 6 {
		code, h = auth("alice", "nope")
		expect("failure within the budget", code, h, 401, 1)
	}
	for range 3 {
		code, h = auth("alice", "nope")
		expect("failure beyond the budget", code, h, 401, 0)
	}
	// Cached credentials still work without hashing (the real user's browser).
	code, h = auth("alice", "correct horse")
	expect("cached right password while throttled", code, h, 200, 0)
	// One budget token comes back every 6 s of the clock: one more hash.
	clk.advance(time.Duration(float64(time.Second) / authFailPerSecond))
	code, h = auth("alice", "nope")
	expect("failure after a refill", code, h, 401, 1)
	code, h = auth("alice", "nope")
	expect("failure after the refill is spent", code, h, 401, 0)
	// The cache expires: the right password is hashed again.
	clk.advance(authCacheTTL)
	code, h = auth("alice", "correct horse")
	expect("right password after the cache expired", code, h, 200, 1)
}

func mustCost(t *testing.T, hash []byte) int {
	c, err := bcrypt.Cost(hash)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestForwardAuth(t *testing.T) {
	a := newApp(t)
	var seen atomic.Value
	authSvc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Clone())
		if c, err := r.Cookie("session"); err == nil && c.Value == "good" {
			w.Header().Set("Remote-User", "alice")
			w.Header().Set("Remote-Groups", "admins")
			w.WriteHeader(200)
			return
		}
		w.Header().Set("Location", "https://auth.test/login?rd="+r.Header.Get("X-Forwarded-Proto")+"://"+r.Header.Get("X-Forwarded-Host")+r.Header.Get("X-Forwarded-Uri"))
		w.Header().Set("Server", "authelia")
		w.WriteHeader(302)
		io.WriteString(w, "to the login page")
	}))
	defer authSvc.Close()
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL, ForwardAuth: &ForwardAuth{URL: authSvc.URL + "/api/verify", ResponseHeaders: []string{"Remote-User", "Remote-Groups"}}})
	e := startEnv(t, a, cfg, Deps{})

	spoof := []string{"X-Forwarded-Uri", "/public", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Method", "GET", "X-Original-URL", "https://x/public", "Remote-User", "admin"}
	resp, body := e.mustGet("https://app.test/echo?q=1", append([]string{"Cookie", "session=bad"}, spoof...)...)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://auth.test/login?rd=https://app.test/echo?q=1" || body != "to the login page" || resp.Header.Get("Server") != "" {
		t.Fatalf("unauthenticated: %d %q %q %v", resp.StatusCode, resp.Header.Get("Location"), body, resp.Header)
	}
	h := seen.Load().(http.Header)
	for k, v := range map[string]string{"X-Forwarded-Uri": "/echo?q=1", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.test", "X-Original-Url": "https://app.test/echo?q=1"} {
		if got := strings.Join(h.Values(k), ","); got != v {
			t.Errorf("auth service saw %s = %q, want %q", k, got, v)
		}
	}
	if h.Get("Remote-User") != "" {
		t.Error("the client's Remote-User reached the auth service")
	}
	if len(a.requests()) != 0 {
		t.Fatal("an unauthenticated request reached the app")
	}
	resp, body = e.mustGet("https://app.test/echo", append([]string{"Cookie", "session=good"}, spoof...)...)
	if resp.StatusCode != 200 {
		t.Fatalf("authenticated: %d", resp.StatusCode)
	}
	var got appEcho
	json.Unmarshal([]byte(body), &got)
	if got.Header.Get("Remote-User") != "alice" || got.Header.Get("Remote-Groups") != "admins" || len(got.Header.Values("Remote-User")) != 1 {
		t.Errorf("upstream saw Remote-User %q, Remote-Groups %q", got.Header.Values("Remote-User"), got.Header.Get("Remote-Groups"))
	}
	// Auth service down: fail closed.
	authSvc.Close()
	resp, _ = e.mustGet("https://app.test/echo", "Cookie", "session=good")
	if resp.StatusCode != 502 {
		t.Errorf("auth service down: %d", resp.StatusCode)
	}
}

func TestGeoPolicy(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/echo", Upstream: a.URL, Geo: RouteGeo{Allow: []schema.Country{"DE", "FR"}}},
		Route{Path: "/api/", Upstream: a.URL, Geo: RouteGeo{Deny: []schema.Country{"KP"}}},
	)
	cfg.TrustedProxies = []schema.CIDR{schema.MustCIDR("127.0.0.1")}
	geo := fakeGeo{
		netip.MustParseAddr("203.0.113.1"): "DE",
		netip.MustParseAddr("203.0.113.2"): "KP",
		netip.MustParseAddr("203.0.113.3"): "US",
	}
	e := startEnv(t, a, cfg, Deps{Geo: geo})
	cases := []struct {
		path, addr string
		want       int
	}{
		{"/echo", "203.0.113.1", 200},
		{"/echo", "203.0.113.3", 404},
		{"/echo", "198.51.100.9", 404}, // no country: an allow list refuses
		{"/api/x", "203.0.113.2", 404},
		{"/api/x", "203.0.113.3", 200},
		{"/api/x", "198.51.100.9", 200}, // no country: a deny list admits
	}
	for _, c := range cases {
		resp, _ := e.mustGet("https://app.test"+c.path, "X-Forwarded-For", c.addr)
		if resp.StatusCode != c.want {
			t.Errorf("%s from %s: %d, want %d", c.path, c.addr, resp.StatusCode, c.want)
		}
	}
	// Without a database, a geo route is a config error.
	if _, err := New(cfg, Deps{}); err == nil || !strings.Contains(err.Error(), "country database") {
		t.Errorf("geo without a database: %v", err)
	}
}

func TestBanMirror(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL)
	cfg.TrustedProxies = []schema.CIDR{schema.MustCIDR("127.0.0.1")}
	e := startEnv(t, a, cfg, Deps{Bans: banSet{netip.MustParseAddr("198.51.100.7"): true}})
	if resp, _ := e.mustGet("https://app.test/", "X-Forwarded-For", "198.51.100.7"); resp.StatusCode != 404 {
		t.Errorf("banned client behind the proxy: %d", resp.StatusCode)
	}
	if resp, _ := e.mustGet("https://app.test/", "X-Forwarded-For", "198.51.100.8"); resp.StatusCode != 200 {
		t.Errorf("other client: %d", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL)
	cfg.Limits.BodyBytes = 1 << 10
	e := startEnv(t, a, cfg, Deps{})
	resp, _, err := e.do(e.client, "POST", "https://app.test/echo", strings.Repeat("x", 2<<10))
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("declared too large: %v %v", resp, err)
	}
	// Chunked, so the size shows only while reading.
	req, _ := http.NewRequest("POST", "https://app.test/echo", io.MultiReader(strings.NewReader(strings.Repeat("y", 2<<10))))
	req.ContentLength = -1
	resp, err = e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked too large: %d", resp.StatusCode)
	}
	resp, body, _ := e.do(e.client, "POST", "https://app.test/echo", "small")
	if resp.StatusCode != 200 || !strings.Contains(body, `"Body":"small"`) {
		t.Errorf("small body: %d %s", resp.StatusCode, body)
	}
}

func TestMetrics(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL}, Route{Path: "/admin", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}})
	e := startEnv(t, a, cfg, Deps{})
	e.mustGet("https://app.test/")
	e.mustGet("https://app.test/admin")
	e.rawTLS("app.test", "GET / HTTP/1.1\r\nHost: nope.test\r\n\r\n")
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if m.Histogram != nil {
				v = float64(m.GetHistogram().GetSampleCount())
			}
			got[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	for k, v := range map[string]float64{
		"moat_gateway_requests_total{code=2xx,route=/,site=app.test}":             1,
		"moat_gateway_requests_total{code=4xx,route=/admin,site=app.test}":        1,
		"moat_gateway_denials_total{reason=allowlist,route=/admin,site=app.test}": 1,
		"moat_gateway_request_duration_seconds{route=/,site=app.test}":            1,
		"moat_gateway_dropped_total{reason=unknown_host}":                         1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
