package gateway

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"time"
)

// forwardAuth asks an auth service (Authelia, Authentik, oauth2-proxy)
// about each request, the way their nginx and Traefik integrations do: a
// GET to the verify URL carrying the client's headers and X-Forwarded-*
// headers written by the gateway alone. A 2xx lets the request through,
// with the configured response headers copied onto it; any other answer
// (401, 302 to the login page, …) goes back to the client as it is.
type forwardAuth struct {
	url    string
	copy   []string // canonical names of headers copied from a 2xx
	client *http.Client
	leaks  *leakFilter
	rw     *rewriter // the service's own address in its redirects, made public
}

const (
	forwardAuthTimeout = 10 * time.Second
	forwardAuthMaxBody = 1 << 20 // of a non-2xx answer relayed to the client
)

// forwardAuthDrop are request headers never sent to the auth service:
// hop-by-hop headers, and everything that could make the service believe
// something about the request that the gateway did not say.
var forwardAuthDrop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Proxy-Authenticate", "Content-Length", "Content-Type", "Expect",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
	"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl",
	"X-Original-Url", "X-Original-Uri", "X-Original-Method", "X-Real-Ip",
}

func newForwardAuth(cfg *ForwardAuth, t http.RoundTripper, leaks *leakFilter) *forwardAuth {
	f := &forwardAuth{
		url:   cfg.URL,
		leaks: leaks,
		rw:    urlRewriter(cfg.URL),
		client: &http.Client{
			Transport: t,
			Timeout:   forwardAuthTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is the answer, for the client
			},
		},
	}
	for _, h := range cfg.ResponseHeaders {
		f.copy = append(f.copy, http.CanonicalHeaderKey(h))
	}
	return f
}

// check asks the auth service. It returns true to let r through (with the
// copied headers set on r); otherwise it has answered the client.
func (f *forwardAuth) check(w http.ResponseWriter, r *http.Request, client netip.Addr, clientHeader string) bool {
	// The client may not name its own user: these come from the service.
	for _, h := range f.copy {
		delete(r.Header, h)
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardAuthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		plain(w, http.StatusBadGateway)
		return false
	}
	for k, vv := range r.Header {
		req.Header[k] = vv
	}
	for _, h := range forwardAuthDrop {
		delete(req.Header, h)
	}
	delete(req.Header, clientHeader)
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	uri := r.URL.RequestURI()
	req.Header.Set("X-Forwarded-Method", r.Method)
	req.Header.Set("X-Forwarded-Proto", scheme)
	req.Header.Set("X-Forwarded-Host", r.Host)
	req.Header.Set("X-Forwarded-Uri", uri)
	req.Header.Set("X-Forwarded-For", client.String())
	// Authelia's auth-request endpoint and oauth2-proxy read these.
	req.Header.Set("X-Original-Method", r.Method)
	req.Header.Set("X-Original-Url", scheme+"://"+r.Host+uri)

	resp, err := f.client.Do(req)
	if err != nil {
		plain(w, http.StatusBadGateway)
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		for _, h := range f.copy {
			if vv := resp.Header[h]; len(vv) > 0 {
				r.Header[h] = vv
			}
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, forwardAuthMaxBody))
		return true
	}
	dst := w.Header()
	for k, vv := range resp.Header {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length":
			continue
		}
		dst[k] = vv
	}
	f.leaks.strip(dst)
	f.rw.rewrite(dst, r.Host, r.TLS != nil)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, io.LimitReader(resp.Body, forwardAuthMaxBody))
	return false
}
