package jail

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/schema"
)

// Config is the guard section: jails and user-defined filters.
type Config struct {
	// Enabled runs the guard in `moat run` (on by default).
	Enabled *bool `yaml:"enabled"`
	// Ignore lists sources never banned, besides the host's own addresses,
	// the VPN ranges, the admin sources and the operator's current address.
	Ignore []schema.CIDR `yaml:"ignore"`
	// MaxTracked caps the addresses with failures in memory, so a spray of
	// millions of addresses cannot exhaust it.
	MaxTracked int `yaml:"max_tracked"`
	// Jails by name; sshd and gateway are built in and on by default.
	Jails map[string]Jail `yaml:"jails"`
	// Filters defines filters by name for jails to use.
	Filters map[string]Filter `yaml:"filters"`
	// Blocklists are shared lists of networks to drop (internal/blocklist),
	// loaded into their own sets beside the ban sets.
	Blocklists []blocklist.Source `yaml:"blocklists"`
}

// Jail is one jail: a filter over a log source and the ban arithmetic.
type Jail struct {
	Enabled *bool `yaml:"enabled"`
	// Filter names a built-in filter (sshd, nginx-http-auth, nginx-limit-req,
	// nginx-botsearch, nginx-bad-request, traefik-auth, caddy-auth, gateway)
	// or one under guard.filters. Defaults to the jail's name.
	Filter string `yaml:"filter"`
	// Mode is the filter mode (sshd: normal, ddos, aggressive).
	Mode string `yaml:"mode"`
	// Source is "auto", "journal" or "file".
	Source string `yaml:"source"`
	// Paths are log files for a file source.
	Paths []string `yaml:"paths"`
	// Journal matches for a journal source, on trusted fields only
	// (journald sets those whose names start with '_'), e.g.
	// _SYSTEMD_UNIT=nginx.service; "+" ORs groups, as for journalctl.
	Journal []string `yaml:"journal"`
	// MaxRetry failures within FindTime ban for BanTime.
	MaxRetry int             `yaml:"maxretry"`
	FindTime schema.Duration `yaml:"findtime"`
	BanTime  schema.Duration `yaml:"bantime,permanent"` // or permanent
	// Increment grows BanTime for repeat offenders: bantime × factor^(bans
	// before), capped at Max.
	Increment Increment `yaml:"increment"`
}

// Increment is the incremental bantime (recidive built in).
type Increment struct {
	Enabled *bool           `yaml:"enabled"`
	Factor  float64         `yaml:"factor"`
	Max     schema.Duration `yaml:"max"`
}

// Filter is a user-defined filter: regular expressions with a <HOST>
// placeholder, matched against whole lines.
type Filter struct {
	Regex  []string `yaml:"regex"`
	Ignore []string `yaml:"ignore"`
}

// Default is the guard section's defaults: sshd and gateway jails.
func Default() Config {
	return Config{MaxTracked: 1 << 20, Jails: map[string]Jail{}}
}

// JailDefaults fills a jail's unset fields.
func JailDefaults(name string, j Jail) Jail {
	if j.Filter == "" {
		j.Filter = name
	}
	if j.Source == "" {
		j.Source = "auto"
	}
	if j.MaxRetry == 0 {
		j.MaxRetry = 5
	}
	if j.FindTime == 0 {
		j.FindTime = schema.Duration(10 * time.Minute)
	}
	if j.BanTime == 0 {
		j.BanTime = schema.Duration(time.Hour)
	}
	if j.Increment.Factor == 0 {
		j.Increment.Factor = 2
	}
	if j.Increment.Max == 0 {
		j.Increment.Max = schema.Duration(7 * 24 * time.Hour)
	}
	return j
}

// Validate checks the guard section, compiling user filters with Go's
// linear-time regexp so a filter can never be a ReDoS.
func (c Config) Validate() error {
	var errs []error
	if c.MaxTracked < 1000 {
		errs = append(errs, schema.Errorf("max_tracked", "expected at least 1000, found %d", c.MaxTracked))
	}
	// Filter names, modes and user regexes are the filter layer's to judge:
	// internal/config checks them with internal/filter, which compiles them
	// exactly as the daemon will.
	if err := blocklist.Validate(c.Blocklists); err != nil {
		errs = append(errs, err)
	}
	for name, f := range c.Filters {
		if len(f.Regex) == 0 {
			errs = append(errs, schema.Errorf("filters."+name+".regex", "a filter needs at least one regex"))
		}
	}
	for name, j := range c.Jails {
		p := "jails." + name
		j = JailDefaults(name, j)
		if err := schema.OneOf(j.Source, "auto", "journal", "file"); err != nil {
			errs = append(errs, schema.Errorf(p+".source", "%v", err))
		}
		if j.Source == "file" && len(j.Paths) == 0 {
			errs = append(errs, schema.Errorf(p+".paths", "source file needs at least one path"))
		}
		for i, m := range j.Journal {
			at := fmt.Sprintf("%s.journal[%d]", p, i)
			k, _, ok := strings.Cut(m, "=")
			switch {
			case m == "+":
			case !ok || k == "" || strings.ToUpper(k) != k:
				errs = append(errs, schema.Errorf(at, "expected a journal match like _SYSTEMD_UNIT=nginx.service, found %q", m))
			case !strings.HasPrefix(k, "_"):
				// Bans must rest on what journald vouches for.
				errs = append(errs, schema.Errorf(at, "%s is set by whoever logs the entry (any local user can log SYSLOG_IDENTIFIER=sshd with logger -t): match on fields journald sets, whose names start with '_', such as _SYSTEMD_UNIT=nginx.service or _COMM=nginx", k))
			}
		}
		if j.MaxRetry < 1 || j.MaxRetry > maxMaxRetry {
			errs = append(errs, schema.Errorf(p+".maxretry", "expected 1 to %d, found %d", maxMaxRetry, j.MaxRetry))
		}
		if j.Increment.Factor < 1 {
			errs = append(errs, schema.Errorf(p+".increment.factor", "expected at least 1, found %g", j.Increment.Factor))
		}
		if j.Increment.Max < j.BanTime && j.BanTime != schema.Permanent {
			errs = append(errs, schema.Errorf(p+".increment.max", "the maximum bantime %s is below the bantime %s", j.Increment.Max, j.BanTime))
		}
	}
	return errors.Join(errs...)
}

// IsEnabled reports whether the guard runs (on by default).
func (c Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }
