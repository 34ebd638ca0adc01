package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The fast path proxies the bulk of traffic, GET and HEAD requests without
// a body (over HTTP/1.1 and HTTP/2 alike) to a plain-HTTP or unix-socket
// upstream, with a small HTTP/1.1 client that runs entirely on the
// handler's goroutine: request written straight from the inbound headers,
// response framed by framing.go, connection back to a LIFO pool.
// http.Transport spends two goroutines per upstream connection and a
// handoff between them for every request; on a proxy that is about a third
// of the CPU. Everything else (bodies, upgrades, https upstreams, unusual
// queries) goes through httputil.ReverseProxy. `fast_path: false` in the
// gateway section sends everything there.
//
// A connection is reused only when it is provably in step with the
// upstream: the response was unambiguous (framing.go), its body was read
// exactly to its end, no byte beyond it was buffered, and, checked again
// with a non-blocking peek at the socket just before the next request is
// written, nothing arrived while it sat idle (an upstream that sends more
// than it announced would otherwise hand the next client this one's
// answer). On any doubt the connection is closed.
//
// GET and HEAD are idempotent, so a request that fails on a reused
// connection before a single byte of answer arrived (the upstream closed
// it while idle) is retried once on a new one.
type fastPool struct {
	network, addr string
	timeout       time.Duration // until the response headers

	mu     sync.Mutex
	idle   []*fastConn // most recently used last
	closed bool
}

type fastConn struct {
	net.Conn
	raw       syscall.RawConn // for the idle peek; nil when the conn has none
	lr        limitedReader
	br        *bufio.Reader
	bw        *bufio.Writer
	body      upBody // the response being read, kept here to save an allocation
	idleSince int64  // monotonic ns
}

var errPoolClosed = errors.New("upstream pool closed")

func newFastPool(up upstream) *fastPool {
	if up.key.socket != "" {
		return &fastPool{network: "unix", addr: up.key.socket, timeout: up.key.timeout}
	}
	return &fastPool{network: "tcp", addr: up.host, timeout: up.key.timeout}
}

// get returns an idle connection (reused true) or dials a new one.
func (p *fastPool) get(ctx context.Context) (c *fastConn, reused bool, err error) {
	now := monoNow()
	for {
		p.mu.Lock()
		if len(p.idle) == 0 {
			break
		}
		c = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		p.mu.Unlock()
		if now-c.idleSince < int64(idleConnTimeout) && c.quiet() {
			return c, true, nil
		}
		c.Close()
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, false, errPoolClosed
	}
	return p.dial(ctx)
}

func (p *fastPool) dial(ctx context.Context) (*fastConn, bool, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}
	nc, err := d.DialContext(ctx, p.network, p.addr)
	if err != nil {
		return nil, false, err
	}
	c := &fastConn{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.lr.r = nc
	c.br = bufio.NewReaderSize(&c.lr, 8<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, false, nil
}

// quiet reports whether nothing arrived on an idle connection since its
// last response ended: no byte, no end of stream, no error. It peeks at
// the socket without blocking and without consuming (what http.Transport's
// idle read loop learns, without a goroutine per connection).
func (c *fastConn) quiet() bool {
	if c.raw == nil || c.br.Buffered() > 0 {
		return false
	}
	quiet := false
	err := c.raw.Control(func(fd uintptr) {
		var b [1]byte
		for {
			n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			quiet = n <= 0 && err == unix.EAGAIN
			return
		}
	})
	return err == nil && quiet
}

func (p *fastPool) put(c *fastConn) {
	c.idleSince = monoNow()
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerHost {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// close closes the idle connections; those in use are closed when their
// requests end.
func (p *fastPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// prune closes connections idle for longer than idleConnTimeout, and those
// that are no longer quiet (the upstream closed them, or sent something
// unasked).
func (p *fastPool) prune() {
	now := monoNow()
	p.mu.Lock()
	keep := p.idle[:0]
	var old []*fastConn
	for _, c := range p.idle {
		if now-c.idleSince < int64(idleConnTimeout) && c.quiet() {
			keep = append(keep, c)
		} else {
			old = append(old, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, c := range old {
		c.Close()
	}
}

// fastEligible reports whether r can take the fast path: GET or HEAD
// without a body. net/http's HTTP/1 server gives a body-less request
// http.NoBody; its HTTP/2 server always sets a body, with ContentLength 0
// only when the stream ended with the headers or declared
// content-length: 0, which it enforces (a DATA byte more resets the
// stream). A body of unknown length (-1) never takes the fast path.
func fastEligible(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody || r.ProtoMajor == 2) &&
		r.Header["Upgrade"] == nil && strings.IndexByte(r.URL.RawQuery, ';') < 0
}

// hopHeaders are removed in both directions (RFC 9110 7.6.1), with those
// the Connection header names.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// forwardingHeaders are the gateway's to write; the client's are dropped.
var forwardingHeaders = map[string]bool{
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Real-Ip": true, "Content-Length": true, "Host": true,
}

// connectionTokens returns the header names listed in Connection, if any.
func connectionTokens(h http.Header) map[string]bool {
	vv := h["Connection"]
	if len(vv) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, v := range vv {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				m[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	return m
}

// serveFast proxies r through the route's fast pool.
func (g *Gateway) serveFast(st *reqState, w http.ResponseWriter, r *http.Request, rte *route) {
	ctx := r.Context()
	var h *upHead
	var c *fastConn
	for attempt := 0; ; attempt++ {
		var reused bool
		var err error
		if attempt == 0 {
			c, reused, err = rte.fast.get(ctx)
		} else {
			c, reused, err = rte.fast.dial(ctx) // not another idle one: it may be as stale
		}
		if err != nil {
			g.upstreamError(st, w, r, err)
			return
		}
		h, err = g.roundTripFast(st, c, r, rte)
		if err == nil {
			break
		}
		c.Close()
		if reused && attempt == 0 && c.lr.read == 0 && ctx.Err() == nil && !isTimeout(err) {
			continue // the upstream closed it while idle, before answering
		}
		g.upstreamError(st, w, r, err)
		return
	}
	// A body already read in with the headers (most small answers) needs
	// no more waiting on the upstream. Otherwise the exchange may take as
	// long as the body does, and the client hanging up ends it.
	stop := func() bool { return true }
	if h.length < 0 || int64(c.br.Buffered()) < h.length {
		c.SetDeadline(time.Time{})
		stop = context.AfterFunc(ctx, func() { c.SetReadDeadline(aLongTimeAgo) })
	}
	c.body.init(c.br, &c.lr, h)
	complete := copyFast(w, h, &c.body, rte.leaks, rte.rewrite, r)
	// Reuse only a connection in step: the body read to exactly its end,
	// framing that allows it, and not one byte more already received.
	if !stop() || !complete || !h.reusable || c.br.Buffered() > 0 {
		c.Close()
		if !complete {
			panic(http.ErrAbortHandler) // the upstream broke off mid-answer: so do we
		}
		return
	}
	rte.fast.put(c)
}

var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// roundTripFast writes the request and reads the response head.
func (g *Gateway) roundTripFast(st *reqState, c *fastConn, r *http.Request, rte *route) (*upHead, error) {
	if t := rte.fast.timeout; t > 0 {
		c.SetDeadline(time.Now().Add(t))
	} else {
		c.SetDeadline(time.Time{}) // a pooled connection may carry an old one
	}
	bw := c.bw
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(rte.upPath)
	bw.WriteString(r.URL.EscapedPath())
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	conn := connectionTokens(r.Header)
	clientHeader := st.rt.clientIP.header
	for k, vv := range r.Header {
		if hopHeaders[k] || forwardingHeaders[k] || conn[k] || (!st.trusted && k == clientHeader) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	var ab [64]byte
	bw.WriteString("X-Forwarded-For: ")
	if prior := r.Header["X-Forwarded-For"]; st.trusted && len(prior) > 0 {
		for _, p := range prior {
			bw.WriteString(p)
			bw.WriteString(", ")
		}
	}
	bw.Write(st.peer.AppendTo(ab[:0]))
	proto := "https"
	if r.TLS == nil {
		proto = "http"
	}
	if v := r.Header["X-Forwarded-Proto"]; st.trusted && len(v) > 0 {
		proto = v[0]
	}
	bw.WriteString("\r\nX-Forwarded-Proto: ")
	bw.WriteString(proto)
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\nX-Real-Ip: ")
	bw.Write(st.client.AppendTo(ab[:0]))
	bw.WriteString("\r\n\r\n")
	c.lr.reset(maxUpstreamHead)
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	h, err := readHead(c.br, r.Method)
	c.lr.n = math.MaxInt64
	return h, err
}

// copyFast sends the response to the client. It reports whether the body
// was read to exactly its framing end (and the client took all of it).
func copyFast(w http.ResponseWriter, h *upHead, body *upBody, leaks *leakFilter, rw *rewriter, r *http.Request) bool {
	conn := connectionTokens(h.header)
	dst := w.Header()
	for k, vv := range h.header {
		if hopHeaders[k] || conn[k] {
			continue
		}
		dst[k] = vv
	}
	leaks.strip(dst)
	rw.rewrite(dst, r.Host, r.TLS != nil)
	w.WriteHeader(h.status)
	if body.done {
		return true
	}
	if p := body.whole(); p != nil {
		// Most answers are small and came in with the head: one write,
		// no copy buffer.
		_, err := w.Write(p)
		body.consumed()
		return err == nil
	}
	buf := proxyBuffers{}.Get()
	defer proxyBuffers{}.Put(buf)
	streaming := h.length < 0 // event streams and the like: pass on as it comes
	rc := http.NewResponseController(w)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false
			}
			if streaming {
				rc.Flush()
			}
		}
		if err == io.EOF {
			leaks.strip(body.trailer)
			for k, vv := range body.trailer {
				if !hopHeaders[k] {
					dst[http.TrailerPrefix+k] = vv
				}
			}
			return body.done
		}
		if err != nil {
			return false
		}
	}
}

// fastPools hands out fast pools, shared across reloads like transports.
type fastPools struct {
	mu sync.Mutex
	m  map[transportKey]*fastPool
}

func fastKey(up upstream) transportKey {
	k := up.key
	if k.socket == "" {
		k.socket = "tcp:" + up.host
	}
	return k
}

func (fp *fastPools) get(up upstream) *fastPool {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	k := fastKey(up)
	if p := fp.m[k]; p != nil {
		return p
	}
	if fp.m == nil {
		fp.m = map[transportKey]*fastPool{}
	}
	p := newFastPool(up)
	fp.m[k] = p
	return p
}

// retain closes the pools no route uses; nil closes all.
func (fp *fastPools) retain(used map[transportKey]bool) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	for k, p := range fp.m {
		if !used[k] {
			p.close()
			delete(fp.m, k)
		}
	}
}

func (fp *fastPools) prune() {
	fp.mu.Lock()
	pools := make([]*fastPool, 0, len(fp.m))
	for _, p := range fp.m {
		pools = append(pools, p)
	}
	fp.mu.Unlock()
	for _, p := range pools {
		p.prune()
	}
}

// fastTransport is an http.RoundTripper for requests without a body over
// a fast pool, with the fast path's reuse rules: forward_auth asks its
// service on every request, and should neither open a connection each
// time nor trust http.Transport's idle check.
type fastTransport struct{ pool *fastPool }

var errFastBody = errors.New("the upstream client takes no request body here")

func (t fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req.Body.Close()
		return nil, errFastBody
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		var c *fastConn
		var reused bool
		var err error
		if attempt == 0 {
			c, reused, err = t.pool.get(ctx)
		} else {
			c, reused, err = t.pool.dial(ctx)
		}
		if err != nil {
			return nil, err
		}
		h, err := t.exchange(c, req)
		if err != nil {
			c.Close()
			if reused && attempt == 0 && c.lr.read == 0 && ctx.Err() == nil && !isTimeout(err) && req.Method == http.MethodGet {
				continue
			}
			return nil, err
		}
		b := &fastRespBody{c: c, pool: t.pool, h: h, body: newUpBody(c.br, &c.lr, h)}
		b.stop = context.AfterFunc(ctx, func() { c.SetReadDeadline(aLongTimeAgo) })
		resp := &http.Response{
			Status:     strconv.Itoa(h.status) + " " + http.StatusText(h.status),
			StatusCode: h.status,
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        h.header,
			ContentLength: h.length,
			Body:          b,
			Request:       req,
		}
		return resp, nil
	}
}

func (t fastTransport) exchange(c *fastConn, req *http.Request) (*upHead, error) {
	if d := t.pool.timeout; d > 0 {
		c.SetDeadline(time.Now().Add(d))
	} else {
		c.SetDeadline(time.Time{})
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	bw := c.bw
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	conn := connectionTokens(req.Header)
	for k, vv := range req.Header {
		if hopHeaders[k] || conn[k] || k == "Host" || k == "Content-Length" {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	c.lr.reset(maxUpstreamHead)
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	h, err := readHead(c.br, req.Method)
	c.lr.n = math.MaxInt64
	return h, err
}

// fastRespBody returns its connection to the pool when closed after the
// body was read exactly to its end, and closes it otherwise.
type fastRespBody struct {
	c      *fastConn
	pool   *fastPool
	h      *upHead
	body   *upBody
	stop   func() bool
	closed bool
}

func (b *fastRespBody) Read(p []byte) (int, error) { return b.body.Read(p) }

func (b *fastRespBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.stop() && b.body.done && b.h.reusable && b.c.br.Buffered() == 0 {
		b.pool.put(b.c)
		return nil
	}
	return b.c.Close()
}
