package gateway

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moat-sh/moat/internal/schema"
)

func TestValidate(t *testing.T) {
	good := func() Config {
		c := Config{Sites: []Site{{Host: "a.example.com", Routes: []Route{{Upstream: "http://127.0.0.1:3000"}}}}}
		c.Defaults()
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"wildcard without certificate", func(c *Config) { c.Sites[0].Host = "*.example.com" }, "wildcard host needs a static certificate"},
		{"duplicate path", func(c *Config) {
			c.Sites[0].Routes = append(c.Sites[0].Routes, Route{Path: "/", Upstream: "http://x:1", Deny: "notfound"})
		}, "listed twice in this site"},
		{"bad challenge", func(c *Config) { c.ACME.Challenges = []string{"dns-01"} }, "expected one of http-01, tls-alpn-01"},
		{"no challenge", func(c *Config) { c.ACME.Challenges = []string{} }, "needs http-01 or tls-alpn-01"},
		{"bad client ip header", func(c *Config) { c.ClientIPHeader = "X Forwarded" }, "client_ip_header"},
		{"server header", func(c *Config) { c.Headers = map[string]string{"server": "nginx"} }, "the gateway's own"},
		{"header value", func(c *Config) { c.Sites[0].Routes[0].Headers = map[string]string{"X-A": "a\nb"} }, "control character"},
		{"upstream with query", func(c *Config) { c.Sites[0].Routes[0].Upstream = "http://x:1/?a=b" }, "expected an upstream"},
		{"upstream with user", func(c *Config) { c.Sites[0].Routes[0].Upstream = "http://u:p@x:1" }, "expected an upstream"},
		{"relative socket", func(c *Config) { c.Sites[0].Routes[0].Upstream = "unix:run/app.sock" }, "unix:/absolute"},
		{"realm quote", func(c *Config) { c.Sites[0].Routes[0].BasicAuth = &BasicAuth{Htpasswd: "/x", Realm: `a"b`} }, "realm"},
		{"forward auth header", func(c *Config) {
			c.Sites[0].Routes[0].ForwardAuth = &ForwardAuth{URL: "http://127.0.0.1:9091/api/verify", ResponseHeaders: []string{"Remote User"}}
		}, "response_headers[0]"},
		{"header limit", func(c *Config) { c.Limits.HeaderBytes = 100 }, "1KiB to 1MiB"},
		{"rate zero", func(c *Config) { c.Sites[0].Routes[0].RateLimit = &RouteRateLimit{Action: "429"} }, "rate like 10/s"},
		{"deny 403", func(c *Config) { c.Sites[0].Routes[0].Deny = "403" }, "never answers 403"},
	}
	for _, c := range cases {
		cfg := good()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestDefaultsIdempotent(t *testing.T) {
	c := Config{Sites: []Site{{Host: "a.example.com", Routes: []Route{{Upstream: "http://127.0.0.1:3000", RateLimit: &RouteRateLimit{Rate: schema.Rate{N: 20, Per: time.Second}}, BasicAuth: &BasicAuth{Htpasswd: "/x"}}}}}}
	c.Defaults()
	first := c
	first.Sites = []Site{{Host: c.Sites[0].Host, Routes: []Route{c.Sites[0].Routes[0]}}}
	rl, ba := *c.Sites[0].Routes[0].RateLimit, *c.Sites[0].Routes[0].BasicAuth
	c.Defaults()
	if !reflect.DeepEqual(rl, *c.Sites[0].Routes[0].RateLimit) || !reflect.DeepEqual(ba, *c.Sites[0].Routes[0].BasicAuth) || !reflect.DeepEqual(first.Limits, c.Limits) {
		t.Error("Defaults is not idempotent")
	}
	if rl.Burst != 20 || rl.Action != "429" || ba.Realm != "restricted" {
		t.Errorf("defaults: %+v %+v", rl, ba)
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"app.example.com":      "app.example.com",
		"App.Example.COM":      "app.example.com",
		"app.example.com:8443": "app.example.com",
		"app.example.com.":     "app.example.com",
		"APP.example.com.:443": "app.example.com",
		"[::1]:443":            "::1",
		"127.0.0.1:80":         "127.0.0.1",
		"":                     "",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
	if wildcardOf("a.example.com") != "*.example.com" || wildcardOf("example.com") != "" || wildcardOf("a.b.example.com") != "*.b.example.com" {
		t.Error("wildcardOf")
	}
}

func TestCleanAndAltPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":           "/",
		"/a/b":        "/a/b",
		"/a/b/":       "/a/b/",
		"//admin":     "/admin",
		"/a/../admin": "/admin",
		"/./admin/":   "/admin/",
		"/admin/..":   "/",
		"/../../etc":  "/etc",
		"":            "/",
		"admin":       "/admin",
		"/a/.../b":    "/a/.../b",
		"/a/..b/c":    "/a/..b/c",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/public/..;/admin":   "/admin",
		"/;/admin":            "/admin",
		"/admin;jsessionid=1": "/admin",
		"/x/..\\admin":        "/admin",
		"/plain":              "",
	} {
		if got := altPath(in); got != want {
			t.Errorf("altPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func testSite(paths ...string) *site {
	s := &site{host: "a.test"}
	for _, p := range paths {
		s.routes = append(s.routes, &route{path: p, prefix: strings.ToLower(p)})
	}
	// longest first, as build sorts them
	for i := range s.routes {
		for j := i + 1; j < len(s.routes); j++ {
			if len(s.routes[j].prefix) > len(s.routes[i].prefix) {
				s.routes[i], s.routes[j] = s.routes[j], s.routes[i]
			}
		}
	}
	return s
}

func TestRouteMatching(t *testing.T) {
	s := testSite("/", "/admin", "/api/v1/", "/static")
	cases := []struct {
		path, route string
		ambiguous   bool
	}{
		{"/", "/", false},
		{"/index.html", "/", false},
		{"/admin", "/admin", false},
		{"/Admin/users", "/admin", false},
		{"/administrator", "/admin", false},
		{"//admin", "/admin", false},
		{"/x/../admin", "/admin", false},
		{"/api/v1/x", "/api/v1/", false},
		{"/api/v1", "/", false},
		{"/api/v2/x", "/", false},
		{"/public/..;/admin", "", true},
		{"/static;x", "/static", false},
		{"/x\\..\\admin", "", true},
	}
	for _, c := range cases {
		r, _, amb := s.route(c.path)
		got := ""
		if r != nil {
			got = r.path
		}
		if got != c.route || amb != c.ambiguous {
			t.Errorf("%q → route %q ambiguous %v, want %q %v", c.path, got, amb, c.route, c.ambiguous)
		}
	}
	none := testSite("/app")
	if r, _, _ := none.route("/other"); r != nil {
		t.Error("a site without / has no route for /other")
	}
}

func TestHoneypotMatch(t *testing.T) {
	rt := &snapshot{}
	for _, h := range DefaultHoneypots {
		rt.honeypots = append(rt.honeypots, strings.ToLower(h))
	}
	for p, want := range map[string]bool{
		"/.env":                 true,
		"/.ENV":                 true,
		"/.env/x":               true,
		"/.envoy":               false,
		"/wp-login.php":         true,
		"/phpmyadmin":           true,
		"/phpMyAdmin/index.php": true,
		"/cgi-bin/test.cgi":     true,
		"/cgi-bin":              false,
		"/":                     false,
		"/environment":          false,
	} {
		if got := rt.honeypot(p); got != want {
			t.Errorf("honeypot(%q) = %v", p, got)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(10, 5, 1024)
	a := netip.MustParseAddr("198.51.100.1")
	now := int64(time.Hour)
	ok := 0
	for range 20 {
		if o, _, _ := l.take(a, now); o {
			ok++
		}
	}
	if ok != 5 {
		t.Errorf("burst: %d admitted, want 5", ok)
	}
	o, wait, report := l.take(a, now)
	if o || wait != 100*time.Millisecond || report {
		t.Errorf("empty bucket: ok %v wait %v report %v (reported on the first trip only)", o, wait, report)
	}
	now += int64(time.Second) // ten tokens back, capped at five
	ok = 0
	for range 20 {
		if o, _, _ := l.take(a, now); o {
			ok++
		}
	}
	if ok != 5 {
		t.Errorf("after refill: %d", ok)
	}
	later := now + int64(reportEvery)
	for range 5 {
		l.take(a, later)
	}
	if _, _, report := l.take(a, later); !report {
		t.Error("a trip 10 s later is reported again")
	}
	// IPv6 clients share their /64.
	v6a, v6b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	l2 := newLimiter(1, 1, 1024)
	if o, _, _ := l2.take(v6a, now); !o {
		t.Fatal("first v6")
	}
	if o, _, _ := l2.take(v6b, now); o {
		t.Error("a second address in the same /64 got its own bucket")
	}
	if o, _, _ := l2.take(netip.MustParseAddr("2001:db8:1:3::1"), now); !o {
		t.Error("another /64 is another client")
	}
	// Bounded: a spray of addresses never grows the table past capacity.
	l3 := newLimiter(1, 1, 256)
	for i := range 100000 {
		l3.take(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
	}
	if n := l3.len(); n > 256 {
		t.Errorf("%d entries, capacity 256", n)
	}
	// The recent client survives a spray smaller than its shard's share.
	l4 := newLimiter(1, 1, 1<<16)
	l4.take(a, now)
	for i := range 1000 {
		l4.take(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now)
	}
	if o, _, _ := l4.take(a, now); o {
		t.Error("a small spray reset another client's bucket")
	}
}

func TestParseHtpasswd(t *testing.T) {
	h4, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	h5, _ := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	good := "# users\n\nalice:" + string(h4) + "\r\nbob:" + string(h5) + "\n"
	h, err := parseHtpasswd([]byte(good))
	if err != nil || len(h.users) != 2 || h.cost != 5 {
		t.Fatalf("%v %+v", err, h)
	}
	for name, bad := range map[string]string{
		"md5 short": "alice:$apr1$abc$defghijklmnopqrstuv\n",
		"sha short": "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG3\n",
		"des crypt": "alice:rOc2u8h1GvTYk\n",
		"plain":     "alice:secret\n",
		"no colon":  "alice\n",
		"no user":   ":" + string(h4) + "\n",
		"duplicate": "alice:" + string(h4) + "\nalice:" + string(h5) + "\n",
		"short":     "alice:" + string(h4)[:50] + "\n",
		"empty":     "# nobody\n",
	} {
		if _, err := parseHtpasswd([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestClientIPResolve(t *testing.T) {
	c := newClientIP([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "x-forwarded-for")
	req := func(remote string, xff ...string) *http.Request {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		return r
	}
	cases := []struct {
		r       *http.Request
		client  string
		trusted bool
	}{
		{req("203.0.113.9:5555", "1.2.3.4"), "203.0.113.9", false},
		{req("10.0.0.1:5555"), "10.0.0.1", true},
		{req("10.0.0.1:5555", "1.2.3.4"), "1.2.3.4", true},
		{req("10.0.0.1:5555", "6.6.6.6, 1.2.3.4, 10.0.0.2"), "1.2.3.4", true},
		{req("10.0.0.1:5555", "6.6.6.6", "1.2.3.4"), "1.2.3.4", true},
		{req("10.0.0.1:5555", "10.0.0.3, 10.0.0.2"), "10.0.0.3", true},
		{req("10.0.0.1:5555", "[2001:db8::1]:443"), "2001:db8::1", true},
		{req("10.0.0.1:5555", "1.2.3.4:80"), "1.2.3.4", true},
		{req("10.0.0.1:5555", "::ffff:1.2.3.4"), "1.2.3.4", true},
		{req("10.0.0.1:5555", "nonsense"), "10.0.0.1", true},
		{req("[::ffff:203.0.113.9]:5555"), "203.0.113.9", false},
	}
	for i, cs := range cases {
		client, _, trusted := c.resolve(cs.r)
		if client.String() != cs.client || trusted != cs.trusted {
			t.Errorf("%d: client %v trusted %v, want %s %v", i, client, trusted, cs.client, cs.trusted)
		}
	}
	one := newClientIP([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "CF-Connecting-IP")
	r := req("10.0.0.1:1")
	r.Header.Set("Cf-Connecting-Ip", "198.51.100.4")
	if a, _, _ := one.resolve(r); a.String() != "198.51.100.4" {
		t.Errorf("CF-Connecting-IP: %v", a)
	}
}

func TestHeaderSet(t *testing.T) {
	hs := newHeaderSet(true, map[string]string{"x-frame-options": "DENY", "Permissions-Policy": "camera=()"}, map[string]string{"Referrer-Policy": ""})
	h := http.Header{"X-Frame-Options": {"SAMEORIGIN"}}
	hs.fill(h, true)
	want := http.Header{
		"X-Frame-Options":           {"SAMEORIGIN"}, // the upstream's own stays
		"X-Content-Type-Options":    {"nosniff"},
		"Permissions-Policy":        {"camera=()"},
		"Strict-Transport-Security": {defaultHSTS},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %v\nwant %v", h, want)
	}
	h = http.Header{}
	hs.fill(h, false)
	if h.Get("Strict-Transport-Security") != "" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("plain HTTP: %v", h)
	}
	off := newHeaderSet(false)
	h = http.Header{}
	off.fill(h, true)
	if h.Get("Strict-Transport-Security") != "" {
		t.Error("hsts: false still sends HSTS")
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "ctl\x00\x01\x1f\x7f", "é ü 日本", "bad\xff\xfeutf8", "\u2028\u2029", "<script>&"} {
		b := appendJSONString(nil, s, 1000)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q → %s: %v", s, b, err)
			continue
		}
		var want string
		std, _ := json.Marshal(s) // encoding/json replaces each invalid byte too
		json.Unmarshal(std, &want)
		if got != want {
			t.Errorf("%q → %q", s, got)
		}
	}
	if b := appendJSONString(nil, strings.Repeat("a", 100), 10); string(b) != `"aaaaaaaaaa"` {
		t.Errorf("limit: %s", b)
	}
}
