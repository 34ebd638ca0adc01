package gateway

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIP decides who the client is: the TCP peer, unless the peer is a
// trusted proxy, in which case the proxy's header says.
type clientIP struct {
	trusted []netip.Prefix
	header  string // canonical header name
	xff     bool   // header is X-Forwarded-For: a list, walked from the right
}

func newClientIP(trusted []netip.Prefix, header string) clientIP {
	h := http.CanonicalHeaderKey(header)
	return clientIP{trusted: trusted, header: h, xff: h == "X-Forwarded-For"}
}

func (c *clientIP) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolve returns the client's address, the peer's, and whether the peer
// is a trusted proxy. An unparsable RemoteAddr (never from net/http's own
// listeners) yields the zero Addr, which no policy admits.
func (c *clientIP) resolve(r *http.Request) (client, peer netip.Addr, trusted bool) {
	peer = parsePeer(r.RemoteAddr)
	if len(c.trusted) == 0 || !c.isTrusted(peer) {
		return peer, peer, false
	}
	vals := r.Header[c.header]
	if len(vals) == 0 {
		return peer, peer, true
	}
	if !c.xff {
		if a, ok := parseForwardedAddr(vals[len(vals)-1]); ok {
			return a, peer, true
		}
		return peer, peer, true
	}
	// Walk right to left: each hop appended the address it saw. The first
	// one that is not a trusted proxy is the client; anything left of it
	// was written by the client and proves nothing.
	client = peer
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for v != "" {
			var item string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				item, v = v[j+1:], v[:j]
			} else {
				item, v = v, ""
			}
			a, ok := parseForwardedAddr(item)
			if !ok {
				return client, peer, true
			}
			client = a
			if !c.isTrusted(a) {
				return client, peer, true
			}
		}
	}
	return client, peer, true
}

func parsePeer(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// parseForwardedAddr reads one address written by a proxy: a bare address,
// possibly with a port or in brackets.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// forwardedFor is the X-Forwarded-For to send upstream: the trusted proxy's
// chain with the peer appended, or the peer alone.
func forwardedFor(in http.Header, peer netip.Addr, trusted bool) string {
	p := peer.String()
	if !trusted {
		return p
	}
	prior := in["X-Forwarded-For"]
	if len(prior) == 0 {
		return p
	}
	return strings.Join(prior, ", ") + ", " + p
}
