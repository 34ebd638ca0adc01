package harden

import (
	"net/netip"
	"testing"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// TestOverVPNPinned: the evidence that a login over the VPN works is a
// session that arrived on a VPN interface's address from a VPN source. A
// container reaching the wg0 address, or a VPN-range source on the public
// address, is not that evidence: the firewall would not let either in at
// stage vpn, so counting it would move SSH behind a VPN never shown to work.
func TestOverVPNPinned(t *testing.T) {
	c := vpn.Config{Interfaces: []string{"wg0"}, Ranges: []schema.CIDR{schema.MustCIDR("10.8.0.0/24")}}
	wg := []netip.Addr{netip.MustParseAddr("10.8.0.1")}
	for _, tc := range []struct {
		session string
		c       vpn.Config
		want    bool
	}{
		{"10.8.0.2 40000 10.8.0.1 22", c, true},
		{"172.17.0.2 40000 10.8.0.1 22", c, false},   // a container, to wg0's address
		{"10.8.0.2 40000 198.51.100.1 22", c, false}, // a VPN source, to the public address
		{"::ffff:10.8.0.2 40000 ::ffff:10.8.0.1 22", c, true},
		// A VPN without ranges (an OpenVPN tun0 listed alone): the
		// interface's address is all there is to go by.
		{"192.168.255.6 40000 10.8.0.1 22", vpn.Config{Interfaces: []string{"tun0"}}, true},
	} {
		s, ok := change.ParseSession(tc.session)
		if !ok {
			t.Fatalf("parse %q", tc.session)
		}
		if got := overVPN(s, tc.c, wg); got != tc.want {
			t.Errorf("%s: over the VPN %v, want %v", tc.session, got, tc.want)
		}
	}
}
