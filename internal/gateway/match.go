package gateway

import (
	"net/netip"
	"path"
	"strings"
)

// normalizeHost turns a Host header or SNI value into the form sites are
// keyed by: lower case, without port or trailing dot. It allocates only when
// the input is not already in that form.
func normalizeHost(h string) string {
	if strings.HasPrefix(h, "[") {
		// An IPv6 literal: never a site, but kept recognisable.
		j := strings.IndexByte(h, ']')
		if j < 0 {
			return ""
		}
		a, err := netip.ParseAddr(h[1:j])
		if err != nil {
			return ""
		}
		return a.String()
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[:i], ':') < 0 {
		h = h[:i]
	}
	h = strings.TrimRight(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// wildcardOf returns the wildcard name covering host ("*.example.com" for
// "a.example.com"), or "" when host has fewer than three labels.
func wildcardOf(host string) string {
	i := strings.IndexByte(host, '.')
	if i <= 0 || strings.IndexByte(host[i+1:], '.') < 0 {
		return ""
	}
	return "*" + host[i:]
}

// hasPrefixFold reports whether s begins with prefix, comparing ASCII
// letters without regard to case. prefix must be lower case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// cleanPath returns p with dot segments resolved and repeated slashes merged,
// keeping a trailing slash; a path that is already clean is returned as is,
// without allocating.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	if isClean(p) {
		return p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// isClean reports whether p (starting with /) has no empty, "." or ".."
// segments.
func isClean(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		rest := p[i+1:]
		switch {
		case strings.HasPrefix(rest, "/"):
			return false
		case rest == "." || strings.HasPrefix(rest, "./"):
			return false
		case rest == ".." || strings.HasPrefix(rest, "../"):
			return false
		}
	}
	return true
}

// altPath is how a lenient application might read p: backslashes as
// slashes, and ";params" cut from each segment (Tomcat reads /a/..;/b as
// /b). It returns "" when p has neither.
func altPath(p string) string {
	if strings.IndexByte(p, ';') < 0 && strings.IndexByte(p, '\\') < 0 {
		return ""
	}
	p = strings.ReplaceAll(p, "\\", "/")
	var b strings.Builder
	for i, seg := range strings.Split(p, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		b.WriteString(seg)
	}
	return cleanPath(b.String())
}

// match returns the route with the longest prefix of p, or nil. Routes are
// sorted longest first.
func (s *site) match(p string) *route {
	for _, r := range s.routes {
		if hasPrefixFold(p, r.prefix) {
			return r
		}
	}
	return nil
}

// route finds the route for a request path. It returns the clean path to
// forward and ambiguous = true when a lenient reading of the path would
// pick another route: such a request is answered as a missing path, so no
// reading of it can slip past a route's policies.
func (s *site) route(p string) (r *route, clean string, ambiguous bool) {
	clean = cleanPath(p)
	r = s.match(clean)
	if alt := altPath(clean); alt != "" && s.match(alt) != r {
		return nil, clean, true
	}
	return r, clean, false
}
