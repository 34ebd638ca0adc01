package probe

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/finding"
)

// serveHTTP runs a real HTTP server on loopback until the test ends.
func serveHTTP(t *testing.T, h http.Handler) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

func missing(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(404)
	io.WriteString(w, "<html>not found</html>")
}

// TestProtectedRouteDistinguishable: the ways a denied route betrays
// itself to a stranger — a 403, a 404 of another length, an extra header,
// a closed connection — are each a finding; a denial that is the missing
// path's answer byte for byte is not. Timing is never part of the verdict.
func TestProtectedRouteDistinguishable(t *testing.T) {
	cases := []struct {
		name   string
		deny   func(w http.ResponseWriter)
		fails  bool
		reason string
	}{
		{"same-as-missing", missing, false, ""},
		{"forbidden", func(w http.ResponseWriter) { w.WriteHeader(403); io.WriteString(w, "<html>not found</html>") }, true, "status 403"},
		{"other-length", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(404)
			io.WriteString(w, "<html>denied</html>")
		}, true, "body"},
		{"extra-header", func(w http.ResponseWriter) {
			w.Header().Set("Www-Authenticate", `Basic realm="admin"`)
			missing(w)
		}, true, "headers"},
		{"slow-but-same", func(w http.ResponseWriter) { time.Sleep(30 * time.Millisecond); missing(w) }, false, ""},
		{"drop", func(w http.ResponseWriter) {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		}, true, "no answer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ap := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				host, _, _ := strings.Cut(r.Host, ":")
				switch {
				case host != "app.test":
					w.WriteHeader(421)
				case r.URL.Path == "/":
					io.WriteString(w, "app")
				case strings.HasPrefix(r.URL.Path, "/internal"):
					c.deny(w)
				default:
					missing(w)
				}
			}))
			p := &Prober{Names: []string{"app.test"}, Routes: []Route{{Site: "app.test", Path: "/internal", Restricted: true}}, Timeout: 5 * time.Second}
			info := p.probeHTTP(context.Background(), ap, false)
			if info == nil {
				t.Fatal("not seen as HTTP")
			}
			r := &Report{Services: []Service{{Proto: "tcp", Addr: ap.Addr().String(), Port: ap.Port(), Name: "http", HTTP: info}}}
			in := &Intent{Source: "moat.yaml", Sites: []string{"app.test"}, Routes: p.Routes}
			var got *finding.Result
			for _, x := range Judge(r, in, time.Now()) {
				if x.ID == "PR-HTTP-004" {
					got = &x
				}
			}
			if got == nil {
				t.Fatal("the route was not judged")
			}
			if got.Finding() != c.fails {
				t.Fatalf("finding=%v, want %v: %s", got.Finding(), c.fails, got)
			}
			if c.fails && !strings.Contains(strings.Join(got.Evidence, "\n"), c.reason) {
				t.Errorf("evidence does not say %q: %v", c.reason, got.Evidence)
			}
		})
	}
}

// TestJudgeAgainstIntent: each kind of drift from moat.yaml is a finding
// with a fix, and what is declared is not.
func TestJudgeAgainstIntent(t *testing.T) {
	in := &Intent{Source: "moat.yaml", PublicTCP: []PortRange{{80, 80}, {443, 443}}, SSHPort: 22, SSHExposure: "vpn", Sites: []string{"app.test", "*.example.org"}}
	r := &Report{
		Hosts: []HostReport{{Addr: "192.0.2.1", Open: []uint16{22, 443, 5432}}},
		Services: []Service{
			{Addr: "192.0.2.1", Port: 22, Name: "ssh", SSH: &SSHInfo{Version: "SSH-2.0-OpenSSH_9.2p1", AuthMethods: map[string][]string{"root": {"publickey"}}, Kex: []string{"curve25519-sha256"}}},
			{Addr: "192.0.2.1", Port: 443, Name: "tls", TLS: &TLSInfo{Handshakes: []TLSHandshake{
				{Case: "name", SNI: "app.test", OK: true, Names: []string{"app.test"}, NotAfter: time.Now().Add(60 * 24 * time.Hour)},
				{Case: "name", SNI: "a.example.org", OK: true, Names: []string{"a.example.org", "staging.internal.test"}},
				{Case: "unknown-name", SNI: UnknownName, OK: true, Names: []string{"app.test"}},
			}}},
			{Addr: "192.0.2.1", Port: 5432, Name: "postgresql", Datastore: &DatastoreInfo{Unauthenticated: true, Evidence: "trust"}},
		},
	}
	res := Judge(r, in, time.Now())
	want := map[string]bool{
		"PR-PORT-001 192.0.2.1 tcp/22":   true,
		"PR-PORT-001 192.0.2.1 tcp/443":  false,
		"PR-PORT-001 192.0.2.1 tcp/5432": true,
		"PR-SSH-001 192.0.2.1 tcp/22":    true,
		"PR-SSH-002 192.0.2.1 tcp/22":    false,
		"PR-TLS-001 192.0.2.1 tcp/443":   true, // staging.internal.test
		"PR-TLS-002 192.0.2.1 tcp/443":   true,
		"PR-DS-001 192.0.2.1 tcp/5432":   true,
	}
	seen := map[string]bool{}
	for _, x := range res {
		k := x.ID + " " + x.Subject
		if w, ok := want[k]; ok {
			seen[k] = true
			if x.Finding() != w {
				t.Errorf("%s: finding=%v, want %v (%v)", k, x.Finding(), w, x.Evidence)
			}
			if x.Finding() && x.Fix == "" {
				t.Errorf("%s: no fix", k)
			}
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("%s: not judged", k)
		}
	}
	if !strings.Contains(strings.Join(resultFor(res, "PR-TLS-001").Evidence, " "), "staging.internal.test") {
		t.Errorf("PR-TLS-001 does not name the stray name")
	}
}

func resultFor(rs []finding.Result, id string) finding.Result {
	for _, x := range rs {
		if x.ID == id {
			return x
		}
	}
	return finding.Result{}
}
