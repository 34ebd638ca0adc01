package host

import "net/netip"

// Scope says who can reach an address a socket is bound to.
type Scope string

// Scopes, from narrowest to widest reach.
const (
	ScopeLoopback Scope = "loopback" // 127.0.0.0/8, ::1: this host only
	ScopePrivate  Scope = "private"  // RFC 1918, ULA fc00::/7, link-local
	ScopeVPN      Scope = "vpn"      // Tailscale ranges or an address on a VPN interface
	ScopePublic   Scope = "public"   // anything else: reachable from the Internet if routed
	ScopeWildcard Scope = "wildcard" // 0.0.0.0 or ::: every address of the host, public ones included
)

// Tailscale's address ranges: the CGNAT block it allocates IPv4 addresses
// from and its IPv6 ULA prefix.
var (
	TailscaleV4 = netip.MustParsePrefix("100.64.0.0/10")
	TailscaleV6 = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

// ClassifyAddr returns the scope of a local address. vpn lists the
// prefixes of addresses on VPN interfaces (see [Host.VPNPrefixes]); they
// take precedence over private ranges because a WireGuard tunnel commonly
// uses RFC 1918 space. IPv4-mapped IPv6 addresses are classified as IPv4.
func ClassifyAddr(a netip.Addr, vpn []netip.Prefix) Scope {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return ScopeLoopback
	case a.IsUnspecified():
		return ScopeWildcard
	case TailscaleV4.Contains(a), TailscaleV6.Contains(a):
		return ScopeVPN
	}
	for _, p := range vpn {
		if p.Contains(a) {
			return ScopeVPN
		}
	}
	if a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return ScopePrivate
	}
	return ScopePublic
}
