package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseHtpasswd: the htpasswd file is operator input, but parse it as
// if it were hostile: no panic, and what is accepted is well-formed.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$05$abcdefghijklmnopqrstuuq5wF4s5HpbJ3zCkOqXeZbEXuTDaMlAyq\n"))
	f.Add([]byte("# comment\n\nbob:$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\r\n"))
	f.Add([]byte("x:$apr1$a$b\n"))
	f.Add([]byte("x:$apr1$zYe3sPXc$kV3a0O/ULVFAW58UxU7rB.\n"))
	f.Add([]byte("y:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"))
	f.Add([]byte("z:$5$salt$" + strings.Repeat("a", 43) + "\nw:$6$rounds=1000$s$" + strings.Repeat("b", 86) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHtpasswd(data)
		if err != nil {
			return
		}
		if len(h.users) == 0 || (h.cost != 0 && (h.cost < 4 || h.cost > 31)) {
			t.Fatalf("accepted %d users at cost %d", len(h.users), h.cost)
		}
		for u, c := range h.users {
			if u == "" || strings.ContainsRune(u, ':') || (c.scheme == "bcrypt" && len(c.hash) != 60) {
				t.Fatalf("accepted user %q hash %q", u, c.hash)
			}
			c.verify([]byte("pw")) // no panic on any accepted entry
		}
	})
}

// FuzzRoute: whatever the path, the route chosen covers the cleaned path,
// no longer route does, and no lenient reading of the path reaches a
// different route unnoticed.
func FuzzRoute(f *testing.F) {
	for _, p := range []string{"/", "/admin", "//admin", "/a/../admin", "/public/..;/admin", "/x\\..\\admin", "/ADMIN;x", "/api/v1/../../admin", "/%2e%2e/admin", "admin", ""} {
		f.Add(p)
	}
	s := testSite("/", "/admin", "/api/v1/", "/static", "/Ünïcode")
	f.Fuzz(func(t *testing.T, p string) {
		r, clean, amb := s.route(p)
		if !strings.HasPrefix(clean, "/") || !isClean(clean) || cleanPath(clean) != clean {
			t.Fatalf("cleanPath(%q) = %q is not clean", p, clean)
		}
		if amb {
			if r != nil {
				t.Fatal("an ambiguous path has no route")
			}
			return
		}
		if r == nil {
			t.Fatalf("%q: no route, but / exists", p)
		}
		if !hasPrefixFold(clean, r.prefix) {
			t.Fatalf("%q: route %q does not cover %q", p, r.path, clean)
		}
		for _, o := range s.routes {
			if len(o.prefix) > len(r.prefix) && hasPrefixFold(clean, o.prefix) {
				t.Fatalf("%q: %q chosen over the longer %q", p, r.path, o.path)
			}
		}
		if alt := altPath(clean); alt != "" {
			if !isClean(alt) || s.match(alt) != r {
				t.Fatalf("%q: the lenient reading %q takes another route", p, alt)
			}
		}
	})
}

// FuzzClientIP: forwarding headers are attacker text; resolve never
// panics, never believes an untrusted peer, and names an address that was
// in the header or is the peer.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4, 10.0.0.2", "[::1]:80, x", ",,,", " , 10.0.0.1", "::ffff:1.2.3.4", "fe80::1%eth0"} {
		f.Add(s, true)
	}
	c := newClientIP([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "X-Forwarded-For")
	f.Fuzz(func(t *testing.T, xff string, trustedPeer bool) {
		remote := "203.0.113.5:443"
		if trustedPeer {
			remote = "10.0.0.1:443"
		}
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		client, peer, trusted := c.resolve(r)
		if trusted != trustedPeer {
			t.Fatal("trust is the peer's")
		}
		if !trusted && client != peer {
			t.Fatal("an untrusted peer's header was believed")
		}
		if !client.IsValid() || client.Zone() != "" || client.Is4In6() {
			t.Fatalf("client %v", client)
		}
		if client != peer && !strings.Contains(xff, strings.TrimPrefix(client.String(), "::ffff:")) {
			// The address must come from the header (modulo notation).
			if a, ok := parseForwardedAddr(xff); !ok || a != client {
				found := false
				for _, item := range strings.Split(xff, ",") {
					if a, ok := parseForwardedAddr(item); ok && a == client {
						found = true
					}
				}
				if !found {
					t.Fatalf("client %v is neither the peer nor in %q", client, xff)
				}
			}
		}
	})
}

// FuzzAppendJSONString: access log fields are client text; the line must
// stay valid JSON with the same content encoding/json would give.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\x1f\x7f", "\xff", "é\u2028", "<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s, 4096)
		if !utf8.Valid(b) {
			t.Fatalf("invalid UTF-8: %q", b)
		}
		var got, want string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q → %s: %v", s, b, err)
		}
		std, _ := json.Marshal(truncate(s, 4096))
		json.Unmarshal(std, &want)
		if got != want {
			t.Fatalf("%q: got %q, want %q", s, got, want)
		}
	})
}

// FuzzNormalizeHost: Host headers and SNI are client text.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"a.example.com", "A.B:443", "[::1]:80", "x.", "::1", "a..:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := normalizeHost(s)
		if normalizeHost(h) != h {
			t.Fatalf("normalizeHost not idempotent: %q → %q → %q", s, h, normalizeHost(h))
		}
		for i := 0; i < len(h); i++ {
			if h[i] >= 'A' && h[i] <= 'Z' {
				t.Fatalf("%q not lower case", h)
			}
		}
	})
}

// FuzzUpstreamFraming: the fast path's response framing never lets a
// connection be reused unless net/http's own parser reads the same bytes
// as the same response, to the same end; and never panics.
func FuzzUpstreamFraming(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n2\r\nab\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2;ext=1\r\nab\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\na",
		"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\na",
		"HTTP/1.1 200 OK\r\n Folded: x\r\nContent-Length: 1\r\n\r\na",
		"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		src := bytes.NewReader(data)
		lr := &limitedReader{r: src}
		lr.reset(maxUpstreamHead)
		br := bufio.NewReaderSize(lr, 8<<10)
		h, err := readHead(br, method)
		if err != nil {
			return
		}
		lr.reset(math.MaxInt64)
		if h.status < 200 || h.status > 999 || h.length < -1 {
			t.Fatalf("accepted status %d length %d", h.status, h.length)
		}
		body, err := io.ReadAll(newUpBody(br, lr, h))
		if err != nil || !h.reusable {
			return
		}
		if h.length >= 0 && int64(len(body)) != h.length {
			t.Fatalf("read %d body bytes for Content-Length %d", len(body), h.length)
		}
		used := len(data) - src.Len() - br.Buffered() // where the framing ended
		// net/http's parser on the same bytes.
		gsrc := bytes.NewReader(data)
		gbr := bufio.NewReader(gsrc)
		resp, gerr := http.ReadResponse(gbr, &http.Request{Method: method})
		for gerr == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 {
			resp, gerr = http.ReadResponse(gbr, &http.Request{Method: method})
		}
		if gerr != nil {
			t.Fatalf("reusable after a response net/http rejects: %v", gerr)
		}
		gbody, gerr := io.ReadAll(resp.Body)
		if gerr != nil {
			t.Fatalf("reusable after a body net/http rejects: %v", gerr)
		}
		if resp.StatusCode != h.status || !bytes.Equal(body, gbody) || resp.Close {
			t.Fatalf("status %d/%d, body %q/%q, net/http close %v", h.status, resp.StatusCode, body, gbody, resp.Close)
		}
		if gused := len(data) - gsrc.Len() - gbr.Buffered(); gused != used {
			t.Fatalf("framing ends at byte %d, net/http's at %d", used, gused)
		}
	})
}
