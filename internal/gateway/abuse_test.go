package gateway

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

// healthy checks that a normal client is served while an abuse test
// runs. How fast is not asserted: on a loaded machine any bound is a
// guess; that it is served at all, while the abuse holds its connections
// open, is the point.
//
// A few attempts are allowed: where a test sets a 1 s handshake timeout,
// a loaded machine may cut a normal client's handshake too, which is the
// timeout working, not the abuse winning.
func (e *env) healthy(t *testing.T) {
	t.Helper()
	var resp *http.Response
	var err error
	for range 5 {
		if resp, _, err = e.do(e.newClient(false), "GET", "https://app.test/", ""); err == nil && resp.StatusCode == 200 {
			return
		}
	}
	t.Fatalf("a normal client failed during abuse, 5 times: %v %v", resp, err)
}

func TestRequestSmuggling(t *testing.T) {
	a := newApp(t)
	e := startEnv(t, a, baseConfig(t, a.URL), Deps{})
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"
	cases := []struct {
		name, raw string
	}{
		{"CL.TE", "POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE.CL", "POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"},
		{"duplicate CL", "POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello" + smuggled},
		{"CL list", "POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5, 50\r\n\r\nhello" + smuggled},
		{"obfuscated TE", "POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello" + smuggled},
		{"TE list", "POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
		{"TE space", "POST /echo HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
		{"bare LF", "POST /echo HTTP/1.1\nHost: app.test\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\n\n" + smuggled},
		{"negative CL", "POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: -1\r\n\r\n" + smuggled},
		{"plus CL", "POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: +5\r\n\r\nhello" + smuggled},
	}
	for _, c := range cases {
		before := len(a.requests())
		out, _ := e.rawTLS("app.test", c.raw)
		resps := readResponses(out)
		var codes []int
		for _, r := range resps {
			codes = append(codes, r.StatusCode)
		}
		// Refused (4xx/5xx), or at most one request with one
		// unambiguous body reached the app; never the smuggled one.
		for _, r := range a.requests()[before:] {
			if r.URL.Path == "/smuggled" {
				t.Errorf("%s: the smuggled request reached the app", c.name)
			}
		}
		if n := len(a.requests()) - before; n > 1 {
			t.Errorf("%s: the app saw %d requests", c.name, n)
		}
		if len(resps) > 1 {
			t.Errorf("%s: %d answers on one connection: %v", c.name, len(resps), codes)
		}
		t.Logf("%s → %v", c.name, codes)
	}
	e.healthy(t)
}

func TestOversizedHeadersRefused(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL)
	cfg.Limits.HeaderBytes = 8 << 10
	e := startEnv(t, a, cfg, Deps{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			out, _ := e.rawTLS("app.test", "GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
			if !strings.HasPrefix(out, "HTTP/1.1 431 ") {
				t.Errorf("oversized headers: %.60q", out)
			}
		})
	}
	e.healthy(t)
	wg.Wait()
	// Many small headers count too.
	var b strings.Builder
	for i := range 2000 {
		b.WriteString("X-H" + strings.Repeat("x", i%7) + ": v\r\n")
	}
	out, _ := e.rawTLS("app.test", "GET / HTTP/1.1\r\nHost: app.test\r\n"+b.String()+"\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 431 ") {
		t.Errorf("many headers: %.60q", out)
	}
}

// TestSlowlorisTimedOut: clients that send their header or body a byte at
// a time are cut off before they finish. Asserted by how much they got to
// send, not by a stopwatch: a loaded machine only makes the slow clients
// slower, so "cut before the end" holds on any machine.
func TestSlowlorisTimedOut(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL)
	// 3 s: a healthy client gets its TLS and header through among fifty
	// slow ones on a loaded machine; the slow ones need over 10 s.
	cfg.Limits.HeaderTimeout = schema.Duration(3 * time.Second)
	cfg.Limits.BodyTimeout = schema.Duration(3 * time.Second)
	e := startEnv(t, a, cfg, Deps{})
	const slow = 50
	// One byte every 100 ms: the header would take over 10 s.
	raw := "GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: " + strings.Repeat("a", 100)
	var sent [slow]int
	// Fifty handshakes at once on a loaded machine may outlast the
	// handshake timeout: the gateway enforcing it is right, so try again
	// (bounded) until the slow connection is open.
	dial := func() (c *tls.Conn, err error) {
		for range 20 {
			if c, err = tls.Dial("tcp", e.g.HTTPSAddr(), &tls.Config{ServerName: "app.test", RootCAs: getPKI(t).pool, NextProtos: []string{"http/1.1"}}); err == nil {
				return c, nil
			}
		}
		return nil, err
	}
	var wg sync.WaitGroup
	var opened atomic.Int64
	for i := range slow {
		wg.Go(func() {
			c, err := dial()
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			opened.Add(1)
			for j := 0; j < len(raw); j++ {
				if _, err := c.Write([]byte{raw[j]}); err != nil {
					break
				}
				sent[i]++
				time.Sleep(100 * time.Millisecond)
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err == io.EOF || (err != nil && !isTimeout(err)) {
					break
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	for range 5 {
		e.healthy(t)
	}
	// A slow body is cut by the body timeout.
	wg.Go(func() {
		c, err := dial()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n")
		n := 0
		for range 100 {
			if _, err := c.Write([]byte("x")); err != nil {
				break
			}
			n++
			time.Sleep(100 * time.Millisecond)
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if got, err := c.Read(make([]byte, 512)); got > 0 || err == io.EOF {
				break
			}
		}
		if n == 100 {
			t.Error("a body sent at a byte per 100 ms was read to its end (body timeout 3 s)")
		}
	})
	wg.Wait()
	if opened.Load() != slow {
		t.Fatalf("opened %d slow connections", opened.Load())
	}
	for i, n := range sent {
		if n == len(raw) {
			t.Errorf("slow client %d sent its whole header at a byte per 100 ms (header timeout 3 s)", i)
		}
	}
}
