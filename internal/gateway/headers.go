package gateway

import (
	"net/http"
	"slices"
	"strings"
)

// defaultSecurityHeaders are sent on every answer of a site unless the
// upstream set them itself (it knows its pages best) or the config removes
// them. HSTS is added separately, on HTTPS answers only.
var defaultSecurityHeaders = map[string]string{
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "strict-origin-when-cross-origin",
	"X-Frame-Options":        "SAMEORIGIN",
}

// defaultHSTS is a year, without includeSubDomains: other names under the
// same domain may not be served over HTTPS, and only the operator knows.
const defaultHSTS = "max-age=31536000"

// DefaultStripHeaders name the software, versions, caches and addresses
// behind the gateway; they are removed from every upstream answer (and
// from a forward_auth service's answers to the client). A trailing * makes
// a prefix. gateway.strip_headers adds to them; a route's pass_headers
// lets some through (Server-Timing for a route whose developers want it).
var DefaultStripHeaders = []string{
	"Server", "X-Powered-By", "Via", "X-AspNet*", "X-Runtime", "X-Generator",
	"X-Drupal-*", "X-Varnish*", "X-Backend-*", "X-Upstream*", "X-Turbo-Charged-By",
	"X-Mod-Pagespeed", "X-Page-Speed", "Server-Timing", "X-Debug-Token*", "X-Served-By",
}

// leakFilter removes the strip-list's headers from an answer.
type leakFilter struct {
	exact    map[string]bool // lower case
	prefixes []string        // lower case
	pass     *leakFilter     // what the route lets through after all
}

func newLeakFilter(strip, pass []string) *leakFilter {
	f := compileNames(strip)
	if len(pass) > 0 {
		f.pass = compileNames(pass)
	}
	return f
}

func compileNames(names []string) *leakFilter {
	f := &leakFilter{exact: map[string]bool{}}
	for _, n := range names {
		n = strings.ToLower(n)
		if p, ok := strings.CutSuffix(n, "*"); ok {
			f.prefixes = append(f.prefixes, p)
		} else {
			f.exact[n] = true
		}
	}
	return f
}

func (f *leakFilter) match(k string) bool {
	var lb [64]byte
	l := lowerASCII(lb[:0], k)
	if f.exact[string(l)] {
		return true
	}
	for _, p := range f.prefixes {
		if len(l) >= len(p) && string(l[:len(p)]) == p {
			return true
		}
	}
	return false
}

// strip deletes the listed headers from h.
func (f *leakFilter) strip(h http.Header) {
	for k := range h {
		if f.match(k) && (f.pass == nil || !f.pass.match(k)) {
			delete(h, k)
		}
	}
}

func lowerASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// validHeaderPattern accepts a header name, or a prefix of one ending in *.
func validHeaderPattern(s string) bool {
	return validHeaderName(strings.TrimSuffix(s, "*"))
}

// headerSet is a route's response headers, resolved once at build.
type headerSet struct {
	keys []string   // canonical names
	vals [][]string // one-element slices with no spare capacity, safe to share
	hsts []string   // Strict-Transport-Security value, nil when off
}

// newHeaderSet merges the defaults, the gateway's headers and the route's;
// an empty value removes the header.
func newHeaderSet(hsts bool, layers ...map[string]string) headerSet {
	m := map[string]string{}
	for k, v := range defaultSecurityHeaders {
		m[k] = v
	}
	if hsts {
		m["Strict-Transport-Security"] = defaultHSTS
	}
	for _, l := range layers {
		for k, v := range l {
			m[http.CanonicalHeaderKey(k)] = v
		}
	}
	var hs headerSet
	if v := m["Strict-Transport-Security"]; v != "" {
		hs.hsts = []string{v}
	}
	delete(m, "Strict-Transport-Security")
	for k, v := range m {
		if v != "" {
			hs.keys = append(hs.keys, k)
		}
	}
	slices.Sort(hs.keys)
	for _, k := range hs.keys {
		hs.vals = append(hs.vals, []string{m[k]}[:1:1])
	}
	return hs
}

// fill sets each header h lacks. tls adds HSTS, which must not be sent over
// plain HTTP.
func (hs *headerSet) fill(h http.Header, tls bool) {
	for i, k := range hs.keys {
		if _, ok := h[k]; !ok {
			h[k] = hs.vals[i]
		}
	}
	if tls && hs.hsts != nil {
		if _, ok := h["Strict-Transport-Security"]; !ok {
			h["Strict-Transport-Security"] = hs.hsts
		}
	}
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
