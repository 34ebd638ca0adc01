package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A front is one listening socket. Its accept loop hands connections to the
// current generation, an http.Server. Reload starts a new generation when
// the server's own settings change (header size and timeouts): the old one
// stops receiving connections but keeps serving the ones it has, so no
// request or keep-alive connection is cut.
type front struct {
	name string // "http" or "https"
	addr string // as configured
	ln   net.Listener
	tls  *tls.Config // nil for plain HTTP
	g    *Gateway

	cur  atomic.Pointer[generation]
	mu   sync.Mutex
	gens []*generation // every generation started, for the final shutdown
}

// generation is an http.Server and the net.Listener it serves from.
type generation struct {
	f     *front
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (g *Gateway) listen(name, addr string, tlsCfg *tls.Config) (*front, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gateway %s listener: %w (another web server on this port? the gateway must own it)", name, err)
	}
	return &front{name: name, addr: addr, ln: ln, tls: tlsCfg, g: g}, nil
}

func (f *front) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// newGeneration makes an http.Server for the front with cfg's limits.
func (f *front) newGeneration(cfg Config) *generation {
	g := f.g
	gn := &generation{f: f, conns: make(chan net.Conn), done: make(chan struct{})}
	l := cfg.Limits
	var tc *tls.Config
	if f.tls != nil {
		// Each server gets its own copy: Serve configures HTTP/2 by writing
		// to it, and two generations may start at once.
		tc = f.tls.Clone()
	}
	gn.srv = &http.Server{
		Handler:           handler{g: g, tls: f.tls != nil},
		TLSConfig:         tc,
		ReadHeaderTimeout: l.HeaderTimeout.D(),
		IdleTimeout:       l.IdleTimeout.D(),
		MaxHeaderBytes:    int(l.HeaderBytes),
		ErrorLog:          log.New(serverLog{g}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return g.baseCtx },
		// "OPTIONS *" must reach the handler, which drops unknown hosts;
		// net/http would otherwise answer it for any Host.
		DisableGeneralOptionsHandler: true,
	}
	if f.tls == nil {
		// Port 80 answers one request per connection (a redirect or an
		// ACME challenge): then screenHead sees every request head, and
		// none reaches net/http unscreened.
		gn.srv.SetKeepAlivesEnabled(false)
	}
	return gn
}

// serverChanged reports whether a and b need different http.Servers.
func serverChanged(a, b Config) bool {
	return a.Limits.HeaderBytes != b.Limits.HeaderBytes || a.Limits.HeaderTimeout != b.Limits.HeaderTimeout || a.Limits.IdleTimeout != b.Limits.IdleTimeout
}

// start makes gn current and serves it. The previous generation, if any,
// stops receiving connections.
func (f *front) start(gn *generation) {
	f.mu.Lock()
	f.gens = append(f.gens, gn)
	f.mu.Unlock()
	old := f.cur.Swap(gn)
	go gn.srv.Serve(gn)
	if old != nil {
		old.Close()
	}
}

// acceptLoop runs until the socket is closed.
func (f *front) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		f.hand(c)
	}
}

// hand gives c to the current generation, or closes it when the front is
// shutting down.
func (f *front) hand(c net.Conn) {
	for {
		gn := f.cur.Load()
		select {
		case gn.conns <- c:
			return
		case <-gn.done:
			if f.cur.Load() == gn {
				c.Close()
				return
			}
		}
	}
}

// Accept implements net.Listener for the generation's server.
func (gn *generation) Accept() (net.Conn, error) {
	select {
	case c := <-gn.conns:
		g, srv := gn.f.g, gn.srv
		if gn.f.tls == nil {
			return &screenConn{Conn: c, limit: srv.ReadHeaderTimeout, screen: func(c net.Conn) ([]byte, bool) {
				return g.screenHead(c, srv.MaxHeaderBytes)
			}}, nil
		}
		return tls.Server(&screenConn{Conn: c, limit: srv.ReadHeaderTimeout, screen: g.screenHello}, srv.TLSConfig), nil
	case <-gn.done:
		return nil, net.ErrClosed
	}
}

// Close stops the generation receiving connections; the socket stays open.
func (gn *generation) Close() error {
	gn.once.Do(func() { close(gn.done) })
	return nil
}

func (gn *generation) Addr() net.Addr { return gn.f.ln.Addr() }

// serverLog receives net/http's own log lines: failed TLS handshakes are
// counted (scanners make plenty), anything else is logged, rate-limited.
type serverLog struct{ g *Gateway }

func (s serverLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		s.g.metrics.tlsErrors.Inc()
		return len(p), nil
	}
	if s.g.logLimit.allow() {
		s.g.log.Warn("http server", "msg", string(bytes.TrimSpace(p)))
	}
	return len(p), nil
}

// logLimit lets through one log line per interval: logs on the request
// path must not become an attacker's disk-filling tool.
type logLimit struct {
	every time.Duration
	last  atomic.Int64
}

func (l *logLimit) allow() bool {
	now := monoNow()
	last := l.last.Load()
	if last != 0 && now-last < int64(l.every) {
		return false
	}
	return l.last.CompareAndSwap(last, now)
}
