package vpn

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/moat-sh/moat/internal/schema"
)

func TestPins(t *testing.T) {
	pfx := netip.MustParsePrefix
	c := Config{
		Interfaces: []string{"wg0", "tun*"},
		Ranges: []schema.CIDR{schema.MustCIDR("100.64.0.0/10"), schema.MustCIDR("fd7a:115c:a1e0::/48"),
			schema.MustCIDR("172.31.0.0/24"), schema.MustCIDR("10.99.0.0/16"), schema.MustCIDR("192.168.7.0/24")},
		WireGuard: &WireGuard{Interface: "wg0", Address: []IfaceAddr{{pfx("10.42.7.1/24")}},
			Peers: []Peer{{Name: "home", Addresses: []schema.CIDR{schema.MustCIDR("10.42.7.2/32"), schema.MustCIDR("192.168.50.0/24")}}}},
	}
	links := []Link{
		{Name: "eth0", Addrs: []netip.Prefix{pfx("192.168.7.10/24")}}, // public: never a VPN range's
		{Name: "eth1", Addrs: []netip.Prefix{pfx("172.31.0.5/24")}},
		{Name: "docker0", Addrs: []netip.Prefix{pfx("172.17.0.1/16")}},
		{Name: "wg0", Addrs: []netip.Prefix{pfx("10.42.7.1/24")}},
	}
	got := fmt.Sprint(c.Pins(links, "eth0"))
	want := "[{[tailscale0] [100.64.0.0/10 fd7a:115c:a1e0::/48]} {[eth1] [172.31.0.0/24]} {[tun* wg0] [10.99.0.0/16 192.168.7.0/24]} {[wg0] [10.42.7.0/24 192.168.50.0/24]}]"
	if got != want {
		t.Errorf("pins:\n got %s\nwant %s", got, want)
	}
	// Tailscale listed under its own name.
	c.Interfaces = append(c.Interfaces, "tailscale1")
	if got := c.Pins(nil, "eth0")[0].Interfaces; fmt.Sprint(got) != "[tailscale1]" {
		t.Errorf("tailscale ranges pinned to %v", got)
	}
	// No interface at all: the range is trusted nowhere.
	lone := Config{Ranges: []schema.CIDR{schema.MustCIDR("10.5.0.0/16")}}
	if got := lone.Pins(nil, ""); len(got) != 0 {
		t.Errorf("a range with no interface was pinned: %v", got)
	}
	if got := fmt.Sprint(lone.Unpinned(nil, "")); got != "[10.5.0.0/16]" {
		t.Errorf("unpinned: %s", got)
	}
	pins := c.Pins(links, "eth0")
	for _, tc := range []struct {
		iif, src string
		want     bool
	}{
		{"wg0", "10.42.7.9", true},
		{"wg0", "192.168.50.3", true},
		{"docker0", "10.42.7.9", false},
		{"eth0", "100.100.1.1", false},
		{"tailscale1", "100.100.1.1", true},
		{"tun3", "10.99.1.1", true},
		{"eth1", "172.31.0.9", true},
		{"eth1", "10.42.7.9", false},
	} {
		if got := PinnedContains(pins, tc.iif, netip.MustParseAddr(tc.src)); got != tc.want {
			t.Errorf("%s on %s: %v, want %v", tc.src, tc.iif, got, tc.want)
		}
	}
}
