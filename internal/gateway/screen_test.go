package gateway

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The promise: a client that names no site, or names it wrongly, learns
// nothing at the TLS layer: its connection is closed before crypto/tls
// reads a byte, whatever else its hello says. A client that names a site
// is served by crypto/tls as usual (a handshake, or crypto/tls's alert for
// what it does not support).

// liveness bounds how long a test waits for the gateway to close; it is
// not a speed requirement (a loaded machine may take long), only a bound
// on a test that would otherwise hang.
const liveness = 30 * time.Second

// helloSpec describes a hand-built ClientHello, for the variants Go's
// client cannot send (IP or trailing-dot names, TLS 1.0 with modern
// extensions, ffdhe groups, padding, duplicate names).
type helloSpec struct {
	names   []string // host_name entries; nil: no server_name extension
	version uint16   // legacy_version
	vers    []uint16 // supported_versions; nil: none (a TLS 1.2-style hello)
	suites  []uint16
	groups  []uint16
	alpn    []string
	pad     int // bytes of an unknown (GREASE) extension
}

func u16(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }

func vec16(b, v []byte) []byte { return append(u16(b, len(v)), v...) }

func ext(b []byte, typ int, data []byte) []byte { return vec16(u16(b, typ), data) }

// modernHello is a TLS 1.2 hello for the test certificate (ECDSA P-256).
func modernHello(names ...string) helloSpec {
	return helloSpec{names: names, version: tls.VersionTLS12,
		suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		groups: []uint16{uint16(tls.X25519), uint16(tls.CurveP256)}}
}

// message returns the handshake message (type, length, body).
func (s helloSpec) message() []byte {
	var b []byte
	b = u16(b, int(s.version))
	b = append(b, make([]byte, 32)...) // random
	b = append(b, 0)                   // session id
	var suites []byte
	for _, c := range s.suites {
		suites = u16(suites, int(c))
	}
	b = vec16(b, suites)
	b = append(b, 1, 0) // compression: null
	var exts []byte
	if s.names != nil {
		var list []byte
		for _, n := range s.names {
			list = append(list, 0)
			list = vec16(list, []byte(n))
		}
		exts = ext(exts, 0, vec16(nil, list))
	}
	var groups []byte
	for _, g := range s.groups {
		groups = u16(groups, int(g))
	}
	exts = ext(exts, 10, vec16(nil, groups))
	exts = ext(exts, 11, []byte{1, 0})                               // ec_point_formats: uncompressed
	exts = ext(exts, 13, vec16(nil, []byte{0x04, 0x03, 0x08, 0x04})) // signature_algorithms
	exts = ext(exts, 0xff01, []byte{0})                              // renegotiation_info
	exts = ext(exts, 23, nil)                                        // extended_master_secret
	if s.vers != nil {
		var v []byte
		for _, x := range s.vers {
			v = u16(v, int(x))
		}
		exts = ext(exts, 43, append([]byte{byte(len(v))}, v...))
	}
	if s.alpn != nil {
		var list []byte
		for _, p := range s.alpn {
			list = append(list, byte(len(p)))
			list = append(list, p...)
		}
		exts = ext(exts, 16, vec16(nil, list))
	}
	if s.pad > 0 {
		exts = ext(exts, 0x1a1a, make([]byte, s.pad))
	}
	b = vec16(b, exts)
	return append([]byte{1, byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))}, b...)
}

// records frames a handshake message in records of at most size bytes.
func records(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, recordTypeHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// answer sends raw to addr in writes of at most seg bytes and returns the
// server's first bytes: none when it closes unanswered.
func answer(t *testing.T, addr string, raw []byte, seg int) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	c.SetDeadline(time.Now().Add(liveness))
	for len(raw) > 0 {
		n := min(seg, len(raw))
		if _, err := c.Write(raw[:n]); err != nil {
			break // closed already: what was read is the answer
		}
		raw = raw[n:]
	}
	// The first read ends it: a stranger must see EOF (or a reset) with no
	// byte; a known name sees crypto/tls's first record.
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the connection was neither answered nor closed within %v", liveness)
	}
	return buf[:n]
}

func TestScreenHelloVariants(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	addr := e.g.HTTPSAddr()
	tls10 := helloSpec{version: tls.VersionTLS10, suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, groups: []uint16{uint16(tls.CurveP256)}}
	tls11 := tls10
	tls11.version = tls.VersionTLS11
	variants := []struct {
		name   string
		spec   helloSpec
		record int  // record size; 0: one record
		seg    int  // TCP write size; 0: one write
		normal bool // a known name gets a ServerHello (else crypto/tls's alert)
	}{
		{"tls1.2", modernHello(), 0, 0, true},
		{"tls1.0 only", tls10, 0, 0, false},
		{"tls1.1 only", tls11, 0, 0, false},
		{"tls1.3 versions, no key share", helloSpec{version: tls.VersionTLS12, vers: []uint16{tls.VersionTLS13}, suites: []uint16{tls.TLS_AES_128_GCM_SHA256}, groups: []uint16{uint16(tls.X25519)}}, 0, 0, false},
		{"unknown ALPN", func() helloSpec { s := modernHello(); s.alpn = []string{"foo/1"}; return s }(), 0, 0, false},
		{"ffdhe groups only", func() helloSpec { s := modernHello(); s.groups = []uint16{0x0100, 0x0101}; return s }(), 0, 0, false},
		{"odd suites", func() helloSpec { s := modernHello(); s.suites = []uint16{0x0005, 0x000a, 0x0016}; return s }(), 0, 0, false},
		{"large (3 records)", func() helloSpec { s := modernHello(); s.pad = 40000; return s }(), 1 << 14, 0, true},
		{"fragmented records and segments", modernHello(), 7, 3, true},
		{"one-byte records", modernHello(), 1, 64, true},
	}
	strangers := [][]string{nil, {"unknown.test"}, {"127.0.0.1"}, {"::1"}, {"[::1]"}, {"app.test."}, {"APP.TEST."}, {"app.test.evil.test"}, {"x.app.test"}, {"app.test\x00"}, {"app.test", "app.test"}, {""}, {"other-site.test"}}
	for _, v := range variants {
		for _, names := range strangers {
			s := v.spec
			s.names = names
			msg := s.message()
			rec := v.record
			if rec == 0 {
				rec = maxHelloRecord
			}
			seg := v.seg
			if seg == 0 {
				seg = 1 << 20
			}
			if got := answer(t, addr, records(msg, rec), seg); len(got) != 0 {
				t.Errorf("%s, names %q: the stranger read %d bytes (%x)", v.name, names, len(got), got[:min(len(got), 16)])
			}
		}
		for _, name := range []string{"app.test", "APP.Test"} {
			s := v.spec
			s.names = []string{name}
			rec, seg := v.record, v.seg
			if rec == 0 {
				rec = maxHelloRecord
			}
			if seg == 0 {
				seg = 1 << 20
			}
			got := answer(t, addr, records(s.message(), rec), seg)
			switch {
			case len(got) == 0:
				t.Errorf("%s, name %q: closed without an answer; crypto/tls should have seen it", v.name, name)
			case v.normal && got[0] != recordTypeHandshake:
				t.Errorf("%s, name %q: want a ServerHello, got %x", v.name, name, got[:min(len(got), 16)])
			}
		}
	}
	// Beyond crypto/tls's own limit: closed for everyone, silently.
	s := modernHello("app.test")
	s.pad = maxHelloMsg
	if got := answer(t, addr, records(s.message(), 1<<14), 1<<20); len(got) != 0 {
		t.Errorf("oversized hello: read %d bytes", len(got))
	}
	// Not TLS at all, and SSLv2 framing.
	for _, raw := range []string{"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n", "\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10", "\x16\x03\x01\x00\x00", "\x16\x03\x01\x00\x04\x02\x00\x00\x00"} {
		if got := answer(t, addr, []byte(raw), 1<<20); len(got) != 0 {
			t.Errorf("%q: read %d bytes", raw, len(got))
		}
	}
}

// countConn counts the bytes a client reads.
type countConn struct {
	net.Conn
	mu    sync.Mutex
	read  int
	split int // when > 0, the first write (the hello) is reframed in records of this size and sent in pieces
	wrote bool
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read += n
	c.mu.Unlock()
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	if c.split == 0 || c.wrote || len(p) < 5 || p[0] != recordTypeHandshake {
		return c.Conn.Write(p)
	}
	c.wrote = true
	// Reframing does not change the handshake transcript: the message is
	// the same bytes in other records.
	raw := records(p[5:], c.split)
	for len(raw) > 0 {
		n := min(5, len(raw))
		if _, err := c.Conn.Write(raw[:n]); err != nil {
			return 0, err
		}
		raw = raw[n:]
	}
	return len(p), nil
}

func (c *countConn) bytesRead() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read
}

func TestScreenHelloGoClient(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	pool := getPKI(t).pool
	configs := []struct {
		name  string
		cfg   *tls.Config
		split int
		ok    bool // a known name completes the handshake
	}{
		{"default", &tls.Config{}, 0, true},
		{"tls1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, 0, false},
		{"tls1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, 0, false},
		{"tls1.2", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}, 0, true},
		{"tls1.3", &tls.Config{MinVersion: tls.VersionTLS13}, 0, true},
		{"unknown ALPN", &tls.Config{NextProtos: []string{"foo/1"}}, 0, false},
		{"h2", &tls.Config{NextProtos: []string{"h2"}}, 0, true},
		{"P-521 only", &tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP521}}, 0, true},
		{"odd TLS 1.2 suites", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, 0, false},
		{"fragmented hello", &tls.Config{}, 11, true},
	}
	dial := func(name string, tmpl *tls.Config, split int) (*countConn, error) {
		cfg := tmpl.Clone()
		raw, err := net.Dial("tcp", e.g.HTTPSAddr())
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(liveness))
		cc := &countConn{Conn: raw, split: split}
		cfg.ServerName = name
		cfg.RootCAs = pool
		if name == "" || name == "127.0.0.1" {
			cfg.InsecureSkipVerify = true // Go sends no SNI for these
		}
		c := tls.Client(cc, cfg)
		defer c.Close()
		return cc, c.Handshake()
	}
	for _, k := range configs {
		for _, name := range []string{"", "127.0.0.1", "unknown.test", "app.test.evil.test"} {
			cc, err := dial(name, k.cfg, k.split)
			if err == nil || cc.bytesRead() != 0 {
				t.Errorf("%s, name %q: err %v after reading %d bytes; want closed without a byte", k.name, name, err, cc.bytesRead())
			}
		}
		// Go strips a trailing dot before sending; upper case is the same name.
		for _, name := range []string{"app.test", "APP.TEST", "app.test."} {
			cc, err := dial(name, k.cfg, k.split)
			switch {
			case k.ok && err != nil:
				t.Errorf("%s, name %q: %v", k.name, name, err)
			case !k.ok && (err == nil || cc.bytesRead() == 0):
				t.Errorf("%s, name %q: err %v, read %d bytes; want crypto/tls's own refusal", k.name, name, err, cc.bytesRead())
			}
		}
	}
}

// TestScreenHelloOpenSSL drives the same variants from OpenSSL's client,
// which, unlike Go's, sends IP addresses and trailing dots as names.
func TestScreenHelloOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		strictSkip(t, "openssl not installed (apt-get install openssl)")
	}
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pemCA(t), 0o600)
	readRe := regexp.MustCompile(`SSL handshake has read (\d+) bytes and written (\d+) bytes`)
	run := func(args ...string) (read, written int, out string) {
		t.Helper()
		args = append([]string{"s_client", "-connect", e.g.HTTPSAddr(), "-CAfile", ca}, args...)
		cmd := exec.Command(openssl, args...)
		cmd.Stdin = strings.NewReader("")
		cmd.WaitDelay = liveness
		b, _ := cmd.CombinedOutput()
		m := readRe.FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("openssl %s: no byte counts in:\n%s", strings.Join(args, " "), b)
		}
		read, _ = strconv.Atoi(m[1])
		written, _ = strconv.Atoi(m[2])
		return read, written, string(b)
	}
	// TLS 1.0 and 1.1 need OpenSSL's security level 0 to be offered at all.
	variants := [][]string{
		nil,
		{"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"},
		{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"},
		{"-tls1_2"},
		{"-tls1_3"},
		{"-alpn", "foo/1"},
		{"-groups", "ffdhe2048"},
		{"-tls1_2", "-cipher", "AES128-SHA"},
	}
	for _, v := range variants {
		for _, name := range [][]string{{"-noservername"}, {"-servername", "unknown.test"}, {"-servername", "127.0.0.1"}, {"-servername", "app.test."}, {"-servername", "APP.TEST."}} {
			args := append(append([]string{}, name...), v...)
			read, written, out := run(args...)
			if written == 0 {
				t.Errorf("openssl %v sent nothing: the test proves nothing\n%s", args, out)
			}
			if read != 0 {
				t.Errorf("openssl %v: read %d bytes from a stranger's connection\n%s", args, read, out)
			}
		}
		for _, name := range []string{"app.test", "APP.TEST"} {
			args := append([]string{"-servername", name}, v...)
			read, _, out := run(args...)
			if read == 0 {
				t.Errorf("openssl %v: a known name read nothing\n%s", args, out)
			}
			if len(v) == 0 || v[0] == "-tls1_2" && len(v) == 1 || v[0] == "-tls1_3" {
				if !strings.Contains(out, "Verify return code: 0 (ok)") {
					t.Errorf("openssl %v: the known name's handshake did not verify\n%s", args, out)
				}
			}
		}
	}
}

// TestPortEightyIsSilentToStrangers: whatever net/http would answer with
// its own error text, and any unknown Host, gets a closed connection on
// port 80; known hosts still get the redirect and ACME challenges.
func TestPortEightyIsSilentToStrangers(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	silent := []struct{ why, raw string }{
		{"bad header line (400)", "GET / HTTP/1.1\r\nHost: app.test\r\nBad Header\r\n\r\n"},
		{"no Host (400)", "GET / HTTP/1.1\r\n\r\n"},
		{"two Hosts (400)", "GET / HTTP/1.1\r\nHost: app.test\r\nHost: app.test\r\n\r\n"},
		{"malformed Host (400)", "GET / HTTP/1.1\r\nHost: app test\r\n\r\n"},
		{"bad request line (400)", "GET /\r\nHost: app.test\r\n\r\n"},
		{"HTTP/0.9", "GET /\r\n\r\n"},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"},
		{"empty line first (400)", "\r\nGET / HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"space before colon (400)", "GET / HTTP/1.1\r\nHost : app.test\r\n\r\n"},
		{"control byte in a value (400)", "GET / HTTP/1.1\r\nHost: app.test\r\nX: a\x01b\r\n\r\n"},
		{"bad Content-Length (400)", "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1x\r\n\r\n"},
		{"conflicting Content-Length (400)", "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"huge header (431)", "GET / HTTP/1.1\r\nHost: app.test\r\nX: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"},
		{"HTTP/7.0 (505)", "GET / HTTP/7.0\r\nHost: app.test\r\n\r\n"},
		{"HTTP/2.0 (505)", "GET / HTTP/2.0\r\nHost: app.test\r\n\r\n"},
		{"h2c preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"Transfer-Encoding gzip (501)", "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"Expect other than 100-continue (417)", "POST / HTTP/1.1\r\nHost: app.test\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx"},
		{"unknown Host", "GET / HTTP/1.1\r\nHost: unknown.test\r\n\r\n"},
		{"address as Host", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n"},
		{"OPTIONS * of an unknown Host", "OPTIONS * HTTP/1.1\r\nHost: unknown.test\r\n\r\n"},
		{"absolute URI of an unknown host", "GET http://unknown.test/ HTTP/1.1\r\nHost: app.test\r\n\r\n"},
		{"unknown Host, then a known one pipelined", "GET / HTTP/1.1\r\nHost: unknown.test\r\n\r\nGET / HTTP/1.1\r\nHost: app.test\r\n\r\n"},
	}
	for _, c := range silent {
		out, err := e.rawTCP(c.raw)
		if out != "" || err != nil {
			t.Errorf("%s: got %.60q, %v; want closed without a byte", c.why, out, err)
		}
	}
	// Known hosts: the redirect, also for the bare-LF and HTTP/1.0 forms
	// net/http accepts, and only one answer per connection.
	_, port, _ := net.SplitHostPort(e.g.HTTPSAddr())
	for _, raw := range []string{
		"GET /a?b HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"GET /a?b HTTP/1.1\nHost: APP.test.\n\n",
		"GET /a?b HTTP/1.0\r\nHost: app.test:80\r\n\r\n",
		"POST /a?b HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"GET /a?b HTTP/1.1\r\nHost: app.test\r\n\r\nGET /second HTTP/1.1\r\nBad\r\n\r\n",
	} {
		out, _ := e.rawTCP(raw)
		resps := readResponses(out)
		if len(resps) != 1 || resps[0].StatusCode != 308 || resps[0].Header.Get("Location") != "https://app.test:"+port+"/a?b" {
			t.Errorf("%.40q: got %q", raw, out)
		}
	}
}

// TestTrailingDotCryptoTLSAlerts pins why a trailing-dot name is refused
// although it names a site: crypto/tls, given the hello, answers with a
// decode_error alert (a fingerprint), never a handshake. If a Go release
// starts accepting the dot, this fails and the refusal can be revisited.
func TestTrailingDotCryptoTLSAlerts(t *testing.T) {
	hello := records(modernHello("app.test.").message(), maxHelloRecord)
	c := &replayConn{r: bytes.NewReader(hello)}
	cert, err := tls.LoadX509KeyPair(getPKI(t).leaf(t, "app.test"))
	if err != nil {
		t.Fatal(err)
	}
	err = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
	out := c.w.Bytes()
	if err == nil || len(out) < 7 || out[0] != 0x15 || out[6] != 50 {
		t.Errorf("crypto/tls on a trailing-dot name: err %v, wrote %x; want a decode_error alert", err, out)
	}
	if _, h, err := readClientHello(bytes.NewReader(hello)); err != nil || h.serverName != "app.test." {
		t.Fatalf("the screen reads %q, %v", h.serverName, err)
	}
	rt := &snapshot{static: map[string]*tls.Certificate{"app.test": &cert}}
	if rt.servesName("app.test.") || !rt.servesName("APP.test") {
		t.Error("servesName: a trailing dot must be refused, case ignored")
	}
}

// TestScreenFollowsReload: the names the screen admits are the current
// config's, as certificates are: a site added by a reload is served at
// once, a site removed is a stranger at once.
func TestScreenFollowsReload(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL)
	e := startEnv(t, a, cfg, Deps{})
	hello := func(name string) int {
		return len(answer(t, e.g.HTTPSAddr(), records(modernHello(name).message(), maxHelloRecord), 1<<20))
	}
	if hello("new.test") != 0 || hello("app.test") == 0 {
		t.Fatal("before the reload")
	}
	cert, key := getPKI(t).leaf(t, "new.test")
	next := cfg
	next.Sites = []Site{{Host: "new.test", Certificate: cert, Key: key, Routes: []Route{{Path: "/", Upstream: a.URL}}}}
	if err := e.g.Reload(next); err != nil {
		t.Fatal(err)
	}
	if hello("new.test") == 0 {
		t.Error("a site added by a reload is refused")
	}
	if n := hello("app.test"); n != 0 {
		t.Errorf("a site removed by a reload still gets %d bytes", n)
	}
}
