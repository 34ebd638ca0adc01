package gateway

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update after checking):\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

// leakyUpstream answers with every header that gives the inside away,
// and with URLs and cookies naming its own address.
func leakyUpstream(t *testing.T) *httptest.Server {
	var up *httptest.Server
	up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self := up.Listener.Addr().String()
		h := w.Header()
		for k, v := range map[string]string{
			"Server": "Apache/2.4.62 (Debian)", "X-Powered-By": "PHP/8.2.7", "Via": "1.1 varnish (Varnish/6.0)",
			"X-AspNet-Version": "4.0.30319", "X-AspNetMvc-Version": "5.2", "X-Runtime": "0.012", "X-Generator": "Drupal 10",
			"X-Drupal-Cache": "HIT", "X-Drupal-Dynamic-Cache": "MISS", "X-Varnish": "32770 3", "X-Backend-Server": "web-3.internal",
			"X-Upstream": self, "X-Upstream-Addr": self, "X-Turbo-Charged-By": "LiteSpeed", "X-Mod-Pagespeed": "1.13",
			"Server-Timing": "db;dur=53", "X-Debug-Token": "a1b2c3", "X-Internal-Trace": "t-1", "X-Served-By": "cache-fra1",
			"Cache-Control": "no-store", "Content-Type": "text/plain", "X-Frame-Options": "DENY",
			"Location":         "http://" + self + "/base/login?next=%2F",
			"Content-Location": "http://" + strings.ToUpper(self) + "/base/doc",
			"Refresh":          "5; url=http://" + self + "/base/later",
		} {
			h.Set(k, v)
		}
		h.Add("Set-Cookie", "session=abc; Path=/; Domain="+strings.Split(self, ":")[0]+"; HttpOnly")
		h.Add("Set-Cookie", "pref=1; Domain=.example.net; Path=/")
		h.Add("Set-Cookie", "plain=1")
		w.WriteHeader(http.StatusFound)
		io.WriteString(w, "moved")
	}))
	t.Cleanup(up.Close)
	return up
}

// dumpHeaders writes the headers that came from the upstream in a stable
// form, with the run's addresses replaced.
func dumpHeaders(h http.Header, upAddr string) string {
	var b strings.Builder
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if k == "Date" || k == "Content-Length" {
				continue
			}
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		for _, v := range h[k] {
			v = strings.ReplaceAll(v, upAddr, "UPSTREAM")
			v = strings.ReplaceAll(v, strings.Split(upAddr, ":")[0], "UPSTREAM-HOST")
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.String()
}

// TestStripAndRewriteGolden: through the fast path (GET) and through
// net/http's transport (POST), the answer keeps none of the strip-list's
// headers and names the public host wherever the upstream named itself.
func TestStripAndRewriteGolden(t *testing.T) {
	up := leakyUpstream(t)
	a := newApp(t)
	cfg := baseConfig(t, "", Route{Path: "/", Upstream: up.URL + "/base"},
		Route{Path: "/timing", Upstream: up.URL + "/base", PassHeaders: []string{"Server-Timing", "X-Debug-*"}})
	cfg.StripHeaders = []string{"X-Internal-*"}
	e := startEnv(t, a, cfg, Deps{})
	addr := up.Listener.Addr().String()
	var outs []string
	for _, c := range []struct{ method, path string }{{"GET", "/page"}, {"POST", "/page"}} {
		resp, _, err := e.do(e.client, c.method, "https://app.test"+c.path, "x")
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, dumpHeaders(resp.Header, addr))
	}
	if outs[0] != outs[1] {
		t.Errorf("the fast path and the transport answer differently:\n%s\n---\n%s", outs[0], outs[1])
	}
	golden(t, "strip.golden", outs[0])
	// A route that lets Server-Timing and X-Debug-* through, and only them.
	resp, _ := e.mustGet("https://app.test/timing")
	if resp.Header.Get("Server-Timing") != "db;dur=53" || resp.Header.Get("X-Debug-Token") != "a1b2c3" || resp.Header.Get("Server") != "" || resp.Header.Get("X-Internal-Trace") != "" {
		t.Errorf("pass_headers: %v", resp.Header)
	}
}

// TestRewriteGolden: the rewriter's decisions, one line per input.
func TestRewriteGolden(t *testing.T) {
	rw := newRewriter("http", "127.0.0.1:3000", "/base")
	rw80 := newRewriter("http", "10.0.0.7", "")
	var b strings.Builder
	for _, c := range []struct {
		rw      *rewriter
		header  string
		in      string
		public  string
		tlsConn bool
	}{
		{rw, "Location", "http://127.0.0.1:3000/base/login?next=/", "app.test", true},
		{rw, "Location", "http://127.0.0.1:3000/base", "app.test", true},
		{rw, "Location", "http://127.0.0.1:3000/basement", "app.test", true},
		{rw, "Location", "https://127.0.0.1:3000/x#frag", "app.test:8443", true},
		{rw, "Location", "//127.0.0.1:3000/x", "app.test", true},
		{rw, "Location", "HTTP://127.0.0.1:3000?q=1", "app.test", true},
		{rw, "Location", "http://127.0.0.1:30001/x", "app.test", true},
		{rw, "Location", "http://127.0.0.1:3000@evil.test/x", "app.test", true},
		{rw, "Location", "http://other.test/x", "app.test", true},
		{rw, "Location", "/relative", "app.test", true},
		{rw, "Location", "http://127.0.0.1:3000/x", "app.test", false},
		{rw, "Content-Location", "http://127.0.0.1:3000/base/doc", "app.test", true},
		{rw, "Refresh", "0;URL='http://127.0.0.1:3000/base/x'", "app.test", true},
		{rw, "Refresh", "5", "app.test", true},
		{rw, "Set-Cookie", "s=1; Domain=127.0.0.1; Path=/", "app.test:8443", true},
		{rw, "Set-Cookie", "s=1; domain=.127.0.0.1", "app.test", true},
		{rw, "Set-Cookie", "s=1; Domain=example.net", "app.test", true},
		{rw80, "Location", "http://10.0.0.7/x", "app.test", true},
		{rw80, "Location", "http://10.0.0.7:80/x", "app.test", true},
		{rw80, "Set-Cookie", "s=1; Domain=10.0.0.7", "app.test", true},
	} {
		h := http.Header{c.header: {c.in}}
		c.rw.rewrite(h, c.public, c.tlsConn)
		fmt.Fprintf(&b, "%s %s [%s tls=%v] -> %s\n", c.header, c.in, c.public, c.tlsConn, h.Get(c.header))
	}
	golden(t, "rewrite.golden", b.String())
}

// TestForwardAuthRedirectRewritten: the auth service's redirect naming its
// own address reaches the client naming the public host, without the
// service's software headers.
func TestForwardAuthRedirectRewritten(t *testing.T) {
	var auth *httptest.Server
	auth = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+auth.Listener.Addr().String()+"/login")
		w.Header().Set("Server", "authelia")
		w.Header().Set("X-Upstream", auth.Listener.Addr().String())
		w.WriteHeader(http.StatusFound)
	}))
	defer auth.Close()
	a := newApp(t)
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL, ForwardAuth: &ForwardAuth{URL: auth.URL + "/api/verify"}})
	e := startEnv(t, a, cfg, Deps{})
	resp, _ := e.mustGet("https://app.test/private")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://app.test/login" || resp.Header.Get("Server") != "" || resp.Header.Get("X-Upstream") != "" {
		t.Errorf("%d %v", resp.StatusCode, resp.Header)
	}
}

// TestTraceAndConnectRefused: neither reaches the application; each is
// answered the way the route refuses (the site's 404, or a drop).
func TestTraceAndConnectRefused(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL}, Route{Path: "/admin", Upstream: a.URL, Deny: "drop"})
	e := startEnv(t, a, cfg, Deps{})
	_, notFound := e.mustGet("https://app.test/no-such-page")
	for _, m := range []string{"TRACE", "CONNECT"} {
		raw := m + " /echo HTTP/1.1\r\nHost: app.test\r\nCookie: secret=1\r\n\r\n"
		if m == "CONNECT" {
			raw = "CONNECT app.test:443 HTTP/1.1\r\nHost: app.test\r\n\r\n"
		}
		out, _ := e.rawTLS("app.test", raw)
		rs := readResponses(out)
		if len(rs) != 1 || rs[0].StatusCode != http.StatusNotFound {
			t.Errorf("%s: %q", m, out)
		} else if !strings.Contains(out, strings.TrimSpace(notFound)) {
			t.Errorf("%s: not the site's own 404: %q", m, out)
		}
		out, _ = e.rawTLS("app.test", m+" /admin HTTP/1.1\r\nHost: app.test\r\n\r\n")
		if out != "" {
			t.Errorf("%s on a drop route: %q", m, out)
		}
	}
	for _, r := range a.requests() {
		if r.Method == "TRACE" || r.Method == "CONNECT" {
			t.Errorf("%s reached the application", r.Method)
		}
	}
}

// TestNotFoundProbeFresh: each refusal replays the site's 404 with a path
// never used before.
func TestNotFoundProbeFresh(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL}, Route{Path: "/admin", Upstream: a.URL, Allow: []string{"192.0.2.0/24"}})
	e := startEnv(t, a, cfg, Deps{})
	for range 5 {
		if resp, _ := e.mustGet("https://app.test/admin"); resp.StatusCode != http.StatusNotFound {
			t.Fatal(resp.StatusCode)
		}
	}
	seen := map[string]bool{}
	for _, r := range a.requests() {
		if seen[r.URL.Path] {
			t.Errorf("replay path %s used twice", r.URL.Path)
		}
		seen[r.URL.Path] = true
	}
	if len(seen) != 5 {
		t.Errorf("%d replays reached the app, want 5", len(seen))
	}
}

// TestEarlyHintsStripped: a 103 Early Hints passed on from the upstream
// is cleaned like the final answer.
func TestEarlyHintsStripped(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.Header().Set("Server", "Apache/2.4.62")
		w.Header().Set("X-Upstream", "10.0.0.7:8080")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, up.URL), Deps{})
	var hints []textproto.MIMEHeader
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, h)
			return nil
		},
	})
	for _, method := range []string{"GET", "POST"} { // the fast path, the transport
		hints = nil
		req, _ := http.NewRequestWithContext(ctx, method, "https://app.test/", strings.NewReader("x"))
		if method == "GET" {
			req.Body, req.ContentLength = nil, 0
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, h := range hints {
			if h.Get("Server") != "" || h.Get("X-Upstream") != "" {
				t.Errorf("%s: 1xx carried %v", method, h)
			}
		}
		if method == "POST" && (len(hints) == 0 || hints[0].Get("Link") == "") {
			t.Errorf("POST: no Early Hints passed on (%v): the test proves nothing", hints)
		}
	}
}

// TestTrailersStripped: strip-list headers sent as trailers are removed
// too, through the fast path and through the transport.
func TestTrailersStripped(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "Server-Timing, X-Upstream, X-Checksum")
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("Server-Timing", "db;dur=53")
		w.Header().Set("X-Upstream", "10.0.0.7:8080")
		w.Header().Set("X-Checksum", "abc")
	}))
	defer up.Close()
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, up.URL), Deps{})
	for _, method := range []string{"GET", "POST"} {
		resp, body, err := e.do(e.client, method, "https://app.test/", "x")
		if err != nil || body != "body" {
			t.Fatalf("%s: %v %q", method, err, body)
		}
		if resp.Trailer.Get("Server-Timing") != "" || resp.Trailer.Get("X-Upstream") != "" {
			t.Errorf("%s: trailers %v", method, resp.Trailer)
		}
		if resp.Trailer.Get("X-Checksum") != "abc" {
			t.Errorf("%s: the harmless trailer did not arrive: %v", method, resp.Trailer)
		}
	}
}
