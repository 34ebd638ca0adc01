package vpn

import (
	"net/netip"
	"testing"

	"github.com/moat-sh/moat/internal/schema"
)

// The per-connection rule sees what a dual-stack socket reports: IPv4
// sources as IPv4-mapped IPv6 addresses must be judged as IPv4.
func TestAllowedSource(t *testing.T) {
	c := Config{Ranges: []schema.CIDR{schema.MustCIDR("10.8.0.0/24"), schema.MustCIDR("fd00:8::/64")}}
	for addr, ok := range map[string]bool{
		"127.0.0.1": true, "127.5.6.7": true, "::1": true, "::ffff:127.0.0.1": true,
		"10.8.0.9": true, "::ffff:10.8.0.9": true, "fd00:8::5": true,
		"10.8.1.1": false, "::ffff:10.8.1.1": false, "203.0.113.5": false, "::ffff:203.0.113.5": false,
		"fd00:9::1": false, "0.0.0.0": false, "::": false, "fe80::1": false,
	} {
		if got := c.AllowedSource(netip.MustParseAddr(addr)); got != ok {
			t.Errorf("AllowedSource(%s) = %v, want %v", addr, got, ok)
		}
	}
	if err := c.CheckListen("[::ffff:10.8.0.1]:9470"); err != nil {
		t.Errorf("mapped VPN address refused: %v", err)
	}
	if err := c.CheckListen("[fe80::1%wg0]:9470"); err == nil {
		t.Error("link-local with a zone accepted")
	}
}
