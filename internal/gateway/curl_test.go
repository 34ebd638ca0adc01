package gateway

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// curl runs Debian's curl against the gateway, resolving every name to it,
// and returns its output and exit code.
func (e *env) curl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	_, httpsPort, _ := net.SplitHostPort(e.g.HTTPSAddr())
	_, httpPort, _ := net.SplitHostPort(e.g.HTTPAddr())
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pemCA(t), 0o600)
	base := []string{"-sS", "--max-time", "5", "--cacert", ca}
	for _, h := range []string{"app.test", "other.test", "unknown.test"} {
		base = append(base, "--resolve", h+":"+httpsPort+":127.0.0.1", "--resolve", h+":"+httpPort+":127.0.0.1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for _, a := range args {
		a = strings.ReplaceAll(a, "HTTPS", httpsPort)
		out = append(out, strings.ReplaceAll(a, "HTTP", httpPort))
	}
	b, err := exec.CommandContext(ctx, "curl", append(base, out...)...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(b), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), 0
}

func TestWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		strictSkip(t, "needs curl (apt-get install curl)")
	}
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/admin", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}},
		Route{Path: "/vault", Upstream: a.URL, Allow: []string{"10.0.0.0/8"}, Deny: "drop"},
		Route{Path: "/echo", Upstream: a.URL, Allow: []string{"127.0.0.1"}},
	)
	e := startEnv(t, a, cfg, Deps{})

	// Wrong SNI: no certificate, the handshake fails (35: SSL connect error).
	if out, code := e.curl(t, "-v", "https://other.test:HTTPS/"); code != 35 || strings.Contains(out, "Server certificate") {
		t.Errorf("wrong SNI: exit %d\n%s", code, out)
	}
	// Unknown Host inside a good TLS connection: nothing (52: empty reply);
	// over HTTP/2 the stream is reset (92).
	if out, code := e.curl(t, "--http1.1", "-H", "Host: unknown.test", "https://app.test:HTTPS/"); code != 52 {
		t.Errorf("unknown Host: exit %d\n%s", code, out)
	}
	if out, code := e.curl(t, "--http2", "-i", "-H", "Host: unknown.test", "https://app.test:HTTPS/"); code != 92 || regexp.MustCompile(`HTTP/2 [0-9]{3}`).MatchString(out) {
		t.Errorf("unknown Host over HTTP/2: exit %d\n%s", code, out)
	}
	if out, code := e.curl(t, "http://unknown.test:HTTP/"); code != 52 {
		t.Errorf("unknown Host on :80: exit %d\n%s", code, out)
	}
	// :80 redirects a known host.
	if out, _ := e.curl(t, "-i", "http://app.test:HTTP/x?y=1"); !strings.Contains(out, "308 Permanent Redirect") || !strings.Contains(out, "location: https://app.test:") && !strings.Contains(out, "Location: https://app.test:") {
		t.Errorf("redirect:\n%s", out)
	}
	// A denied route answers exactly like a missing path, over HTTP/1.1 and HTTP/2.
	date := regexp.MustCompile(`(?mi)^date: .*\r?\n`)
	for _, proto := range []string{"--http1.1", "--http2"} {
		denied, _ := e.curl(t, proto, "-i", "https://app.test:HTTPS/admin")
		missing, _ := e.curl(t, proto, "-i", "https://app.test:HTTPS/no-such-page")
		d, m := date.ReplaceAllString(denied, ""), date.ReplaceAllString(missing, "")
		if d != m || !strings.Contains(m, "404") {
			t.Errorf("%s: denied and missing differ:\n%s\n---\n%s", proto, d, m)
		}
		if strings.Contains(strings.ToLower(d), "server:") || strings.Contains(d, "Apache") {
			t.Errorf("%s: software named:\n%s", proto, d)
		}
	}
	// drop: closed without an answer.
	if out, code := e.curl(t, "--http1.1", "https://app.test:HTTPS/vault"); code != 52 {
		t.Errorf("drop: exit %d\n%s", code, out)
	}
	// A spoofed X-Forwarded-For from an untrusted peer changes nothing.
	out, _ := e.curl(t, "-H", "X-Forwarded-For: 10.9.9.9", "https://app.test:HTTPS/echo")
	if !strings.Contains(out, `"X-Forwarded-For":["127.0.0.1"]`) {
		t.Errorf("spoofed XFF reached the upstream:\n%s", out)
	}
	if out, _ := e.curl(t, "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Forwarded-For: 10.9.9.9", "https://app.test:HTTPS/admin"); out != "404" {
		t.Errorf("spoofed XFF opened the allowlist: %s", out)
	}
	// A honeypot is reported at once.
	e.curl(t, "https://app.test:HTTPS/.git/config")
	if f, ok := e.fails.next(time.Second); !ok || f.Kind != FailureHoneypot {
		t.Errorf("honeypot: %+v %v", f, ok)
	}
	// TLS below 1.2 is refused.
	if out, code := e.curl(t, "--tls-max", "1.1", "https://app.test:HTTPS/"); code == 0 {
		t.Errorf("TLS 1.1 accepted:\n%s", out)
	}
}
