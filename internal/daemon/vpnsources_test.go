package daemon

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// TestVPNSourcesFollowAppliedPeers: the gateway's allow: [vpn] follows
// the peers moat apply confirmed (the set on the interface), not the
// moat.yaml the daemon loaded: a site-to-site peer's network counts once
// applied and stops counting once removed and applied, with no reload.
func TestVPNSourcesFollowAppliedPeers(t *testing.T) {
	root := t.TempDir()
	key := "hT1hhpe9MwCeJK7Yhkx5EAvS6ROagLQYdPA4nnkvRUk="
	c := vpn.Config{
		Interfaces: []string{"wg0"},
		Ranges:     []schema.CIDR{schema.MustCIDR("100.64.0.0/10")},
		WireGuard: &vpn.WireGuard{Interface: "wg0", Address: []vpn.IfaceAddr{{Prefix: netip.MustParsePrefix("10.42.7.1/24")}},
			Peers: []vpn.Peer{{Name: "laptop", PublicKey: key, Addresses: []schema.CIDR{schema.MustCIDR("10.42.7.2/32")}}}},
	}
	got := func() string { return fmt.Sprint(vpnSources(root, c)) }
	// Before any apply: moat.yaml's peers.
	if g := got(); g != "[100.64.0.0/10 10.42.7.0/24]" {
		t.Fatalf("before apply: %s", g)
	}
	apply := func(peers ...vpn.Peer) {
		t.Helper()
		p := filepath.Join(root, vpn.AppliedPath("wg0"))
		os.MkdirAll(filepath.Dir(p), 0o700)
		b, _ := json.Marshal(map[string]any{"peers": peers})
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	home := vpn.Peer{Name: "home", PublicKey: key, Addresses: []schema.CIDR{schema.MustCIDR("10.42.7.3/32"), schema.MustCIDR("192.168.50.0/24")}}
	apply(c.WireGuard.Peers[0], home)
	if g := got(); g != "[100.64.0.0/10 10.42.7.0/24 192.168.50.0/24]" {
		t.Errorf("after applying a site-to-site peer: %s", g)
	}
	apply(c.WireGuard.Peers[0])
	if g := got(); g != "[100.64.0.0/10 10.42.7.0/24]" {
		t.Errorf("after removing it: %s", g)
	}
	// The daemon's config is not touched.
	if len(c.WireGuard.Peers) != 1 {
		t.Errorf("config peers changed: %v", c.WireGuard.Peers)
	}
}
