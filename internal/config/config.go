// Package config reads moat.yaml: strict decoding with file:line:col errors,
// built-in defaults for every optional section, and the composition of each
// layer's own Config type. A file with any error yields no config at all.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/fleet"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/harden"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/vpn"
)

// DefaultPath is where moat looks for its config.
const DefaultPath = "/etc/moat/moat.yaml"

// EnvPath names the environment variable that overrides DefaultPath.
const EnvPath = "MOAT_CONFIG"

// Config is the whole moat.yaml. Every section is optional.
type Config struct {
	Host     harden.HostConfig `yaml:"host"`
	SSH      harden.SSHConfig  `yaml:"ssh"`
	Firewall firewall.Config   `yaml:"firewall"`
	VPN      vpn.Config        `yaml:"vpn"`
	Guard    jail.Config       `yaml:"guard"`
	Gateway  *gateway.Config   `yaml:"gateway"`
	Alerts   alert.Config      `yaml:"alerts"`
	// Fleet shares bans with other hosts (nil: this host alone).
	Fleet *fleet.Config `yaml:"fleet"`

	// File is where the config came from ("" for built-in defaults).
	File string `yaml:"-"`
}

// Default returns the built-in config: safe with no file at all.
func Default() *Config {
	return &Config{
		Host:     harden.DefaultHost(),
		SSH:      harden.DefaultSSH(),
		Firewall: firewall.Default(),
		VPN:      vpn.Default(),
		Guard:    jail.Default(),
		Alerts:   alert.Default(),
	}
}

// Path returns the config path to use: flag, then $MOAT_CONFIG, then the
// default.
func Path(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	return DefaultPath
}

// Load reads and validates the file at path. A missing file at the default
// path is not an error: moat then runs on defaults (Config.File == "").
func Load(path string, explicit bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return Default(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates a config file's bytes. Errors are
// schema.Errors, each naming file:line:col.
func Parse(file string, data []byte) (*Config, error) {
	c := Default()
	doc, err := schema.Decode(file, data, c)
	if err != nil {
		return nil, err
	}
	c.File = file
	if c.Gateway != nil {
		c.Gateway.Defaults()
	}
	if errs := c.validate(doc); len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func (c *Config) validate(doc *schema.Doc) schema.Errors {
	var errs schema.Errors
	sections := []struct {
		key string
		err error
	}{
		{"host", c.Host.Validate()},
		{"ssh", c.SSH.Validate()},
		{"firewall", c.Firewall.Validate()},
		{"vpn", c.VPN.Validate()},
		{"guard", c.Guard.Validate()},
		{"alerts", c.Alerts.Validate()},
	}
	if c.Gateway != nil {
		sections = append(sections, struct {
			key string
			err error
		}{"gateway", c.Gateway.Validate()})
	}
	if c.Fleet != nil {
		sections = append(sections, struct {
			key string
			err error
		}{"fleet", c.Fleet.Validate(c.VPN.Prefixes())})
	}
	for _, s := range sections {
		if s.err != nil {
			errs = append(errs, doc.Place(s.key, s.err)...)
		}
	}
	errs = append(errs, c.validateFilters(doc)...)
	// Cross-section rules: no layer alone can see these.
	if c.SSH.Exposure.VPN() && len(c.VPN.Interfaces) == 0 && len(c.VPN.Ranges) == 0 {
		errs = append(errs, doc.Place("ssh.exposure", fmt.Errorf("exposure %q needs a VPN: list vpn.interfaces or vpn.ranges", c.SSH.Exposure))...)
	}
	if c.SSH.Exposure == "vpn" {
		for i, p := range c.Firewall.Public {
			if p.Contains("tcp", uint16(c.SSH.Port)) {
				errs = append(errs, doc.Place(fmt.Sprintf("firewall.public[%d]", i), fmt.Errorf("port %d is sshd's, and ssh.exposure is vpn: remove it from public", c.SSH.Port))...)
			}
		}
	}
	return errs
}

// validateFilters checks the guard's filters the way the daemon will build
// them: built-in names and their modes from internal/filter, user regexes
// compiled by it, so a config that passes check also runs.
func (c *Config) validateFilters(doc *schema.Doc) schema.Errors {
	var errs schema.Errors
	place := func(path string, err error) { errs = append(errs, doc.Place(path, err)...) }
	names := make([]string, 0, len(c.Guard.Filters))
	for name := range c.Guard.Filters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := c.Guard.Filters[name]
		if _, err := filter.Compile(name, filter.Custom{Regex: f.Regex, Ignore: f.Ignore}, filter.Options{}); err != nil && len(f.Regex) > 0 {
			place("guard.filters."+name, err)
		}
	}
	jails := make([]string, 0, len(c.Guard.Jails))
	for name := range c.Guard.Jails {
		jails = append(jails, name)
	}
	sort.Strings(jails)
	for _, name := range jails {
		j := jail.JailDefaults(name, c.Guard.Jails[name])
		p := "guard.jails." + name
		if _, custom := c.Guard.Filters[j.Filter]; custom {
			if j.Mode != "" {
				place(p+".mode", fmt.Errorf("filter %q is user-defined and has no modes", j.Filter))
			}
			continue
		}
		modes, ok := filter.Modes(j.Filter)
		if !ok {
			place(p+".filter", fmt.Errorf("unknown filter %q: expected a built-in (%s) or one defined under guard.filters", j.Filter, strings.Join(filter.Builtins(), ", ")))
			continue
		}
		if j.Mode != "" && !slices.Contains(modes, j.Mode) {
			place(p+".mode", fmt.Errorf("filter %s has modes %s, not %q", j.Filter, strings.Join(modes, ", "), j.Mode))
		}
	}
	return errs
}

// Filter builds the filter a jail names, as every consumer must: a filter
// defined under guard.filters wins over a built-in of the same name (user
// filters have no modes); otherwise the built-in in mode ("" is normal).
func (c *Config) Filter(name, mode string, o filter.Options) (filter.Filter, error) {
	if def, ok := c.Guard.Filters[name]; ok {
		if mode != "" && mode != "normal" {
			return nil, fmt.Errorf("filter %s is user-defined and has no mode %q", name, mode)
		}
		return filter.Compile(name, filter.Custom{Regex: def.Regex, Ignore: def.Ignore}, o)
	}
	if mode == "" {
		mode = "normal"
	}
	return filter.New(name, mode, o)
}
