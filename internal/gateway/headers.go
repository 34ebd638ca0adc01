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

// leakyHeaders name the software and version behind the gateway; they are
// removed from every upstream answer.
var leakyHeaders = []string{"Server", "X-Powered-By", "X-Aspnet-Version", "X-Aspnetmvc-Version", "X-Runtime", "X-Generator"}

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

// stripLeaks removes headers that name the software behind the gateway.
func stripLeaks(h http.Header) {
	for _, k := range leakyHeaders {
		delete(h, k)
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
