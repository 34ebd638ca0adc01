package gateway

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// rewriter turns an upstream's own address, where an answer names it, into
// the public host the client asked for: Location, Content-Location and
// Refresh URLs (what nginx's `proxy_redirect default` does) and the Domain
// of Set-Cookie. An application that builds absolute URLs from its listen
// address would otherwise tell every client where it lives
// (Location: http://127.0.0.1:3000/login).
type rewriter struct {
	host     string // the upstream's host[:port] as configured, lower case
	hostname string // without the port
	hostport string // with the scheme's default port made explicit
	base     string // the upstream's base path, removed from rewritten paths
}

// newRewriter returns nil when there is nothing to rewrite (a unix socket).
func newRewriter(scheme, host, base string) *rewriter {
	if host == "" || host == "unix" {
		return nil
	}
	rw := &rewriter{host: strings.ToLower(host), base: base}
	rw.hostname = rw.host
	if h, _, err := net.SplitHostPort(rw.host); err == nil {
		rw.hostname = h
		rw.hostport = rw.host
	} else {
		port := "80"
		if scheme == "https" {
			port = "443"
		}
		rw.hostport = net.JoinHostPort(rw.host, port)
		rw.hostname = strings.Trim(rw.host, "[]")
	}
	return rw
}

var rewrittenURLHeaders = []string{"Location", "Content-Location"}

// rewrite edits h in place for a client that asked for publicHost.
func (rw *rewriter) rewrite(h http.Header, publicHost string, tls bool) {
	if rw == nil {
		return
	}
	scheme := "https"
	if !tls {
		scheme = "http"
	}
	for _, k := range rewrittenURLHeaders {
		vv := h[k]
		for i, v := range vv {
			if nv, ok := rw.url(v, scheme, publicHost); ok {
				if i == 0 {
					vv = append([]string(nil), vv...) // the upstream's slice may be shared
					h[k] = vv
				}
				vv[i] = nv
			}
		}
	}
	if vv := h["Refresh"]; len(vv) > 0 {
		out := make([]string, len(vv))
		for i, v := range vv {
			out[i] = rw.refresh(v, scheme, publicHost)
		}
		h["Refresh"] = out
	}
	if vv := h["Set-Cookie"]; len(vv) > 0 {
		out := make([]string, len(vv))
		for i, v := range vv {
			out[i] = rw.cookie(v, publicHost)
		}
		h["Set-Cookie"] = out
	}
}

// url rewrites an absolute (or scheme-relative) URL naming the upstream.
func (rw *rewriter) url(v, scheme, publicHost string) (string, bool) {
	rest, ok := "", false
	for _, p := range []string{"http://", "https://", "//"} {
		if len(v) >= len(p) && strings.EqualFold(v[:len(p)], p) {
			rest, ok = v[len(p):], true
			break
		}
	}
	if !ok {
		return v, false
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := strings.ToLower(rest[:end])
	if authority != rw.host && authority != rw.hostport {
		return v, false
	}
	path := rest[end:]
	if rw.base != "" && strings.HasPrefix(path, rw.base) && (len(path) == len(rw.base) || strings.IndexByte("/?#", path[len(rw.base)]) >= 0) {
		path = path[len(rw.base):]
	}
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	return scheme + "://" + publicHost + path, true
}

// refresh rewrites the URL of "5; url=http://…".
func (rw *rewriter) refresh(v, scheme, publicHost string) string {
	i := strings.Index(strings.ToLower(v), "url=")
	if i < 0 {
		return v
	}
	u := strings.TrimSpace(v[i+4:])
	quote := ""
	if len(u) > 0 && (u[0] == '\'' || u[0] == '"') {
		quote = u[:1]
		u = strings.TrimSuffix(u[1:], quote)
	}
	if nv, ok := rw.url(u, scheme, publicHost); ok {
		return v[:i+4] + quote + nv + quote
	}
	return v
}

// cookie rewrites a Domain attribute naming the upstream's host to the
// public host's name.
func (rw *rewriter) cookie(v, publicHost string) string {
	parts := strings.Split(v, ";")
	changed := false
	for i := 1; i < len(parts); i++ {
		a := strings.TrimSpace(parts[i])
		name, val, _ := strings.Cut(a, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "domain") {
			continue
		}
		d := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(val), "."))
		if d == rw.hostname || d == rw.host {
			ph := publicHost
			if h, _, err := net.SplitHostPort(ph); err == nil {
				ph = h
			}
			parts[i] = " Domain=" + ph
			changed = true
		}
	}
	if !changed {
		return v
	}
	return strings.Join(parts, ";")
}

// upstreamRewriter is the rewriter for an upstream URL as configured.
func upstreamRewriter(up upstream) *rewriter {
	return newRewriter(up.scheme, up.host, up.path)
}

// urlRewriter is the rewriter for a service URL (forward_auth).
func urlRewriter(s string) *rewriter {
	u, err := url.Parse(s)
	if err != nil {
		return nil
	}
	return newRewriter(u.Scheme, u.Host, "")
}
