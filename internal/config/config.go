// Package config reads moat.yaml: strict decoding with file:line:col errors,
// built-in defaults for every optional section, and the composition of each
// layer's own Config type. A file with any error yields no config at all.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"reflect"
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
	"github.com/moat-sh/moat/internal/statuspage"
	"github.com/moat-sh/moat/internal/vpn"
)

// DefaultPath is where moat looks for its config.
const DefaultPath = "/etc/moat/moat.yaml"

// ExamplePath is where the package installs the example with every key
// commented; `man 5 moat.yaml` describes the same keys.
const ExamplePath = "/usr/share/doc/moat/examples/moat.yaml"

// Reference says where a user finds every key, for error footers.
const Reference = "every key is described in 'man 5 moat.yaml' and " + ExamplePath

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
	// StatusPage is the read-only status page; nil serves none.
	StatusPage *statuspage.Config `yaml:"status_page"`
	// Fleet shares bans with other hosts (nil: this host alone).
	Fleet *fleet.Config `yaml:"fleet"`

	// File is where the config came from ("" for built-in defaults).
	File string `yaml:"-"`

	doc *schema.Doc // where each key was written, for Place
}

// Place positions an error about the key at path (a FieldError inside err
// adds to the path) at the place it was written, so checks made after
// parsing (internal/preflight's, against the host) still name
// file:line:col.
func (c *Config) Place(path string, err error) schema.Errors {
	if c.doc == nil {
		return schema.Errors{{Pos: schema.Pos{File: c.File}, Path: path, Msg: err.Error()}}
	}
	return c.doc.Place(path, err)
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
	if errors.Is(err, fs.ErrNotExist) {
		if !explicit {
			return Default(), nil
		}
		// Said the same way by every command, as a config error (exit 2):
		// a named file that is missing is never replaced by another.
		return nil, schema.Errors{{Pos: schema.Pos{File: path}, Msg: "not found (write a starter with: moat init -o " + path + ")"}}
	}
	if err != nil {
		return nil, schema.Errors{{Pos: schema.Pos{File: path}, Msg: fmt.Sprintf("cannot read: %v", errors.Unwrap(err))}}
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
	c.File, c.doc = file, doc
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
	if c.StatusPage != nil {
		sections = append(sections, struct {
			key string
			err error
		}{"status_page", c.StatusPage.Validate(c.VPN)})
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
	if c.Alerts.Metrics != "" {
		if err := c.MetricsAddr(c.Alerts.Metrics); err != nil {
			errs = append(errs, doc.Place("alerts.metrics", err)...)
		}
	}
	errs = append(errs, c.validateSources(doc)...)
	return errs
}

// MetricsAddr checks a metrics listen address (alerts.metrics, or `moat
// gateway serve --metrics`): loopback, or inside vpn.ranges, as
// docs/metrics.md promises. A private address is not enough: on many VPS
// the provider's private network reaches other customers.
func (c *Config) MetricsAddr(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("expected host:port like 127.0.0.1:9469, found %q", addr)
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return fmt.Errorf("expected an address, not a name, in %q (like 127.0.0.1:9469)", addr)
	}
	a = a.Unmap()
	if c.VPN.AllowedSource(a) { // the status page's rule too
		return nil
	}
	if len(c.VPN.Ranges) == 0 {
		return fmt.Errorf("metrics must bind to loopback or an address in vpn.ranges, not %s (vpn.ranges is empty): they would tell others what moat sees", a)
	}
	return fmt.Errorf("metrics must bind to loopback or an address in vpn.ranges, not %s: they would tell others what moat sees", a)
}

// validateSources refuses a jail that `moat run` could not give a log
// source: auto with neither paths nor journal matches, except for sshd
// (moat finds its log) and the gateway jail fed by the gateway itself.
func (c *Config) validateSources(doc *schema.Doc) schema.Errors {
	var errs schema.Errors
	for _, name := range slices.Sorted(maps.Keys(c.Guard.Jails)) {
		j := jail.JailDefaults(name, c.Guard.Jails[name])
		if j.Enabled != nil && !*j.Enabled {
			continue
		}
		if j.Source != "auto" || len(j.Paths) > 0 || len(j.Journal) > 0 || j.Filter == "sshd" {
			continue
		}
		if name == "gateway" && j.Filter == "gateway" && c.Gateway != nil {
			continue
		}
		errs = append(errs, doc.Place("guard.jails."+name, fmt.Errorf("no log source: set guard.jails.%s.paths or journal", name))...)
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
		if base, mode, found := strings.Cut(j.Filter, "[mode="); !ok && found {
			// fail2ban's filter = sshd[mode=aggressive].
			place(p+".filter", fmt.Errorf("unknown filter %q: write filter: %s and mode: %s (fail2ban's %s)", j.Filter, base, strings.TrimSuffix(mode, "]"), j.Filter))
			continue
		}
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

// Same reports whether a and b configure the same things, whatever line
// each key was written on (an edit moves the lines below it).
func Same(a, b *Config) bool {
	x, y := *a, *b
	x.doc, y.doc = nil, nil
	return reflect.DeepEqual(x, y)
}
