package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// reqState is one request's state. It is also the request's context (the
// parent's values and cancellation, plus itself under stateKey), which
// saves an allocation on the hot path.
type reqState struct {
	context.Context
	rt      *snapshot
	req     *http.Request // as received, for the log
	w       respWriter
	start   time.Time
	host    string
	site    *site
	route   *route // the route the request matched, for metrics and the log
	hs      *headerSet
	client  netip.Addr
	peer    netip.Addr
	trusted bool
	tls     bool
	dropped bool
	depth   int   // 1 while answering as the site's 404 through its fallback route
	bodyErr error // why reading the client's body failed, if it did
	denied  string
	user    string
}

type stateKey struct{}

func (st *reqState) Value(k any) any {
	if k == (stateKey{}) {
		return st
	}
	return st.Context.Value(k)
}

func stateOf(r *http.Request) *reqState {
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	return st
}

// drop closes the connection without an answer (an HTTP/2 stream is reset
// instead). net/http writes nothing for a handler that panics with
// ErrAbortHandler before writing.
func (st *reqState) drop() {
	st.dropped = true
	panic(http.ErrAbortHandler)
}

// respWriter records the status and size of the answer and adds the
// route's headers to it.
type respWriter struct {
	http.ResponseWriter
	st     *reqState
	status int
	bytes  int64
	wrote  bool
}

func (w *respWriter) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An upstream's 103 Early Hints (passed on by ReverseProxy) is
		// cleaned like its final answer.
		if rte := w.st.route; rte != nil {
			h := w.ResponseWriter.Header()
			rte.leaks.strip(h)
			rte.rewrite.rewrite(h, w.st.req.Host, w.st.tls)
		}
	}
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.wrote = true
		w.status = code
		if hs := w.st.hs; hs != nil {
			hs.fill(w.ResponseWriter.Header(), w.st.tls)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// notFoundProbe is a path the site's 404 is fetched with: fresh for each
// replay, so it exists in no application, and an application whose 404
// page echoes the path shows no recurring odd path to tell refusals by.
func notFoundProbe() string {
	var b [12]byte
	rand.Read(b[:])
	var out [1 + 2*len(b)]byte
	out[0] = '/'
	hex.Encode(out[1:], b[:])
	return string(out[:])
}

type handler struct {
	g   *Gateway
	tls bool
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.g.serve(w, r, h.tls) }

// serve is every request's path. The order of checks is documented in the
// package comment; each is cheaper than the next.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, tls bool) {
	rt := g.rt.Load()
	st := &reqState{Context: r.Context(), rt: rt, req: r, start: time.Now(), tls: tls}
	st.w = respWriter{ResponseWriter: w, st: st}
	defer g.finish(st)
	st.client, st.peer, st.trusted = rt.clientIP.resolve(r)
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// A chunked HTTP/1 request may have come with a Content-Length
		// that net/http dropped: RFC 9112 6.1 says close after answering,
		// so that no proxy in front can be desynchronised.
		w.Header()["Connection"] = connClose
	}
	st.host = normalizeHost(r.Host)
	s := rt.lookup(st.host)
	st.site = s
	clean := cleanPath(r.URL.Path)
	trap := rt.honeypot(clean)
	if trap {
		g.report(st, FailureHoneypot, "honeypot "+truncate(clean, 128))
	}
	if s == nil {
		g.metrics.dropped.WithLabelValues(dropUnknownHost).Inc()
		st.drop()
	}
	st.hs = &s.headers
	if !tls {
		g.serveInsecure(st, r)
		return
	}
	if trap {
		st.denied = reasonHoneypot
		s.m.deny(reasonHoneypot)
		g.notFound(st, r)
		return
	}
	rte, clean, ambiguous := s.route(r.URL.Path)
	if clean != r.URL.Path {
		r.URL.Path, r.URL.RawPath = clean, ""
	}
	switch {
	case !forwardable(r.Method):
		// TRACE echoes what reached the application (cookies and headers
		// added on the way in); CONNECT would make the gateway a tunnel.
		// Refused the way the route refuses, or as the site's 404.
		if rte == nil {
			rte = s.fallback
		}
		if rte == nil {
			st.denied = reasonMethod
			s.m.deny(reasonMethod)
			plain(&st.w, http.StatusNotFound)
			return
		}
		st.route = rte
		st.hs = &rte.headers
		g.deny(st, r, rte, reasonMethod)
	case ambiguous:
		st.denied = reasonAmbiguous
		s.m.deny(reasonAmbiguous)
		g.notFound(st, r)
	case rte == nil:
		plain(&st.w, http.StatusNotFound)
	default:
		st.route = rte
		g.serveRoute(st, r, rte)
	}
}

// serveInsecure answers port 80: ACME HTTP-01 challenges, and a permanent
// redirect to HTTPS for everything else.
func (g *Gateway) serveInsecure(st *reqState, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") && st.rt.acmeHosts[st.site.host] {
		if a := g.acme.Load(); a != nil && a.handleHTTP(&st.w, r) {
			return
		}
	}
	u := "https://" + st.host
	if p := g.httpsPort.Load(); p != nil {
		u += ":" + *p
	}
	w := &st.w
	w.Header()["Location"] = []string{u + r.URL.RequestURI()}
	w.Header()["Content-Length"] = zeroLength
	w.WriteHeader(http.StatusPermanentRedirect)
}

var (
	zeroLength = []string{"0"}
	connClose  = []string{"close"}
)

// clientBody notes why reading the client's body failed, so that the
// answer blames the client (400, 408, 413), not the upstream.
type clientBody struct {
	io.ReadCloser
	st *reqState
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.st.bodyErr == nil {
		b.st.bodyErr = err
	}
	return n, err
}

// serveRoute runs a route's policies in order, then proxies.
func (g *Gateway) serveRoute(st *reqState, r *http.Request, rte *route) {
	st.hs = &rte.headers
	if b := g.deps.Bans; b != nil && b.Contains(st.client) {
		g.deny(st, r, rte, reasonBan)
		return
	}
	if !rte.allowAll && !inPrefixes(rte.allow, st.client) {
		g.deny(st, r, rte, reasonAllowlist)
		return
	}
	if rte.geo != nil && !rte.geo.permits(g.deps.Geo, st.client) {
		g.deny(st, r, rte, reasonGeo)
		return
	}
	if rte.limit != nil {
		if ok, wait, report := rte.limit.take(st.client, g.now()); !ok {
			st.markDenied(rte, reasonRateLimit)
			if report {
				g.report(st, FailureRateLimit, "rate limit of "+rte.site.host+rte.path)
			}
			if rte.limitDrop {
				st.drop()
			}
			st.w.Header()["Retry-After"] = []string{strconv.Itoa(int(math.Ceil(wait.Seconds())))}
			plain(&st.w, http.StatusTooManyRequests)
			return
		}
	}
	if rte.basic != nil {
		res, user, report := rte.basic.check(&st.w, r, st.client)
		if report {
			g.report(st, FailureAuth, "basic auth of "+rte.site.host+rte.path+" failed for user "+strconvQuote(truncate(user, 64)))
		}
		if res != authOK {
			if res == authFailed || res == authThrottled {
				st.markDenied(rte, reasonAuth)
			}
			return
		}
		if st.depth == 0 {
			st.user = user
		}
	}
	if rte.forward != nil && !rte.forward.check(&st.w, r, st.client, st.rt.clientIP.header) {
		return
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		limits := st.rt.cfg.Limits
		if r.ContentLength > int64(limits.BodyBytes) {
			plain(&st.w, http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = &clientBody{ReadCloser: http.MaxBytesReader(&st.w, r.Body, int64(limits.BodyBytes)), st: st}
		if r.Header["Upgrade"] == nil {
			http.NewResponseController(&st.w).SetReadDeadline(time.Now().Add(limits.BodyTimeout.D()))
		}
	}
	if rte.fast != nil && fastEligible(r) {
		g.serveFast(st, &st.w, r, rte)
		return
	}
	// ReverseProxy's callbacks find the request's state in its context.
	rte.proxy.ServeHTTP(&st.w, r.WithContext(st))
}

func (st *reqState) markDenied(rte *route, reason string) {
	if st.depth == 0 {
		st.denied = reason
		rte.m.deny(reason)
	}
}

// deny answers a request a policy refused: the route's drop, or the site's
// own 404.
func (g *Gateway) deny(st *reqState, r *http.Request, rte *route, reason string) {
	st.markDenied(rte, reason)
	if rte.drop {
		st.drop()
	}
	g.notFound(st, r)
}

// notFound answers exactly as the site answers a path that does not exist:
// the request goes on, as a GET of a random path without body or query,
// through the route such a path takes (with that route's policies), or
// gets the gateway's own 404 when no route takes it. A client therefore
// cannot tell a refused route from a missing one by status, headers, body
// or timing.
func (g *Gateway) notFound(st *reqState, r *http.Request) {
	fb := st.site.fallback
	if fb == nil || st.depth > 0 {
		st.hs = &st.site.headers
		plain(&st.w, http.StatusNotFound)
		return
	}
	st.depth++
	probe := new(http.Request)
	*probe = *r
	if !forwardable(r.Method) {
		probe.Method = http.MethodGet
	}
	path := notFoundProbe()
	u := *r.URL
	u.Scheme, u.Host, u.Opaque, u.User = "", "", "", nil
	u.Path, u.RawPath, u.RawQuery, u.ForceQuery = path, "", "", false
	probe.URL = &u
	probe.RequestURI = path
	probe.Body, probe.ContentLength, probe.TransferEncoding = http.NoBody, 0, nil
	probe.Header = r.Header.Clone()
	for _, h := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Expect"} {
		delete(probe.Header, h)
	}
	g.serveRoute(st, probe, fb)
}

// forwardable reports whether a request of method may reach an upstream.
func forwardable(method string) bool {
	return method != http.MethodTrace && method != http.MethodConnect
}

// finish records the request in the metrics and the access log, including
// requests that end in a panic (a drop, or an upstream failing mid-answer).
func (g *Gateway) finish(st *reqState) {
	p := recover()
	if p != nil && !st.w.wrote {
		st.dropped = true
	}
	if st.w.status == 0 && !st.dropped {
		st.w.status = http.StatusSwitchingProtocols // hijacked by an upgrade
	}
	if st.dropped {
		st.w.status = 444 // nginx's name for "closed without an answer"
	}
	now := time.Now()
	var rm *routeMetrics
	if st.route != nil {
		rm = st.route.m
	} else if st.site != nil {
		rm = st.site.m
	}
	if rm != nil {
		if st.dropped {
			rm.codes[0].Inc()
		} else {
			rm.count(st.w.status)
		}
		rm.dur.Observe(now.Sub(st.start).Seconds())
	}
	if l := st.rt.log; l != nil {
		l.logRequest(st, now)
	}
	if p != nil {
		panic(p)
	}
}

// Failure kinds reported to Deps.Failures: the guard's filter.Kind names,
// so the daemon can pass them through unchanged.
const (
	FailureHoneypot  = "honeypot"  // a request for a honeypot path
	FailureAuth      = "http-auth" // wrong basic auth credentials
	FailureRateLimit = "limit-req" // a rate limit tripped
)

// report hands a failure to the guard. A trusted proxy is never reported:
// banning it would ban everyone behind it.
func (g *Gateway) report(st *reqState, kind, detail string) {
	if !st.client.IsValid() || (st.trusted && st.rt.clientIP.isTrusted(st.client)) {
		return
	}
	g.failCount[kind].Inc()
	if f := g.deps.Failures; f != nil {
		f.Report(Failure{Addr: st.client, Time: time.Now(), Kind: kind, Detail: detail})
	}
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
)

type cannedBody struct {
	body   []byte
	length []string
}

var canned = map[int]cannedBody{}

func init() {
	for _, c := range []int{400, 401, 404, 408, 413, 429, 502, 503} {
		b := []byte(strconv.Itoa(c) + " " + http.StatusText(c) + "\n")
		canned[c] = cannedBody{body: b, length: []string{strconv.Itoa(len(b))}}
	}
}

// plain writes one of the gateway's own short answers. Every one of them
// comes from here, so two answers of one status are byte-identical.
func plain(w http.ResponseWriter, code int) {
	c, ok := canned[code]
	if !ok {
		c.body = []byte(strconv.Itoa(code) + " " + http.StatusText(code) + "\n")
		c.length = []string{strconv.Itoa(len(c.body))}
	}
	h := w.Header()
	h["Content-Type"] = textPlain
	h["X-Content-Type-Options"] = noSniff
	h["Content-Length"] = c.length
	w.WriteHeader(code)
	w.Write(c.body)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func strconvQuote(s string) string { return strconv.Quote(s) }
