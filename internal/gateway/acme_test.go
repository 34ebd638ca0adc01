package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// loopbackDNS answers every A query with 127.0.0.1 (and AAAA with
// nothing), so Pebble's validation authority finds the gateway. Pebble
// asks over TCP.
func loopbackDNS(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// pebbleCA is Pebble's WFE, CA and VA in this process. Its directory is
// served before the VA exists, because the VA needs the gateway's ports and
// the gateway needs the directory's URL.
type pebbleCA struct {
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	db      *db.MemoryStore
	ca      *ca.CAImpl
	rootPEM string // the directory's TLS certificate, for acme.ca_root
	logger  *log.Logger
}

func startPebble(t *testing.T, validity time.Duration) *pebbleCA {
	p := &pebbleCA{db: db.NewMemoryStore(), logger: log.New(io.Discard, "", 0)}
	if testing.Verbose() {
		p.logger = log.New(os.Stderr, "pebble ", log.Ltime)
	}
	p.ca = ca.New(p.logger, p.db, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "short-lived, to see renewals", ValidityPeriod: uint64(validity.Seconds())},
	})
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := p.handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.rootPEM = filepath.Join(t.TempDir(), "directory-root.pem")
	os.WriteFile(p.rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw}), 0o600)
	return p
}

// validate starts the VA against the gateway's ports.
func (p *pebbleCA) validate(t *testing.T, httpPort, tlsPort int) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	v := va.New(p.logger, httpPort, tlsPort, false, loopbackDNS(t), p.db)
	w := wfe.New(p.logger, p.db, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	h := w.Handler()
	p.handler.Store(&h)
}

func (p *pebbleCA) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

func (p *pebbleCA) directory() string { return p.srv.URL + wfe.DirectoryPath }

func TestACMEObtainAndRenewHTTP01(t *testing.T) { testACME(t, ChallengeHTTP01) }

func TestACMEObtainAndRenewTLSALPN01(t *testing.T) { testACME(t, ChallengeTLSALPN01) }

func testACME(t *testing.T, challenge string) {
	if testing.Short() {
		t.Skip("ACME end to end")
	}
	old := renewCheckInterval
	renewCheckInterval = time.Second
	t.Cleanup(func() { renewCheckInterval = old })

	const validity = 30 * time.Second
	p := startPebble(t, validity)
	a := newApp(t)
	cfg := Config{
		HTTP:  "127.0.0.1:0",
		HTTPS: "127.0.0.1:0",
		ACME: ACMEConfig{
			CA:         p.directory(),
			CARoot:     p.rootPEM,
			Email:      "ops@app.test",
			Storage:    t.TempDir(),
			Challenges: []string{challenge}, // the other one is off: success proves this one
		},
		Sites: []Site{{Host: "app.test", Routes: []Route{{Upstream: a.URL}}}},
	}
	cfg.Defaults()
	fails := newFailures()
	logs := newRecordLog()
	if testing.Verbose() {
		logs.next = slog.NewTextHandler(os.Stderr, nil)
	}
	deps := Deps{Failures: fails, Log: slog.New(logs)}
	g, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	p.validate(t, g.http.port(), g.https.port())
	e := &env{t: t, g: g, app: a, fails: fails}
	runEnv(t, e)

	// The certificate arrives.
	roots := p.roots()
	first := waitForCert(t, g.HTTPSAddr(), roots, nil, 60*time.Second)
	t.Logf("%s: obtained serial %x, valid %v to %v", challenge, first.SerialNumber, first.NotBefore.Format(time.TimeOnly), first.NotAfter.Format(time.TimeOnly))
	// A real client gets through with it.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, g.HTTPSAddr())
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://app.test/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET over the ACME certificate: %v %v", resp, err)
	}
	resp.Body.Close()

	// And is renewed before it expires.
	// A renewal attempt that fails on a loaded machine is retried by
	// certmagic about a minute later: allow for one retry.
	second := waitForCert(t, g.HTTPSAddr(), roots, first, validity+100*time.Second)
	t.Logf("%s: renewed, serial %x, valid %v to %v", challenge, second.SerialNumber, second.NotBefore.Format(time.TimeOnly), second.NotAfter.Format(time.TimeOnly))
	// A new certificate (waitForCert waits for another serial) that ends no
	// earlier; issued within the same second, it may end at the same second.
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 || second.NotAfter.Before(first.NotAfter) {
		t.Errorf("the renewed certificate (serial %x) expires %v, before the first's %v", second.SerialNumber, second.NotAfter, first.NotAfter)
	}
	// A reload that changes the account makes a new certificate manager;
	// the certificate in storage is served on, without a gap. (Its next
	// renewal, under the new account, is refused once by the CA because
	// it names the old account's certificate as replaced; certmagic's
	// retry a minute later leaves that out. Too slow for this test.)
	if challenge == ChallengeHTTP01 {
		c2 := cfg
		c2.ACME.Email = "other@app.test"
		if err := g.Reload(c2); err != nil {
			t.Fatal(err)
		}
		c, err := tls.Dial("tcp", g.HTTPSAddr(), &tls.Config{ServerName: "app.test", RootCAs: roots})
		if err != nil {
			t.Fatalf("right after an ACME reload: %v", err)
		}
		c.Close()
	}

	if len(fails.ch) != 0 {
		t.Errorf("ACME traffic reported as failures")
	}
	if !logs.saw("got renewal info") {
		t.Error("certmagic never fetched ACME Renewal Info")
	}
}

// recordLog remembers log messages (and passes them on when verbose).
type recordLog struct {
	next slog.Handler
	msgs *sync.Map
}

func newRecordLog() *recordLog { return &recordLog{msgs: new(sync.Map)} }

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *recordLog) Handle(ctx context.Context, r slog.Record) error {
	l.msgs.Store(r.Message, true)
	if l.next != nil {
		return l.next.Handle(ctx, r)
	}
	return nil
}

func (l *recordLog) WithAttrs(as []slog.Attr) slog.Handler {
	if l.next == nil {
		return l
	}
	return &recordLog{next: l.next.WithAttrs(as), msgs: l.msgs}
}

func (l *recordLog) WithGroup(string) slog.Handler { return l }

func (l *recordLog) saw(msg string) bool {
	_, ok := l.msgs.Load(msg)
	return ok
}

// waitForCert handshakes until the gateway presents a certificate for
// app.test that verifies against roots and differs from prev.
func waitForCert(t *testing.T, addr string, roots *x509.CertPool, prev *x509.Certificate, within time.Duration) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(within)
	var lastErr error
	for time.Now().Before(deadline) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "app.test", RootCAs: roots})
		if err == nil {
			leaf := c.ConnectionState().PeerCertificates[0]
			c.Close()
			if prev == nil || leaf.SerialNumber.Cmp(prev.SerialNumber) != 0 {
				return leaf
			}
		} else {
			lastErr = err
		}
		time.Sleep(250 * time.Millisecond)
	}
	if prev != nil {
		t.Fatalf("no renewal within %v", within)
	}
	t.Fatalf("no certificate within %v: %v", within, lastErr)
	return nil
}
