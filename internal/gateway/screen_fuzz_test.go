package gateway

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsView is crypto/tls's reading of data as a client's first bytes: the
// server name its server hands to GetConfigForClient, and whether it got
// that far (a ClientHello it parsed).
func tlsView(data []byte) (name string, reached bool) {
	stop := errors.New("stop")
	srv := tls.Server(&replayConn{r: bytes.NewReader(data)}, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		name, reached = h.ServerName, true
		return nil, stop
	}})
	srv.Handshake()
	return name, reached
}

// replayConn is a client that sends r, then closes its side; what the
// server writes is kept in w.
type replayConn struct {
	r  *bytes.Reader
	mu sync.Mutex
	w  bytes.Buffer
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// capturedHello is the first flight Go's client sends for cfg.
func capturedHello(cfg *tls.Config) []byte {
	cc, sc := net.Pipe()
	go func() {
		tls.Client(cc, cfg).Handshake()
	}()
	sc.SetDeadline(time.Now().Add(5 * time.Second))
	var hdr [5]byte
	io.ReadFull(sc, hdr[:])
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	io.ReadFull(sc, body)
	sc.Close()
	cc.Close()
	return append(hdr[:], body...)
}

// FuzzClientHello: the parser never panics, never reads past its bound,
// replays exactly what it read, and whenever crypto/tls parses a hello it
// reads the same server name from it, so the name the gateway decides on is
// the name crypto/tls then serves. (It may refuse hellos crypto/tls would
// read: records other than handshakes before the hello, odd record
// versions.)
func FuzzClientHello(f *testing.F) {
	for _, cfg := range []*tls.Config{
		{ServerName: "app.test"},
		{ServerName: "app.test", MaxVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}},
		{ServerName: "x", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
		{InsecureSkipVerify: true},
	} {
		f.Add(capturedHello(cfg))
	}
	f.Add(records(modernHello("app.test.").message(), 7))
	f.Add(records(modernHello("a", "b").message(), 1<<14))
	f.Add(records(helloSpec{version: 0x0303}.message(), 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, h, err := readClientHello(bytes.NewReader(data))
		if !bytes.HasPrefix(data, raw) || len(raw) > maxHelloRaw {
			t.Fatalf("read %d bytes that are not the input's first", len(raw))
		}
		name, reached := tlsView(data)
		if !reached || errors.Is(err, errNotHandshake) {
			return
		}
		if err != nil {
			t.Fatalf("crypto/tls reads a hello naming %q; the screen refused it: %v", name, err)
		}
		if h.serverName != name {
			t.Fatalf("the screen reads server name %q, crypto/tls %q", h.serverName, name)
		}
	})
}

// headOracle is net/http's server as the gateway runs it on port 80: it
// reports whether net/http handed a request to the handler or answered
// it itself.
type headOracle struct {
	srv   *http.Server
	conns chan net.Conn
	once  sync.Once
}

func newHeadOracle() *headOracle {
	o := &headOracle{conns: make(chan net.Conn)}
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Reached", "1") // a header: HEAD answers have no body
		}),
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     log.New(io.Discard, "", 0),
	}
	o.srv.SetKeepAlivesEnabled(false)
	go o.srv.Serve(o)
	return o
}

func (o *headOracle) Accept() (net.Conn, error) {
	c, ok := <-o.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (o *headOracle) Close() error   { o.once.Do(func() { close(o.conns) }); return nil }
func (o *headOracle) Addr() net.Addr { return &net.TCPAddr{} }

// answer returns what net/http's server writes for a connection that
// sends data.
func (o *headOracle) answer(data []byte) string {
	cc, sc := net.Pipe()
	defer cc.Close()
	o.conns <- sc
	cc.SetDeadline(time.Now().Add(5 * time.Second))
	go cc.Write(data)
	out, _ := io.ReadAll(cc)
	return string(out)
}

// FuzzRequestHead: a head the port-80 screen lets through is never
// answered by net/http itself: it reaches the handler (which drops
// unknown hosts unanswered).
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET http://app.test/x HTTP/1.1\r\nHost: other\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\nX: a\n b\n\n",
		"CONNECT a:443 HTTP/1.1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n",
		"GET / HTTP/1.1\r\nhOsT: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	o := newHeadOracle()
	f.Cleanup(func() { o.srv.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		end := headEnd(data, 0)
		if end == 0 || !checkHead(data[:end]) {
			return
		}
		out := o.answer(data)
		if out != "" && !strings.Contains(out, "\r\nX-Reached: 1\r\n") {
			t.Fatalf("the screen passed a head net/http answers itself: %.80q", out)
		}
	})
}
