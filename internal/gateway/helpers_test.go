package gateway

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moat-sh/moat/internal/schema"
)

// testPKI is a throwaway CA and leaf certificates signed by it.
type testPKI struct {
	pool   *x509.CertPool
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	dir    string
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

// getPKI returns the package's test CA, made once per test binary.
func getPKI(t testing.TB) *testPKI {
	pkiOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "moat test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		c, _ := x509.ParseCertificate(der)
		dir, err := os.MkdirTemp("", "moat-gateway-pki-")
		if err != nil {
			panic(err)
		}
		pki = &testPKI{pool: x509.NewCertPool(), caCert: c, caKey: key, dir: dir}
		pki.pool.AddCert(c)
	})
	return pki
}

// leaf writes a certificate for names and returns its cert and key paths.
func (p *testPKI) leaf(t testing.TB, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// app is a test upstream shaped like a real application: pages, its own
// 404 page, and version-leaking headers the gateway must remove.
type app struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

// appEcho is what the app answers on /echo: the request as it saw it.
type appEcho struct {
	Method, Host, Path, RawQuery string
	Header                       http.Header
	Body                         string
}

func newApp(t testing.TB) *app {
	a := &app{}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r)
	a.mu.Unlock()
	w.Header().Set("Server", "Apache/2.4.62 (Debian)")
	w.Header().Set("X-Powered-By", "PHP/8.2.7")
	switch {
	case r.URL.Path == "/" || r.URL.Path == "/admin" || r.URL.Path == "/admin/" || strings.HasPrefix(r.URL.Path, "/api/"):
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<h1>page %s</h1>", r.URL.Path)
	case r.URL.Path == "/echo" || strings.HasPrefix(r.URL.Path, "/echo/"):
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(appEcho{r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header, string(body)})
	case r.URL.Path == "/slow":
		time.Sleep(500 * time.Millisecond)
		io.WriteString(w, "slow")
	case r.URL.Path == "/ws":
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		// Echo lines until the client closes.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo: " + line)
			brw.Flush()
		}
	default:
		// The application's own 404 page, with its own headers.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-App-Request-Id", "fixed")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<html><body><h1>Oops, nothing here</h1></body></html>\n")
	}
}

func (a *app) requests() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*http.Request(nil), a.seen...)
}

// failures collects reported failures.
type failures struct {
	ch chan Failure
}

func newFailures() *failures { return &failures{ch: make(chan Failure, 1024)} }

func (f *failures) Report(x Failure) {
	select {
	case f.ch <- x:
	default:
	}
}

// next waits for a failure for up to d.
func (f *failures) next(d time.Duration) (Failure, bool) {
	select {
	case x := <-f.ch:
		return x, true
	case <-time.After(d):
		return Failure{}, false
	}
}

type banSet map[netip.Addr]bool

func (b banSet) Contains(a netip.Addr) bool { return b[a] }

type fakeGeo map[netip.Addr]string

func (g fakeGeo) Country(a netip.Addr) (string, bool) {
	c, ok := g[a]
	return c, ok
}

// env is a running gateway with one static-certificate site and helpers.
type env struct {
	t      testing.TB
	g      *Gateway
	app    *app
	fails  *failures
	reg    *prometheus.Registry
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// baseConfig is a gateway on loopback with app.test proxied to up.
func baseConfig(t testing.TB, up string, routes ...Route) Config {
	p := getPKI(t)
	cert, key := p.leaf(t, "app.test", "other-site.test")
	if len(routes) == 0 {
		routes = []Route{{Path: "/", Upstream: up}}
	}
	return Config{
		HTTP:  "127.0.0.1:0",
		HTTPS: "127.0.0.1:0",
		ACME:  ACMEConfig{Storage: t.TempDir()},
		Sites: []Site{{Host: "app.test", Certificate: cert, Key: key, Routes: routes}},
	}
}

// startEnv starts a gateway for cfg. deps.Failures and deps.Metrics are
// filled when empty.
func startEnv(t testing.TB, a *app, cfg Config, deps Deps) *env {
	t.Helper()
	e := &env{t: t, app: a, fails: newFailures(), reg: prometheus.NewRegistry()}
	if deps.Failures == nil {
		deps.Failures = e.fails
	}
	if deps.Metrics == nil {
		deps.Metrics = e.reg
	}
	if deps.Log == nil && testing.Verbose() {
		deps.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	g, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.g = g
	runEnv(t, e)
	e.client = e.newClient(false)
	return e
}

// runEnv runs e.g until the test ends and waits for it to accept.
func runEnv(t testing.TB, e *env) {
	g := e.g
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- g.Run(ctx) }()
	t.Cleanup(e.stop)
	deadline := time.Now().Add(30 * time.Second) // liveness, not speed
	for {
		c, err := net.Dial("tcp", g.HTTPSAddr())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway does not accept")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(15 * time.Second):
		e.t.Error("gateway did not stop")
	}
	e.cancel = nil
}

// newClient returns a client that reaches every host at the gateway,
// trusting the test CA.
func (e *env) newClient(h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: getPKI(e.t).pool},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			target := e.g.HTTPSAddr()
			if strings.HasSuffix(addr, ":80") {
				target = e.g.HTTPAddr()
			}
			return (&net.Dialer{}).DialContext(ctx, network, target)
		},
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       liveness, // a bound against hangs, not a speed requirement
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get fetches url with optional header pairs and returns status, headers
// and body.
func (e *env) get(url string, hdr ...string) (*http.Response, string, error) {
	return e.do(e.client, "GET", url, "", hdr...)
}

func (e *env) do(c *http.Client, method, url, body string, hdr ...string) (*http.Response, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, "", err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// mustGet is get that fails the test on a transport error.
func (e *env) mustGet(url string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	resp, body, err := e.get(url, hdr...)
	if err != nil {
		e.t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

// rawTLS opens a TLS connection to the gateway with serverName, sends raw
// and returns everything read until the connection closes or 3 s pass.
func (e *env) rawTLS(serverName, raw string) (string, error) {
	c, err := tls.Dial("tcp", e.g.HTTPSAddr(), &tls.Config{ServerName: serverName, RootCAs: getPKI(e.t).pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return exchange(c, raw)
}

// rawTCP is rawTLS for the plain HTTP port.
func (e *env) rawTCP(raw string) (string, error) {
	c, err := net.Dial("tcp", e.g.HTTPAddr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	return exchange(c, raw)
}

func exchange(c net.Conn, raw string) (string, error) {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return "", err
	}
	var b strings.Builder
	_, err := io.Copy(&b, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return b.String(), err
	}
	return b.String(), nil
}

// readResponses parses every HTTP response in s.
func readResponses(s string) []*http.Response {
	var out []*http.Response
	br := bufio.NewReader(strings.NewReader(s))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		io.ReadAll(resp.Body)
		out = append(out, resp)
	}
}

// strictSkip skips, or fails under MOAT_TEST_STRICT=1.
func strictSkip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("MOAT_TEST_STRICT") == "1" {
		t.Fatalf("%s (MOAT_TEST_STRICT=1: not skipping)", reason)
	}
	t.Skip(reason)
}

func ptr[T any](v T) *T { return &v }

func rate(n int, per time.Duration) schema.Rate { return schema.Rate{N: n, Per: per} }

// tlsClient wraps c in a TLS client for app.test.
func tlsClient(t testing.TB, c net.Conn) *tls.Conn {
	tc := tls.Client(c, &tls.Config{ServerName: "app.test", RootCAs: getPKI(t).pool, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

// pemCA is the test CA's certificate in PEM, for curl.
func pemCA(t testing.TB) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: getPKI(t).caCert.Raw})
}
