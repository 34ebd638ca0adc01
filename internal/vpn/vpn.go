// Package vpn describes the operator's private network (Tailscale,
// WireGuard): its interfaces and address ranges, which every layer treats as
// the trusted side. It holds configuration and facts only.
package vpn

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/moat-sh/moat/internal/schema"
)

// Tailscale's address ranges: CGNAT space for IPv4 and its own ULA prefix.
var (
	TailscaleV4 = netip.MustParsePrefix("100.64.0.0/10")
	TailscaleV6 = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

// Config is the vpn section.
type Config struct {
	// Interfaces are the VPN's network interfaces (tailscale0, wg0, …).
	Interfaces []string `yaml:"interfaces"`
	// Ranges are the source ranges the VPN's peers use.
	Ranges []schema.CIDR `yaml:"ranges"`
	// WireGuard is an interface moat manages itself (moat vpn init).
	WireGuard *WireGuard `yaml:"wireguard"`
}

// Default is the config of a host with Tailscale, the common case; init
// writes what it finds instead.
func Default() Config {
	return Config{
		Interfaces: []string{"tailscale0"},
		Ranges:     []schema.CIDR{{Prefix: TailscaleV4}, {Prefix: TailscaleV6}},
	}
}

// Validate checks interface names as the kernel would accept them.
func (c Config) Validate() error {
	var errs []error
	for i, name := range c.Interfaces {
		if err := ValidInterface(name); err != nil {
			errs = append(errs, schema.Errorf(indexPath("interfaces", i), "%v", err))
		}
	}
	if w := c.WireGuard; w != nil {
		errs = append(errs, schema.Under("wireguard", w.Validate()))
		if !slices.Contains(c.Interfaces, w.Name()) {
			errs = append(errs, schema.Errorf("interfaces", "the WireGuard interface %s is not listed: add it, so the firewall, sshd and the gateway treat it as the VPN", w.Name()))
		}
	}
	return joinErrs(errs)
}

// Contains reports whether a is in one of the VPN ranges.
func (c Config) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, r := range c.Prefixes() {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// Prefixes returns the VPN's source ranges: vpn.ranges, and the managed
// WireGuard interface's subnets and its peers' addresses (a network
// routed through a peer included). This is the one answer the firewall,
// the gateway's allow: [vpn] and the guard's ignore list all use.
func (c Config) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.Ranges))
	add := func(p netip.Prefix) {
		p = p.Masked()
		for _, o := range out {
			if o.Bits() <= p.Bits() && o.Contains(p.Addr()) {
				return
			}
		}
		out = append(out, p)
	}
	for _, r := range c.Ranges {
		add(r.Prefix)
	}
	if w := c.WireGuard; w != nil {
		for _, s := range w.Subnets() {
			add(s)
		}
		for _, p := range w.Peers {
			for _, a := range p.Addresses {
				add(a.Prefix)
			}
		}
	}
	return out
}

// IsVPNInterface reports whether name looks like a VPN interface, for
// discovery by init and the audit: tailscale*, wg*, tun*, zt*.
func IsVPNInterface(name string) bool {
	for _, p := range []string{"tailscale", "wg", "tun", "zt", "nebula"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
