package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// Spec is everything the rendered table depends on, resolved from the
// config and the host by the caller (internal/cli): the firewall section,
// sshd's port and exposure, the VPN and the admin's sources. Render is a
// pure function of it.
type Spec struct {
	// Source names the config the table came from, for the file header.
	Source string
	// BansOnly renders only the ban (and geo) sets and their drop rules:
	// firewall.mode bans-only.
	BansOnly bool
	// PublicInterface faces the internet; "" when unknown. VPN ranges are
	// never trusted when they arrive on it.
	PublicInterface string
	// Links are the host's interfaces with their addresses, from which
	// vpn.ranges are pinned to the interfaces that carry them
	// (vpn.Config.Pins); nil pins them to vpn.interfaces.
	Links []vpn.Link
	// Public ports are open to everyone.
	Public []schema.PortSpec
	// VPN ports are open from the VPN interfaces and ranges only.
	VPNPorts []schema.PortSpec
	// Allow opens ports to listed sources.
	Allow []AllowRule
	// SSH is sshd's port and exposure.
	SSH SSH
	// VPN is the operator's private network.
	VPN vpn.Config
	// Admin are the operator's sources: always allowed to SSH, never
	// banned, exempt from geo rules.
	Admin []netip.Prefix
	// Geo holds the resolved country ranges; Mode "" disables geo rules.
	Geo Geo
	// LogDrops logs dropped packets, rate-limited.
	LogDrops bool
	// Blocklists renders the blocklist sets (block4, block6) and their
	// drop rules beside the ban sets: guard.blocklists is not empty.
	Blocklists bool
	// BanIPv6Prefix is the prefix length IPv6 bans widen to; it also keys
	// the SSH rate limit of IPv6 sources.
	BanIPv6Prefix int
}

// SSH is what the firewall needs to know about sshd.
type SSH struct {
	Port     uint16
	Exposure schema.Exposure
	// RateLimit bounds new connections per source on the public path; zero
	// disables it.
	RateLimit schema.Rate
}

// Geo is the geo rule with its country ranges resolved.
type Geo struct {
	Mode      string // "allow", "deny" or "" (off)
	Countries []schema.Country
	V4, V6    []netip.Prefix
}

// Validate checks what the config's own validation cannot see: the
// resolved values.
func (s *Spec) Validate() error {
	var errs []error
	if s.SSH.Port == 0 && !s.BansOnly {
		errs = append(errs, errors.New("ssh port is 0: set ssh.port"))
	}
	switch s.SSH.Exposure {
	case schema.ExposurePublic, schema.ExposureVPNPublic, schema.ExposureVPN, "":
	default:
		errs = append(errs, fmt.Errorf("unknown ssh exposure %q: expected public, vpn+public or vpn", s.SSH.Exposure))
	}
	if s.SSH.Exposure.VPN() && !s.BansOnly && len(s.VPN.Interfaces) == 0 && len(s.VPN.Ranges) == 0 {
		errs = append(errs, fmt.Errorf("ssh exposure %q needs a VPN: list vpn.interfaces or vpn.ranges", s.SSH.Exposure))
	}
	if p := s.BanIPv6Prefix; p < 16 || p > 128 {
		errs = append(errs, fmt.Errorf("ban IPv6 prefix /%d out of range 16 to 128", p))
	}
	for _, name := range append(slices.Clone(s.VPN.Interfaces), s.PublicInterface) {
		if name == "" {
			continue
		}
		if err := vpn.ValidInterface(name); err != nil {
			errs = append(errs, err)
		}
	}
	switch s.Geo.Mode {
	case "", "deny", "allow":
	default:
		errs = append(errs, fmt.Errorf("unknown geo mode %q: expected allow or deny", s.Geo.Mode))
	}
	if s.Geo.Mode == "allow" && len(s.Geo.V4) == 0 && len(s.Geo.V6) == 0 {
		errs = append(errs, fmt.Errorf("geo allow mode with no ranges for %v would drop every new connection: check the country list and the database", s.Geo.Countries))
	}
	return errors.Join(errs...)
}

// SpecFrom starts a Spec from the firewall section; the caller adds what
// other sections and the host know (SSH, VPN, Admin, Geo ranges, the
// detected public interface).
func SpecFrom(c Config) Spec {
	s := Spec{
		PublicInterface: c.PublicInterface,
		Public:          slices.Clone(c.Public),
		VPNPorts:        slices.Clone(c.VPN),
		Allow:           slices.Clone(c.Allow),
		LogDrops:        c.LogDrops,
		BanIPv6Prefix:   c.Ban.IPv6Prefix,
		BansOnly:        c.BansOnly(),
		Geo:             Geo{Mode: c.Geo.Mode, Countries: slices.Clone(c.Geo.Countries)},
	}
	if s.BanIPv6Prefix == 0 {
		s.BanIPv6Prefix = 64
	}
	return s
}
