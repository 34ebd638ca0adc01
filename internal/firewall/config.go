package firewall

import (
	"errors"
	"fmt"

	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// Config is the firewall section.
type Config struct {
	// Enabled makes `moat apply` manage table inet moat.
	Enabled *bool `yaml:"enabled"`
	// Mode is "full" (the default: moat's default-drop firewall) or
	// "bans-only": table inet moat holds only the ban and geo sets and
	// one early drop of their sources in input and forward, and every
	// other rule stays the operator's own (the fail2ban replacement).
	// `moat run` creates that table when it is missing.
	Mode string `yaml:"mode"`
	// PublicInterface faces the internet; detected from the default route
	// when empty.
	PublicInterface string `yaml:"public_interface"`
	// Public ports are open to everyone (besides SSH, which follows
	// ssh.exposure).
	Public []schema.PortSpec `yaml:"public"`
	// VPN ports are open only from the VPN interfaces and ranges.
	VPN []schema.PortSpec `yaml:"vpn"`
	// Allow opens ports to listed sources only.
	Allow []AllowRule `yaml:"allow"`
	// Ban tunes the ban sets the guard fills.
	Ban BanConfig `yaml:"ban"`
	// Geo blocks or admits countries.
	Geo GeoConfig `yaml:"geo"`
	// LogDrops logs dropped packets, rate-limited.
	LogDrops bool `yaml:"log_drops"`
}

// AllowRule opens Ports to Sources only.
type AllowRule struct {
	Ports   []schema.PortSpec `yaml:"ports"`
	Sources []schema.CIDR     `yaml:"sources"`
}

// BanConfig tunes the ban sets.
type BanConfig struct {
	// IPv6Prefix widens IPv6 bans to this prefix length (64 by default):
	// attackers rotate addresses inside their /64.
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// GeoConfig admits or blocks countries at the firewall.
type GeoConfig struct {
	// Mode is "allow" (only Countries may connect) or "deny" (Countries may
	// not); empty disables geo rules.
	Mode      string           `yaml:"mode"`
	Countries []schema.Country `yaml:"countries"`
	// Database is a country mmdb (GeoLite2-Country or DB-IP Lite).
	Database string `yaml:"database"`
}

// Default is the firewall section's defaults: web ports public.
func Default() Config {
	return Config{
		Public: []schema.PortSpec{{Proto: "tcp", From: 80, To: 80}, {Proto: "tcp", From: 443, To: 443}},
		Ban:    BanConfig{IPv6Prefix: 64},
	}
}

// Firewall modes.
const (
	ModeFull     = "full"
	ModeBansOnly = "bans-only"
)

// BansOnly reports whether moat owns only the ban sets' drop.
func (c Config) BansOnly() bool { return c.Mode == ModeBansOnly }

// Validate checks the firewall section.
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case "", ModeFull, ModeBansOnly:
	default:
		errs = append(errs, schema.Errorf("mode", "expected %s or %s, found %q", ModeFull, ModeBansOnly, c.Mode))
	}
	if c.PublicInterface != "" {
		if err := vpn.ValidInterface(c.PublicInterface); err != nil {
			errs = append(errs, schema.Errorf("public_interface", "%v", err))
		}
	}
	for i, r := range c.Allow {
		if len(r.Ports) == 0 {
			errs = append(errs, schema.Errorf(fmt.Sprintf("allow[%d].ports", i), "an allow rule needs at least one port"))
		}
		if len(r.Sources) == 0 {
			errs = append(errs, schema.Errorf(fmt.Sprintf("allow[%d].sources", i), "an allow rule needs at least one source; to open a port to everyone list it under public"))
		}
	}
	if p := c.Ban.IPv6Prefix; p < 16 || p > 128 {
		errs = append(errs, schema.Errorf("ban.ipv6_prefix", "expected a prefix length from 16 to 128, found %d", p))
	}
	switch c.Geo.Mode {
	case "":
		if len(c.Geo.Countries) > 0 {
			errs = append(errs, schema.Errorf("geo.mode", "countries are listed but mode is empty: set mode to allow or deny"))
		}
	case "allow", "deny":
		if len(c.Geo.Countries) == 0 {
			errs = append(errs, schema.Errorf("geo.countries", "geo mode %q needs at least one country", c.Geo.Mode))
		}
		if c.Geo.Database == "" {
			errs = append(errs, schema.Errorf("geo.database", "geo rules need a country database (GeoLite2-Country.mmdb or dbip-country-lite.mmdb)"))
		}
	default:
		errs = append(errs, schema.Errorf("geo.mode", "expected allow or deny, found %q", c.Geo.Mode))
	}
	return errors.Join(errs...)
}

// IsEnabled reports whether moat manages the firewall (on by default).
func (c Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }
