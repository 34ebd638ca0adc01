package gateway

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestProxyForwardsAndCleansUp(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	resp, body := e.mustGet("https://app.test/echo?x=1", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.test", "X-Real-IP", "6.6.6.6", "Forwarded", "for=6.6.6.6")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got appEcho
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "app.test",
		"X-Real-Ip":         "127.0.0.1",
		"Forwarded":         "",
	}
	for k, v := range want {
		if g := strings.Join(got.Header[k], ","); g != v {
			t.Errorf("upstream saw %s = %q, want %q", k, g, v)
		}
	}
	if got.Host != "app.test" || got.Path != "/echo" || got.RawQuery != "x=1" {
		t.Errorf("upstream saw host %q path %q query %q", got.Host, got.Path, got.RawQuery)
	}
	for _, h := range []string{"Server", "X-Powered-By"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("%s leaked to the client: %q", h, v)
		}
	}
	for h, v := range map[string]string{
		"Strict-Transport-Security": defaultHSTS,
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "SAMEORIGIN",
		"Referrer-Policy":           "strict-origin-when-cross-origin",
	} {
		if g := resp.Header.Get(h); g != v {
			t.Errorf("%s = %q, want %q", h, g, v)
		}
	}
}

func TestHTTP2AndHTTP1(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	for _, h2 := range []bool{false, true} {
		resp, _, err := e.do(e.newClient(h2), "GET", "https://app.test/", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
			t.Errorf("h2=%v: got HTTP/%d", h2, resp.ProtoMajor)
		}
		if resp.Header.Get("Server") != "" {
			t.Errorf("Server header over HTTP/%d", resp.ProtoMajor)
		}
	}
}

func TestPortEightyRedirectsKnownHostsOnly(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	resp, _ := e.mustGet("http://app.test/a/b?c=d")
	_, port, _ := net.SplitHostPort(e.g.HTTPSAddr())
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://app.test:"+port+"/a/b?c=d" {
		t.Fatalf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp.Header.Get("Strict-Transport-Security") != "" || resp.Header.Get("Server") != "" {
		t.Errorf("redirect headers: %v", resp.Header)
	}
	out, err := e.rawTCP("GET / HTTP/1.1\r\nHost: unknown.test\r\n\r\n")
	if err != nil || out != "" {
		t.Errorf("unknown Host on :80: got %q, %v; want the connection closed without a byte", out, err)
	}
	out, _ = e.rawTCP("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if out != "" {
		t.Errorf("an address as Host on :80: got %q", out)
	}
	out, _ = e.rawTCP("OPTIONS * HTTP/1.1\r\nHost: unknown.test\r\n\r\n")
	if out != "" {
		t.Errorf("OPTIONS * with an unknown Host: got %q", out)
	}
}

func TestUnknownSNIGetsNoCertificate(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	for _, name := range []string{"other.test", "", "APP.TEST.evil.test"} {
		var peer int
		_, err := tls.Dial("tcp", e.g.HTTPSAddr(), &tls.Config{
			ServerName:         name,
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				peer = len(cs.PeerCertificates)
				return nil
			},
		})
		if err == nil || peer != 0 {
			t.Errorf("SNI %q: handshake err %v, %d certificates seen; want it aborted with none", name, err, peer)
		}
	}
	// The known name works, in any case.
	c, err := tls.Dial("tcp", e.g.HTTPSAddr(), &tls.Config{ServerName: "APP.test", RootCAs: getPKI(t).pool})
	if err != nil {
		t.Fatalf("known SNI: %v", err)
	}
	c.Close()
}

func TestUnknownHostOverTLSIsClosedUnanswered(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	for _, host := range []string{"unknown.test", "127.0.0.1", "app.test.evil.test"} {
		out, err := e.rawTLS("app.test", "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		if err != nil || out != "" {
			t.Errorf("Host %q: got %q, %v; want the connection closed without a byte", host, out, err)
		}
	}
	out, _ := e.rawTLS("app.test", "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Errorf("known Host: %q", out)
	}
}

func TestPlainHTTPOnTLSPortIsClosed(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	c, err := net.Dial("tcp", e.g.HTTPSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, _ := exchange(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if out != "" {
		t.Errorf("plain HTTP on the TLS port got %q; want nothing (net/http would name itself)", out)
	}
}

func TestNoServerHeaderAnywhere(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/down", Upstream: "http://127.0.0.1:1"},
		Route{Path: "/limited", Upstream: a.URL, RateLimit: &RouteRateLimit{Rate: rate(1, time.Hour), Burst: 1}},
	)
	e := startEnv(t, a, cfg, Deps{})
	e.mustGet("https://app.test/limited")
	// Past a known server name, net/http's own answers to malformed
	// requests remain (the client knows the site): asserted by status.
	raws := []struct {
		raw  string
		code int
	}{
		{"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n", 200},
		{"GET /nothing-here HTTP/1.1\r\nHost: app.test\r\n\r\n", 404},
		{"GET /down HTTP/1.1\r\nHost: app.test\r\n\r\n", 502},
		{"GET /limited HTTP/1.1\r\nHost: app.test\r\n\r\n", 429},
		{"GET / HTTP/1.1\r\nHost: app.test\r\nBad Header\r\n\r\n", 400},                             // net/http's 400
		{"GET / HTTP/1.1\r\n\r\n", 400},                                                             // no Host: net/http's 400
		{"GET / HTTP/1.1\r\nHost: app.test\r\nX: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431}, // net/http's 431
		{"GET / HTTP/7.0\r\nHost: app.test\r\n\r\n", 505},
		{"POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	}
	for _, c := range raws {
		raw := strings.Replace(c.raw, "HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n", 1)
		out, _ := e.rawTLS("app.test", raw)
		if !strings.HasPrefix(out, "HTTP/1.1 "+strconv.Itoa(c.code)+" ") {
			t.Errorf("%.40q: got %.60q, want status %d", raw, out, c.code)
			continue
		}
		head, _, _ := strings.Cut(out, "\r\n\r\n")
		low := strings.ToLower(head)
		if strings.Contains(low, "\nserver:") || strings.Contains(low, "go-http") || strings.Contains(low, "apache") || strings.Contains(low, "php") {
			t.Errorf("%.40q: answer names software:\n%s", raw, head)
		}
	}
	// Port 80 answers none of them: see TestPortEightyIsSilentToStrangers.
	if out, err := e.rawTCP("GET / HTTP/1.1\r\nHost: app.test\r\nBad Header\r\n\r\n"); out != "" || err != nil {
		t.Errorf(":80 malformed request: got %q, %v; want closed without a byte", out, err)
	}
}

func TestUpstreamFailureIs502WithoutDetail(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, "http://127.0.0.1:1"), Deps{})
	resp, body := e.mustGet("https://app.test/")
	if resp.StatusCode != 502 || body != "502 Bad Gateway\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestUnixSocketUpstream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("unix " + r.Host + " " + r.URL.Path))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, "unix:"+sock), Deps{})
	_, body := e.mustGet("https://app.test/x")
	if body != "unix app.test /x" {
		t.Fatalf("got %q", body)
	}
}

func TestUpstreamBasePath(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL+"/echo/"), Deps{})
	_, body := e.mustGet("https://app.test/sub/x")
	var got appEcho
	json.Unmarshal([]byte(body), &got)
	if got.Path != "/echo/sub/x" {
		t.Fatalf("upstream path %q", got.Path)
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	c, err := tls.Dial("tcp", e.g.HTTPSAddr(), &tls.Config{ServerName: "app.test", RootCAs: getPKI(t).pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if resp.Header.Get("Server") != "" {
		t.Error("Server header on the 101")
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		io.WriteString(c, msg)
		line, err := br.ReadString('\n')
		if err != nil || line != "echo: "+msg {
			t.Fatalf("echo: %q %v", line, err)
		}
	}
}

func TestWebSocketOffStripsUpgrade(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL, WebSocket: ptr(false)}), Deps{})
	resp, _ := e.mustGet("https://app.test/ws", "Upgrade", "websocket", "Connection", "Upgrade")
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("got %d, want the app to see no upgrade", resp.StatusCode)
	}
}

func TestAccessLogLines(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL, Route{Path: "/", Upstream: a.URL}, Route{Path: "/admin", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}})
	path := filepath.Join(t.TempDir(), "access.log")
	cfg.AccessLog = path
	e := startEnv(t, a, cfg, Deps{})
	e.mustGet("https://app.test/", "User-Agent", "ua \"quoted\" é")
	e.mustGet("https://app.test/admin")
	e.stop()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 { // the 404 probe of the denied request is not a request of its own
		t.Fatalf("%d lines:\n%s", len(lines), data)
	}
	var recs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		recs = append(recs, m)
	}
	if recs[0]["site"] != "app.test" || recs[0]["status"] != float64(200) || recs[0]["ua"] != "ua \"quoted\" é" || recs[0]["client"] != "127.0.0.1" {
		t.Errorf("first line: %v", recs[0])
	}
	if recs[1]["deny"] != "allowlist" || recs[1]["status"] != float64(404) || recs[1]["route"] != "/admin" {
		t.Errorf("second line: %v", recs[1])
	}
}
