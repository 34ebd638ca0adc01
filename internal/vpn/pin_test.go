package vpn

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
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

// TestPinsProperties: for random VPN sections and host links (a fixed
// seed), no range is ever pinned to the public interface, every range is
// pinned or reported unpinned exactly once, WireGuard's ranges go to its
// interface only and Tailscale's to tailscale names only.
func TestPinsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 14))
	pool := []string{"10.42.7.0/24", "10.0.0.0/8", "100.64.0.0/10", "100.100.0.0/16", "fd7a:115c:a1e0::/48",
		"172.17.0.0/16", "172.31.0.0/24", "192.168.50.0/24", "fd00:8::/64", "10.42.7.9/32"}
	names := []string{"eth0", "eth1", "docker0", "wg0", "wg1", "tailscale0", "tun0", "tun*"}
	addrs := []string{"10.42.7.1/24", "172.17.0.1/16", "172.31.0.5/24", "192.168.50.1/24", "100.100.1.1/16", "fd00:8::1/64", "198.51.100.1/24"}
	pick := func(from []string, n int) []string {
		var out []string
		for range n {
			out = append(out, from[rng.IntN(len(from))])
		}
		return out
	}
	for i := range 3000 {
		var c Config
		c.Interfaces = pick(names, rng.IntN(3))
		for _, r := range pick(pool, rng.IntN(4)) {
			c.Ranges = append(c.Ranges, schema.MustCIDR(r))
		}
		if rng.IntN(2) == 0 {
			c.WireGuard = &WireGuard{Interface: "wg0", Address: []IfaceAddr{{netip.MustParsePrefix("10.42.7.1/24")}},
				Peers: []Peer{{Name: "p", Addresses: []schema.CIDR{schema.MustCIDR("10.42.7.2/32"), schema.MustCIDR("192.168.50.0/24")}}}}
		}
		var links []Link
		for _, n := range pick(names[:7], rng.IntN(5)) {
			l := Link{Name: n}
			for _, a := range pick(addrs, rng.IntN(3)) {
				l.Addrs = append(l.Addrs, netip.MustParsePrefix(a))
			}
			links = append(links, l)
		}
		public := names[rng.IntN(3)]
		pins, none := c.pin(links, public)
		seen := map[netip.Prefix]int{}
		for _, p := range pins {
			if len(p.Interfaces) == 0 || slices.Contains(p.Interfaces, public) {
				t.Fatalf("case %d: pin %v with public %s", i, p, public)
			}
			for _, r := range p.Prefixes {
				seen[r]++
				if c.wireGuardOwns(r) && !slices.Equal(p.Interfaces, []string{"wg0"}) && public != "wg0" {
					t.Fatalf("case %d: WireGuard's %s pinned to %v", i, r, p.Interfaces)
				}
				if !c.wireGuardOwns(r) && (within(r, TailscaleV4) || within(r, TailscaleV6)) {
					for _, n := range p.Interfaces {
						if !strings.HasPrefix(n, "tailscale") {
							t.Fatalf("case %d: Tailscale's %s pinned to %s", i, r, n)
						}
					}
				}
			}
		}
		for _, r := range none {
			seen[r]++
		}
		for _, r := range c.Prefixes() {
			if seen[r] != 1 {
				t.Fatalf("case %d: %s pinned %d times (config %+v, links %v)", i, r, seen[r], c, links)
			}
		}
	}
}
