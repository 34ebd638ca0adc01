package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Upstream transport tuning. One transport is shared by every route that
// proxies over TCP with the same timeout (and one per unix socket), and
// survives reloads.
//
// The transports never reuse a connection. http.Transport notices bytes
// an upstream sends unasked only from its per-connection read loop, which
// races the next request taking the idle connection: an upstream that
// sends more than it announced, a little late, gets its extra answer
// delivered to the next client (TestHostileUpstreamDifferential shows it).
// The bulk of traffic takes the fast path, whose pool checks every
// connection before reuse (as does forward_auth's to a plain-HTTP
// service); what goes through a transport (request bodies, upgrades, https
// upstreams, or everything with fast_path: false) pays a new connection
// instead, as nginx does by default.
const (
	dialTimeout       = 5 * time.Second
	tcpKeepAlive      = 30 * time.Second
	maxIdleConns      = 4096
	maxIdlePerHost    = 512 // the pool per upstream: enough for a busy site's concurrency
	idleConnTimeout   = 90 * time.Second
	tlsHandshakeLimit = 10 * time.Second
)

type transportKey struct {
	socket  string        // unix socket path, "" for TCP
	timeout time.Duration // response header timeout
}

// transports hands out shared upstream transports.
type transports struct {
	mu sync.Mutex
	m  map[transportKey]*http.Transport
}

func (ts *transports) get(k transportKey) *http.Transport {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.m[k]; t != nil {
		return t
	}
	if ts.m == nil {
		ts.m = map[transportKey]*http.Transport{}
	}
	t := newTransport(k)
	ts.m[k] = t
	return t
}

// retain closes the transports no route uses any more.
func (ts *transports) retain(used map[transportKey]bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for k, t := range ts.m {
		if !used[k] {
			t.CloseIdleConnections()
			delete(ts.m, k)
		}
	}
}

func (ts *transports) closeAll() {
	ts.retain(nil)
}

func newTransport(k transportKey) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}
	dial := d.DialContext
	if k.socket != "" {
		sock := k.socket
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
	}
	return &http.Transport{
		Proxy:                 nil, // never the environment's proxy
		DialContext:           dial,
		DisableKeepAlives:     true,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   tlsHandshakeLimit,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: k.timeout,
		DisableCompression:    true, // pass Accept-Encoding and bodies through untouched
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// upstream is where a route sends requests.
type upstream struct {
	scheme, host, path string // path is a base path prefixed to requests
	key                transportKey
}

func parseUpstream(s string, timeout time.Duration) (upstream, error) {
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		// The URL host is a placeholder: the dialer ignores it, and the
		// Host header is the client's.
		return upstream{scheme: "http", host: "unix", key: transportKey{socket: p, timeout: timeout}}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return upstream{}, err
	}
	return upstream{scheme: u.Scheme, host: u.Host, path: strings.TrimSuffix(u.Path, "/"), key: transportKey{timeout: timeout}}, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// proxyBuffers lends ReverseProxy its copy buffers.
type proxyBuffers struct{}

func (proxyBuffers) Get() []byte  { return *bufPool.Get().(*[]byte) }
func (proxyBuffers) Put(b []byte) { bufPool.Put(&b) }

var discardLog = log.New(io.Discard, "", 0)

// newReverseProxy builds a route's proxy. The request's state (client,
// peer, trust) travels in its context, set by the handler.
func newReverseProxy(up upstream, t http.RoundTripper, websocket bool, onError func(http.ResponseWriter, *http.Request, error), leaks *leakFilter, rw *rewriter) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			in, out := pr.In, pr.Out
			out.URL.Scheme = up.scheme
			out.URL.Host = up.host
			if up.path != "" {
				out.URL.Path = up.path + out.URL.Path
				if out.URL.RawPath != "" {
					out.URL.RawPath = up.path + out.URL.RawPath
				}
			}
			out.Host = in.Host // the application sees the name the client asked for
			st := stateOf(in)
			h := out.Header
			if !st.trusted {
				delete(h, st.rt.clientIP.header)
			}
			h["X-Forwarded-For"] = []string{forwardedFor(in.Header, st.peer, st.trusted)}
			proto := "https"
			if in.TLS == nil {
				proto = "http"
			}
			if v := in.Header["X-Forwarded-Proto"]; st.trusted && len(v) > 0 {
				proto = v[0]
			}
			h["X-Forwarded-Proto"] = []string{proto}
			h["X-Forwarded-Host"] = []string{in.Host}
			h["X-Real-Ip"] = []string{st.client.String()}
			if !websocket {
				delete(h, "Upgrade")
				delete(h, "Connection")
			}
		},
		Transport:     t,
		BufferPool:    proxyBuffers{},
		ErrorLog:      discardLog,
		ErrorHandler:  onError,
		FlushInterval: 0, // streaming responses (no length, event streams) flush at once anyway
		ModifyResponse: func(res *http.Response) error {
			leaks.strip(res.Header)
			if st := stateOf(res.Request); st != nil {
				rw.rewrite(res.Header, st.req.Host, st.tls)
			}
			if len(res.Trailer) > 0 && res.StatusCode != http.StatusSwitchingProtocols {
				// Trailers arrive with the body's end; ReverseProxy copies
				// them after reading it.
				res.Body = &trailerStrip{ReadCloser: res.Body, res: res, leaks: leaks}
			}
			return nil
		},
	}
}

// isClientGone reports whether err is the client hanging up, not the
// upstream failing.
func isClientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// trailerStrip removes the strip-list's headers from a response's trailers
// once the body has ended and they are known.
type trailerStrip struct {
	io.ReadCloser
	res   *http.Response
	leaks *leakFilter
}

func (t *trailerStrip) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		t.leaks.strip(t.res.Trailer)
	}
	return n, err
}
