package gateway

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A screenConn holds a connection back from its server (crypto/tls on the
// HTTPS port, net/http on the HTTP port) until screen has read its first
// bytes from the socket and approved them. Approved bytes are replayed to
// the server unchanged; a refused connection is closed without a byte
// written, and the server reads EOF (it answers nothing to that).
//
// Screening runs in the server's per-connection goroutine, on its first
// Read, so a slow client holds up only itself. It reads under the server's
// own read deadline (the handshake or header timeout) or limit, whichever
// ends first.
type screenConn struct {
	net.Conn
	screen func(net.Conn) ([]byte, bool)
	limit  time.Duration

	direct atomic.Bool // screened and replayed: reads go straight to the socket
	once   sync.Once
	mu     sync.Mutex
	ok     bool
	buf    []byte    // approved bytes not yet read by the server
	rd     time.Time // the read deadline the server set
}

func (c *screenConn) Read(p []byte) (int, error) {
	if c.direct.Load() {
		return c.Conn.Read(p)
	}
	c.once.Do(c.run)
	c.mu.Lock()
	if !c.ok {
		c.mu.Unlock()
		return 0, io.EOF
	}
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		if len(c.buf) == 0 {
			c.buf = nil
			c.direct.Store(true)
		}
		c.mu.Unlock()
		return n, nil
	}
	c.direct.Store(true)
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *screenConn) run() {
	limit := c.limit
	if limit <= 0 {
		limit = 10 * time.Second
	}
	c.mu.Lock()
	d := time.Now().Add(limit)
	if !c.rd.IsZero() && c.rd.Before(d) {
		d = c.rd
	}
	c.mu.Unlock()
	c.Conn.SetReadDeadline(d)
	buf, ok := c.screen(c.Conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.Conn.Close()
		return
	}
	c.ok, c.buf = true, buf
	c.Conn.SetReadDeadline(c.rd)
}

func (c *screenConn) SetReadDeadline(t time.Time) error {
	if !c.direct.Load() {
		c.mu.Lock()
		c.rd = t
		c.mu.Unlock()
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *screenConn) SetDeadline(t time.Time) error {
	if !c.direct.Load() {
		c.mu.Lock()
		c.rd = t
		c.mu.Unlock()
	}
	return c.Conn.SetDeadline(t)
}

// screenHello is the HTTPS port's screen: it reads the ClientHello and
// lets crypto/tls have it only when it names a site the current config
// holds a certificate for (or is obtaining one for: ACME tls-alpn-01
// validation names such a site). Anything else is closed before any
// negotiation: no SNI, an IP address, an unknown name, a name with a
// trailing dot, bytes that are not a TLS handshake, a malformed or
// oversized hello.
func (g *Gateway) screenHello(c net.Conn) ([]byte, bool) {
	raw, h, err := readClientHello(c)
	switch {
	case err == errNotHandshake:
		g.metrics.dropped.WithLabelValues(dropNotTLS).Inc()
		return nil, false
	case err == errBadHello || err == errHelloTooBig:
		g.metrics.dropped.WithLabelValues(dropBadHello).Inc()
		return nil, false
	case err != nil:
		return nil, false // gone, or too slow: nothing worth counting
	}
	if !g.rt.Load().servesName(h.serverName) {
		g.metrics.dropped.WithLabelValues(dropUnknownSNI).Inc()
		return nil, false
	}
	return raw, true
}

// servesName reports whether a TLS server name, as the client sent it,
// gets a handshake: the same table getCertificate chooses from.
//
// A trailing dot ("app.example.") is refused although it names a site:
// RFC 6066 forbids it, crypto/tls answers it with a decode_error alert,
// and the hello cannot be edited on its way, because both ends hash it
// into the handshake transcript. Browsers, curl and Go strip the dot
// before sending; a client that keeps it is closed like a stranger, so the
// alert never names the TLS stack.
func (rt *snapshot) servesName(sni string) bool {
	if sni == "" || strings.HasSuffix(sni, ".") {
		return false
	}
	name := strings.ToLower(sni)
	if _, err := netip.ParseAddr(name); err == nil {
		return false
	}
	c, acme := rt.certSource(name)
	return c != nil || acme
}
