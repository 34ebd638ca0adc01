package statuspage_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/statuspage"
	"github.com/moat-sh/moat/internal/vpn"
)

var vpnRange = netip.MustParsePrefix("10.8.0.0/24")

func inVPN(a netip.Addr) bool { return vpnRange.Contains(a) }
func allowVPN(a netip.Addr) bool {
	return a.IsLoopback() || inVPN(a)
}

const vpnTok = "vpn-token-0123456789abcdef"

// vpnServer is a page configured on a VPN address, with the token.
func vpnServer(t *testing.T, listen string, clk *clock) *statuspage.Server {
	t.Helper()
	s, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: listen, Refresh: schema.Duration(30 * time.Second)},
		Token: vpnTok, Source: &fakeSource{data: fixture}, Allow: allowVPN, VPN: inVPN, Now: clk.now, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// req is one request as the server sees it: from a source, over TLS or not.
type req struct {
	from   string
	tls    bool
	target string
	hdr    []string
}

func (q req) do(h http.Handler) *http.Response {
	r := httptest.NewRequest(http.MethodGet, q.target, nil)
	r.Host = "10.8.0.1:9470"
	r.RemoteAddr = q.from + ":40000"
	if q.tls {
		r.TLS = &tls.ConnectionState{}
	}
	for i := 0; i+1 < len(q.hdr); i += 2 {
		r.Header.Set(q.hdr[i], q.hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func login(t *testing.T, h http.Handler, from string, overTLS bool) *http.Cookie {
	t.Helper()
	r := req{from: from, tls: overTLS, target: "/?token=" + vpnTok}.do(h)
	if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) != 1 {
		t.Fatalf("login from %s (tls %v): %d, cookies %v", from, overTLS, r.StatusCode, r.Cookies())
	}
	return r.Cookies()[0]
}

func cookieHdr(c *http.Cookie) []string { return []string{"Cookie", c.Name + "=" + c.Value} }

// Over plain http between two VPN addresses the cookie is not Secure (a
// browser would drop it) but HttpOnly, SameSite=Strict, host-only, for
// Path=/ and 12 hours; over TLS it is Secure with the __Host- prefix.
func TestCookieAttributes(t *testing.T) {
	clk := newClock(t0)
	h := vpnServer(t, "10.8.0.1:9470", clk).Handler()
	for _, c := range []struct {
		name       string
		from       string
		tls        bool
		cookieName string
		secure     bool
		maxAge     int
	}{
		{"plain http from a VPN peer", "10.8.0.2", false, "moat_status", false, 12 * 3600},
		{"https from a VPN peer", "10.8.0.2", true, "__Host-moat_status", true, 30 * 24 * 3600},
		{"plain http from loopback", "127.0.0.1", false, "moat_status", true, 30 * 24 * 3600},
	} {
		ck := login(t, h, c.from, c.tls)
		if ck.Name != c.cookieName || ck.Secure != c.secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode ||
			ck.Path != "/" || ck.Domain != "" || ck.MaxAge != c.maxAge || strings.Contains(ck.Value, vpnTok) {
			t.Errorf("%s: cookie %s; want %s, Secure %v, HttpOnly, Strict, Path=/, no Domain, Max-Age %d, not the token",
				c.name, ck, c.cookieName, c.secure, c.maxAge)
		}
		if r := (req{from: c.from, tls: c.tls, target: "/", hdr: cookieHdr(ck)}).do(h); r.StatusCode != 200 {
			t.Errorf("%s: with its cookie %d", c.name, r.StatusCode)
		}
	}
}

// A cookie is worth something only where it was issued: same scheme,
// same listener, and for one without Secure, a VPN source. Every replay
// elsewhere is a 401.
func TestCookieReplayRefused(t *testing.T) {
	clk := newClock(t0)
	h := vpnServer(t, "10.8.0.1:9470", clk).Handler()
	other := vpnServer(t, "10.8.0.1:9471", clk).Handler() // another listener, the same token
	httpC := login(t, h, "10.8.0.2", false)
	tlsC := login(t, h, "10.8.0.2", true)
	for _, c := range []struct {
		name string
		h    http.Handler
		q    req
	}{
		{"http cookie over https", h, req{from: "10.8.0.2", tls: true, hdr: cookieHdr(httpC)}},
		{"http cookie over https, renamed __Host-", h, req{from: "10.8.0.2", tls: true,
			hdr: []string{"Cookie", "__Host-moat_status=" + httpC.Value}}},
		{"https cookie over plain http", h, req{from: "10.8.0.2", hdr: []string{"Cookie", "moat_status=" + tlsC.Value}}},
		{"http cookie on another listener", other, req{from: "10.8.0.2", hdr: cookieHdr(httpC)}},
		{"https cookie on another listener", other, req{from: "10.8.0.2", tls: true, hdr: cookieHdr(tlsC)}},
		// The non-Secure cookie over http from a source outside the VPN
		// (here loopback: the only other source the listener admits).
		{"http cookie from outside the VPN", h, req{from: "127.0.0.1", hdr: cookieHdr(httpC)}},
		{"http cookie from a public source", h, req{from: "198.51.100.2", hdr: cookieHdr(httpC)}},
		{"http cookie, expiry moved", h, req{from: "10.8.0.2", hdr: []string{"Cookie", "moat_status=9" + httpC.Value}}},
	} {
		c.q.target = "/api/status"
		if r := c.q.do(c.h); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", c.name, r.StatusCode)
		}
	}
	// The server, not the browser, ends a cookie's life.
	clk.add(12*time.Hour + time.Second)
	if r := (req{from: "10.8.0.2", target: "/", hdr: cookieHdr(httpC)}).do(h); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a 12-hour cookie after 12 hours: %d", r.StatusCode)
	}
	if r := (req{from: "10.8.0.2", tls: true, target: "/", hdr: cookieHdr(tlsC)}).do(h); r.StatusCode != 200 {
		t.Errorf("the https cookie after 12 hours: %d", r.StatusCode)
	}
}

// Login CSRF: a login link another site makes the browser follow is
// refused, even with the right token, and sets no cookie; a wrong token
// leaves the browser's cookie alone.
func TestLoginFromAnotherSiteRefused(t *testing.T) {
	h := vpnServer(t, "10.8.0.1:9470", newClock(t0)).Handler()
	for _, site := range []string{"cross-site", "same-site"} {
		r := req{from: "10.8.0.2", tls: true, target: "/?token=" + vpnTok, hdr: []string{"Sec-Fetch-Site", site}}.do(h)
		if r.StatusCode != http.StatusForbidden || len(r.Cookies()) != 0 {
			t.Errorf("Sec-Fetch-Site %s: %d, cookies %v; want 403 and none", site, r.StatusCode, r.Cookies())
		}
	}
	for _, site := range []string{"none", "same-origin", ""} {
		r := req{from: "10.8.0.2", tls: true, target: "/?token=" + vpnTok, hdr: []string{"Sec-Fetch-Site", site}}.do(h)
		if r.StatusCode != http.StatusSeeOther {
			t.Errorf("Sec-Fetch-Site %q: %d, want 303", site, r.StatusCode)
		}
	}
	r := req{from: "10.8.0.2", target: "/?token=wrong-token-0123456789"}.do(h)
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("Set-Cookie") != "" {
		t.Errorf("a wrong token: %d, Set-Cookie %q; want 401 and the cookie untouched", r.StatusCode, r.Header.Get("Set-Cookie"))
	}
}

// logBuffer is a slog handler's output, safe for the server's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// running is a page served by Run on a real socket, logging at Debug.
type running struct {
	s    *statuspage.Server
	log  *logBuffer
	stop func()
}

func runPage(t *testing.T, listen, token string, cert *statuspage.Cert) *running {
	t.Helper()
	lb := &logBuffer{}
	s, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: listen}, Token: token, Cert: cert,
		Source: &fakeSource{data: fixture}, Allow: allowVPN, VPN: inVPN,
		Log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	r := &running{s: s, log: lb, stop: func() { once.Do(func() { cancel(); <-done }) }}
	t.Cleanup(r.stop)
	waitFor(t, "the page to listen", func() bool { return s.Listening() != "" })
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// conn is one kept-alive client connection, requests written by hand.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string, tlsConf *tls.Config) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		c = tls.Client(c, tlsConf)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{c: c, br: bufio.NewReader(c)}
}

// get sends one request; status 0 means the connection failed or closed.
func (c *conn) get(target string, hdr ...string) int {
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", target)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	if _, err := c.c.Write([]byte(b.String())); err != nil {
		return 0
	}
	r, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0
	}
	defer r.Body.Close()
	var sink bytes.Buffer
	sink.ReadFrom(r.Body)
	return r.StatusCode
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// The token never reaches the logs: not from ?token= (right or wrong), a
// Bearer header, or a refused cookie; and the redirect that sets the
// cookie names no token and sends no Referer.
func TestTokenNeverLogged(t *testing.T) {
	p := runPage(t, freeAddr(t, "127.0.0.1"), vpnTok, nil)
	for _, q := range []struct {
		target string
		hdr    []string
	}{
		{"/?token=" + vpnTok, nil},
		{"/?token=" + vpnTok + "x", nil},
		{"/api/status", bearer(vpnTok + "x")},
		{"/", []string{"Cookie", "moat_status=" + vpnTok}},
		{"/%zz?token=" + vpnTok, nil},
	} {
		dial(t, p.s.Listening(), nil).get(q.target, q.hdr...)
	}
	resp := req{from: "127.0.0.1", target: "/x?token=" + vpnTok}.do(p.s.Handler())
	if loc := resp.Header.Get("Location"); loc != "/x" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("redirect to %q with Referrer-Policy %q; want /x and no-referrer", loc, resp.Header.Get("Referrer-Policy"))
	}
	p.stop()
	if l := p.log.String(); strings.Contains(l, vpnTok) || l == "" {
		t.Errorf("the log holds the token (or nothing at all):\n%s", l)
	}
}

// A reload that rotates the token: from the instant commit returns, the
// old token is refused on a connection kept alive from before, and the
// old cookie with it.
func TestReloadRevokesTokenAtOnce(t *testing.T) {
	addr := freeAddr(t, "127.0.0.1")
	p := runPage(t, addr, vpnTok, nil)
	c := dial(t, addr, nil)
	if s := c.get("/api/status", bearer(vpnTok)...); s != 200 {
		t.Fatalf("before the reload: %d", s)
	}
	ck := login(t, p.s.Handler(), "127.0.0.1", false)
	const newTok = "rotated-token-0123456789abcdef"
	commit, _, err := p.s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: addr}, Token: newTok})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.get("/api/status", bearer(vpnTok)...); s != 200 {
		t.Fatalf("prepared, not committed: the old token must still work, got %d", s)
	}
	commit()
	for _, h := range [][]string{bearer(vpnTok), cookieHdr(ck)} {
		if s := c.get("/api/status", h...); s == 200 {
			t.Fatalf("after the reload the old %s still works", h[0])
		}
	}
	if s := dial(t, addr, nil).get("/api/status", bearer(newTok)...); s != 200 {
		t.Errorf("the new token: %d", s)
	}
}

// A reload that moves the page: the new address is bound before anything
// changes (an address that cannot be bound refuses the reload, and the
// page goes on as it was); after commit the old address is closed and a
// connection kept alive on it is cut.
func TestReloadMovesListener(t *testing.T) {
	a1 := freeAddr(t, "127.0.0.1")
	p := runPage(t, a1, vpnTok, nil)
	old := dial(t, a1, nil)
	if s := old.get("/api/status", bearer(vpnTok)...); s != 200 {
		t.Fatalf("before: %d", s)
	}
	// Taken: refused, nothing changes.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, _, err := p.s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: taken.Addr().String()}, Token: "another-token-0123456789"}); err == nil {
		t.Fatal("a reload onto a taken address was accepted")
	}
	if s := old.get("/api/status", bearer(vpnTok)...); s != 200 {
		t.Fatalf("after a refused reload the page changed: %d", s)
	}
	// Prepared then aborted (a later part of the reload failed): the
	// new address is let go.
	a2 := freeAddr(t, "127.0.0.2")
	_, abort, err := p.s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: a2}, Token: vpnTok})
	if err != nil {
		t.Fatal(err)
	}
	abort()
	if c, err := net.Dial("tcp", a2); err == nil {
		c.Close()
		t.Fatal("an aborted reload left its listener open")
	}
	commit, _, err := p.s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: a2}, Token: vpnTok})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	waitFor(t, "the page on "+a2, func() bool { return p.s.Listening() == a2 })
	if s := old.get("/api/status", bearer(vpnTok)...); s != 0 {
		t.Errorf("a connection on the old address still served: %d", s)
	}
	if c, err := net.Dial("tcp", a1); err == nil {
		c.Close()
		t.Error("the old address still accepts")
	}
	if s := dial(t, a2, nil).get("/api/status", bearer(vpnTok)...); s != 200 {
		t.Errorf("the new address: %d", s)
	}
}

// TLS turned on by a reload, on the same address: connections accepted
// as plain http are closed; new ones are TLS with the self-signed
// certificate moat made, whose fingerprint is what the pin expects; plain
// http gets no page. Turned off again, plain http serves.
func TestReloadTurnsTLSOn(t *testing.T) {
	addr := freeAddr(t, "127.0.0.1")
	p := runPage(t, addr, vpnTok, nil)
	plain := dial(t, addr, nil)
	if s := plain.get("/api/status", bearer(vpnTok)...); s != 200 {
		t.Fatalf("before: %d", s)
	}
	state := t.TempDir()
	cert, made, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, addr, state, time.Now())
	if err != nil || !made {
		t.Fatalf("self-signed: made %v, %v", made, err)
	}
	for _, f := range []string{statuspage.SelfSignedCert, statuspage.SelfSignedKey} {
		if fi, err := os.Stat(filepath.Join(state, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	// Made once: loaded again, the same certificate.
	again, made, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, addr, state, time.Now())
	if err != nil || made || again.Fingerprint != cert.Fingerprint {
		t.Fatalf("loaded again: made %v, %v, fingerprint %s then %s", made, err, cert.Fingerprint, again.Fingerprint)
	}
	commit, _, err := p.s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: addr, TLS: &statuspage.TLS{SelfSigned: true}},
		Token: vpnTok, Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	if s := plain.get("/api/status", bearer(vpnTok)...); s != 0 {
		t.Errorf("a plain http connection from before TLS still served: %d", s)
	}
	if s := dial(t, addr, nil).get("/api/status", bearer(vpnTok)...); s == 200 {
		t.Error("plain http served after TLS turned on")
	}
	// Pinned: any certificate but the one moat reports is refused.
	pinned := &tls.Config{InsecureSkipVerify: true, VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
		if statuspage.Fingerprint(raw[0]) != cert.Fingerprint {
			return errors.New("not the pinned certificate")
		}
		return nil
	}}
	if s := dial(t, addr, pinned).get("/api/status", bearer(vpnTok)...); s != 200 {
		t.Errorf("https with the pinned certificate: %d", s)
	}
	// A client that verifies (no pin, no CA) refuses it: the page does
	// not pretend to be publicly trusted.
	if s := dial(t, addr, &tls.Config{ServerName: "127.0.0.1"}).get("/api/status", bearer(vpnTok)...); s != 0 {
		t.Errorf("a verifying client accepted the self-signed certificate: %d", s)
	}
	commit, _, err = p.s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: addr}, Token: vpnTok})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	if s := dial(t, addr, nil).get("/api/status", bearer(vpnTok)...); s != 200 {
		t.Errorf("plain http after TLS turned off: %d", s)
	}
}

// The self-signed certificate is made again when the listen address is
// not in it, and a key readable by others is refused.
func TestSelfSignedCert(t *testing.T) {
	state := t.TempDir()
	a, _, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, "10.8.0.1:9470", state, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, made, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, "10.8.0.9:9470", state, time.Now())
	if err != nil || !made || b.Fingerprint == a.Fingerprint {
		t.Errorf("a new address: made %v, %v", made, err)
	}
	c, made, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, "10.8.0.9:9470", state, time.Now().Add(5*365*24*time.Hour))
	if err != nil || !made || c.Fingerprint == b.Fingerprint {
		t.Errorf("near its end: made %v, %v", made, err)
	}
	if len(c.Fingerprint) != 95 || len(c.SPKI) != 44 {
		t.Errorf("fingerprint %q, spki %q", c.Fingerprint, c.SPKI)
	}
	os.Chmod(filepath.Join(state, statuspage.SelfSignedKey), 0o644)
	_, _, err = statuspage.LoadCert(&statuspage.TLS{CertFile: filepath.Join(state, statuspage.SelfSignedCert),
		KeyFile: filepath.Join(state, statuspage.SelfSignedKey)}, "10.8.0.9:9470", state, time.Now())
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key readable by others: %v", err)
	}
}

func TestValidateTLS(t *testing.T) {
	bad := map[string]*statuspage.TLS{
		"empty":      {},
		"both":       {SelfSigned: true, CertFile: "/a", KeyFile: "/b"},
		"cert alone": {CertFile: "/a"},
		"relative":   {CertFile: "a.crt", KeyFile: "/b"},
	}
	for name, c := range bad {
		if err := (statuspage.Config{Listen: "127.0.0.1:9470", TLS: c}).Validate(vpn.Default()); err == nil {
			t.Errorf("tls %s accepted", name)
		}
	}
	for _, c := range []*statuspage.TLS{{SelfSigned: true}, {CertFile: "/a", KeyFile: "/b"}} {
		if err := (statuspage.Config{Listen: "127.0.0.1:9470", TLS: c}).Validate(vpn.Default()); err != nil {
			t.Errorf("tls %+v: %v", c, err)
		}
	}
}

// Plain http from a source outside the VPN (were one let through) logs
// in with a Secure cookie only: a browser would not keep it over http.
func TestPublicSourceGetsSecureCookie(t *testing.T) {
	h := vpnServer(t, "10.8.0.1:9470", newClock(t0)).Handler()
	if c := login(t, h, "198.51.100.2", false); !c.Secure {
		t.Errorf("a public source over plain http got %s", c)
	}
}

// Over TLS the page answers to its certificate's DNS names (a
// `tailscale cert` name); over plain http, and for other names, not.
func TestTLSNames(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "ts.crt"), filepath.Join(dir, "ts.key")
	writeCert(t, certPath, keyPath, "vps.tail1234.ts.net")
	cert, _, err := statuspage.LoadCert(&statuspage.TLS{CertFile: certPath, KeyFile: keyPath}, "100.64.0.1:9470", dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: "100.64.0.1:9470"}, Cert: cert,
		Source: &fakeSource{data: fixture}, Allow: allowAll, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host string
		tls  bool
		want int
	}{
		{"vps.tail1234.ts.net:9470", true, 200},
		{"VPS.tail1234.ts.net", true, 200},
		{"vps.tail1234.ts.net:9470", false, http.StatusMisdirectedRequest},
		{"evil.example:9470", true, http.StatusMisdirectedRequest},
		{"100.64.0.1:9470", true, 200},
	} {
		r := httptest.NewRequest(http.MethodGet, "/api/status", nil)
		r.Host = c.host
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("Host %s (tls %v): %d, want %d", c.host, c.tls, w.Code, c.want)
		}
	}
}

func writeCert(t *testing.T, certPath, keyPath, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

// A reload while Run still waits for its address (the VPN not up yet):
// Run follows the new address.
func TestReloadWhileWaitingForAddress(t *testing.T) {
	// 10.8.0.1 is on no interface of the test's host: listen fails.
	s, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: "10.8.0.1:9470"}, Token: vpnTok,
		Source: &fakeSource{data: fixture}, Allow: allowVPN, VPN: inVPN, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if ln, err := net.Listen("tcp", "10.8.0.1:9470"); err == nil {
		ln.Close()
		t.Skip("10.8.0.1 is an address of this host")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	a := freeAddr(t, "127.0.0.1")
	commit, _, err := s.Prepare(statuspage.Update{Config: statuspage.Config{Listen: a}, Token: vpnTok})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	waitFor(t, "the page on "+a, func() bool { return s.Listening() == a })
}

// A renewal replaces the certificate while TLS is on, and never turns
// TLS on.
func TestRenewed(t *testing.T) {
	a, _, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, "127.0.0.1:9470", t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := statuspage.LoadCert(&statuspage.TLS{SelfSigned: true}, "127.0.0.1:9470", t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	on, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: "127.0.0.1:9470"}, Cert: a,
		Source: &fakeSource{data: fixture}, Allow: allowAll})
	if err != nil {
		t.Fatal(err)
	}
	on.Renewed(b)
	if on.Cert() != b {
		t.Error("the renewal did not take")
	}
	off, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: "127.0.0.1:9470"},
		Source: &fakeSource{data: fixture}, Allow: allowAll})
	if err != nil {
		t.Fatal(err)
	}
	off.Renewed(b)
	if off.Cert() != nil {
		t.Error("a renewal turned TLS on")
	}
}

// moat.yaml's tls block parses, and an empty one is refused with its
// line.
func TestConfigTLS(t *testing.T) {
	base := "vpn:\n  ranges: [10.8.0.0/24]\nstatus_page:\n  listen: 10.8.0.1:9470\n  tls:\n"
	for _, good := range []string{"    self_signed: true\n", "    tailscale: true\n", "    cert_file: /a.crt\n    key_file: /a.key\n"} {
		c, err := config.Parse("moat.yaml", []byte(base+good))
		if err != nil || c.StatusPage.TLS == nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	_, err := config.Parse("moat.yaml", []byte(base+"    self_signed: false\n"))
	if err == nil || !strings.Contains(err.Error(), "status_page.tls") {
		t.Errorf("an empty tls block: %v", err)
	}
}
