package gateway

import (
	"net/netip"
	"strings"
	"testing"
)

// TestVPNSetFollowsPeers: allow: [vpn] admits what the VPN's peer set
// says now, not what it said at start. The test client comes from
// 127.0.0.1: a peer routing 127.0.0.0/8 (standing in for a site-to-site
// network) is added live, then removed live, and a config reload carries
// its own set; a failed reload keeps the old one.
func TestVPNSetFollowsPeers(t *testing.T) {
	a := newApp(t)
	cfg := baseConfig(t, a.URL,
		Route{Path: "/", Upstream: a.URL},
		Route{Path: "/admin", Upstream: a.URL, Allow: []string{"vpn"}},
	)
	wg := netip.MustParsePrefix("10.42.7.0/24")
	site := netip.MustParsePrefix("127.0.0.0/8")
	e := startEnv(t, a, cfg, Deps{VPN: []netip.Prefix{wg}})
	admitted := func() bool {
		t.Helper()
		resp, body := e.mustGet("https://app.test/admin")
		return resp.StatusCode == 200 && !strings.Contains(body, "Oops")
	}
	if admitted() {
		t.Fatal("admitted before the peer's network is in the VPN set")
	}
	if err := e.g.SetVPN([]netip.Prefix{wg, site}); err != nil {
		t.Fatal(err)
	}
	if !admitted() {
		t.Fatal("the peer's network, set live, is not admitted")
	}
	if err := e.g.SetVPN([]netip.Prefix{wg}); err != nil {
		t.Fatal(err)
	}
	if admitted() {
		t.Fatal("the removed peer's network is still admitted")
	}
	if err := e.g.ReloadVPN(cfg, []netip.Prefix{site}); err != nil || !admitted() {
		t.Fatalf("a reload with the peer's network: %v", err)
	}
	bad := cfg
	bad.Sites = nil
	bad.HTTPS = "not an address"
	if err := e.g.ReloadVPN(bad, []netip.Prefix{wg}); err == nil {
		t.Fatal("a broken config reloaded")
	}
	if !admitted() {
		t.Fatal("a failed reload changed the VPN set")
	}
}
