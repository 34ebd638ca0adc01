package firewall

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

var update = flag.Bool("update", false, "rewrite golden files")

func ports(specs ...string) []schema.PortSpec {
	var out []schema.PortSpec
	for _, s := range specs {
		p, err := schema.ParsePortSpec(s)
		if err != nil {
			panic(err)
		}
		out = append(out, p)
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, schema.MustCIDR(s).Prefix)
	}
	return out
}

func cidrs(ss ...string) []schema.CIDR {
	var out []schema.CIDR
	for _, s := range ss {
		out = append(out, schema.MustCIDR(s))
	}
	return out
}

// goldenSpecs are the rendered tables kept in testdata/render.
func goldenSpecs() map[string]*Spec {
	defaults := SpecFrom(Default())
	defaults.SSH = SSH{Port: 22, Exposure: schema.ExposurePublic, RateLimit: schema.Rate{N: 10, Per: time.Minute}}
	defaults.VPN = vpn.Default()

	stage2 := Spec{
		Source:          "/etc/moat/moat.yaml",
		PublicInterface: "eth0",
		Public:          ports("80", "443", "443/udp", "51820/udp", "60000-61000/udp"),
		VPNPorts:        ports("5432", "6379", "9100-9101"),
		Allow:           []AllowRule{{Ports: ports("8443"), Sources: cidrs("198.51.100.0/24", "2001:db8:77::/48")}},
		SSH:             SSH{Port: 2222, Exposure: schema.ExposureVPNPublic, RateLimit: schema.Rate{N: 5, Per: time.Minute}},
		VPN:             vpn.Config{Interfaces: []string{"wg0", "tailscale0"}, Ranges: cidrs("10.8.0.0/24", "100.64.0.0/10", "fd7a:115c:a1e0::/48")},
		Admin:           prefixes("203.0.113.7", "2001:db8:1::/64"),
		BanIPv6Prefix:   64,
		LogDrops:        true,
	}

	stage3 := Spec{
		Source:          "/etc/moat/moat.yaml",
		PublicInterface: "eth0",
		Public:          ports("80", "443"),
		VPNPorts:        ports("5432/tcp"),
		SSH:             SSH{Port: 22, Exposure: schema.ExposureVPN, RateLimit: schema.Rate{N: 10, Per: time.Minute}},
		VPN:             vpn.Config{Interfaces: []string{"wg*"}, Ranges: cidrs("10.8.0.0/24")},
		Admin:           prefixes("203.0.113.7"),
		Geo: Geo{Mode: "deny", Countries: []schema.Country{"XA"},
			V4: prefixes("192.0.2.0/24", "198.18.0.0/15", "198.18.4.0/24"), V6: prefixes("2001:db8:dead::/48")},
		BanIPv6Prefix: 56,
	}

	geoAllow := stage3
	geoAllow.SSH.Exposure = schema.ExposurePublic
	geoAllow.SSH.RateLimit = schema.Rate{N: 100, Per: time.Hour}
	geoAllow.Geo = Geo{Mode: "allow", Countries: []schema.Country{"DE", "FR"},
		V4: prefixes("192.0.2.0/25", "192.0.2.128/25"), V6: prefixes("2001:db8::/32")}
	geoAllow.LogDrops = true

	bare := Spec{
		SSH:           SSH{Port: 22, Exposure: schema.ExposurePublic},
		BanIPv6Prefix: 64,
	}
	// pinned: each VPN range on its own interface only. Tailscale's
	// ranges on tailscale0 (not in vpn.interfaces), a LAN range on the
	// link that carries it (eth1), the managed WireGuard subnet and a
	// network routed through a peer on wg0 (covered by the interface
	// rule), an undetected range on vpn.interfaces (covered too).
	pinned := stage3
	pinned.SSH.Exposure = schema.ExposureVPNPublic
	pinned.Geo = Geo{}
	pinned.VPN = vpn.Config{
		Interfaces: []string{"wg0"},
		Ranges:     cidrs("100.64.0.0/10", "fd7a:115c:a1e0::/48", "172.31.0.0/24", "10.99.0.0/16"),
		WireGuard: &vpn.WireGuard{Interface: "wg0", Address: []vpn.IfaceAddr{{Prefix: netip.MustParsePrefix("10.42.7.1/24")}},
			Peers: []vpn.Peer{{Name: "home", Addresses: cidrs("10.42.7.2/32", "192.168.50.0/24")}}},
	}
	pinned.Links = []vpn.Link{
		{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}},
		{Name: "eth1", Addrs: []netip.Prefix{netip.MustParsePrefix("172.31.0.5/24")}},
		{Name: "docker0", Addrs: []netip.Prefix{netip.MustParsePrefix("172.17.0.1/16")}},
		{Name: "wg0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.42.7.1/24")}},
	}
	bansOnly := stage3
	bansOnly.BansOnly = true
	bansOnly.SSH = SSH{}
	return map[string]*Spec{
		"bans-only": &bansOnly,
		"defaults":  &defaults,
		"stage2":    &stage2,
		"stage3":    &stage3,
		"geo-allow": &geoAllow,
		"bare":      &bare,
		"pinned":    &pinned,
	}
}

func TestRenderGolden(t *testing.T) {
	for name, spec := range goldenSpecs() {
		t.Run(name, func(t *testing.T) {
			if err := spec.Validate(); err != nil {
				t.Fatalf("spec does not validate: %v", err)
			}
			got := Render(spec)
			if again := Render(spec); again != got {
				t.Fatal("Render is not deterministic")
			}
			path := filepath.Join("testdata", "render", name+".nft")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rendered table differs from %s (go test -update rewrites it):\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

// TestGoldenLoads feeds every golden file to the kernel with nft -c, inside
// a scratch namespace: what moat renders, nft 1.0.6 and the kernel accept.
func TestGoldenLoads(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireTool(t, "nft")
	files, err := filepath.Glob(filepath.Join("testdata", "render", "*.nft"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			err = inScratch(func() error {
				if err := Check(context.Background(), string(text)); err != nil {
					return err
				}
				// And for real, twice: the second time replaces the first
				// object by object, keeping the ban sets.
				for i := range 2 {
					res, err := Replace(context.Background(), string(text), 64)
					if err != nil {
						return err
					}
					if res.Incremental != (i == 1) {
						return fmt.Errorf("replace %d: incremental %v", i, res.Incremental)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}
