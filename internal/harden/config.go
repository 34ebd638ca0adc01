package harden

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/moat-sh/moat/internal/schema"
)

// HostConfig is the host section.
type HostConfig struct {
	Admin   AdminConfig   `yaml:"admin"`
	Updates UpdatesConfig `yaml:"updates"`
	Swap    SwapConfig    `yaml:"swap"`
	Sysctl  SysctlConfig  `yaml:"sysctl"`
}

// AdminConfig is the operator's account and the addresses they work from.
type AdminConfig struct {
	// User is the non-root sudo user that logs in with a key.
	User string `yaml:"user"`
	// Keys are public keys in authorized_keys form to install for User.
	Keys []string `yaml:"keys"`
	// Sources are the operator's addresses: always allowed to SSH, never
	// banned, exempt from geo rules. init puts the current client here.
	Sources []schema.CIDR `yaml:"sources"`
}

// UpdatesConfig drives unattended-upgrades.
type UpdatesConfig struct {
	// Unattended installs and enables unattended-upgrades (security origin).
	Unattended *bool `yaml:"unattended"`
	// RebootTime, when set ("04:30"), lets the host reboot by itself when an
	// update requires it.
	RebootTime string `yaml:"reboot_time"`
}

// SwapConfig describes the swapfile.
type SwapConfig struct {
	// Size of /swapfile; 0 means the default (2GiB where RAM ≤ 4GiB, none
	// otherwise). Use "none" via Disabled to manage no swap.
	Size       schema.Size `yaml:"size"`
	Disabled   bool        `yaml:"disabled"`
	Swappiness *int        `yaml:"swappiness"`
}

// SysctlConfig tunes the kernel set; the VPS-aware defaults cover most hosts.
type SysctlConfig struct {
	// Disabled leaves the kernel settings alone (vm.swappiness of a swap
	// moat manages is still written).
	Disabled bool `yaml:"disabled"`
	// KeepForwarding keeps ip_forward on; detected automatically for Docker,
	// WireGuard and Tailscale, forced here.
	KeepForwarding *bool `yaml:"keep_forwarding"`
	// Extra sysctls written as they are, e.g. {"net.core.somaxconn": "4096"}.
	Extra map[string]string `yaml:"extra"`
}

// SSHConfig is the ssh section: how sshd should behave and how far it is
// exposed.
type SSHConfig struct {
	// Port sshd listens on. Changing it keeps the old port until confirmed.
	Port schema.Port `yaml:"port"`
	// Exposure is the stage: public → vpn+public → vpn.
	Exposure schema.Exposure `yaml:"exposure"`
	// PasswordAuthentication; off by default (keys only).
	PasswordAuthentication bool `yaml:"password_authentication"`
	// PermitRootLogin: "no" (default) or "prohibit-password".
	PermitRootLogin string `yaml:"permit_root_login"`
	// AllowUsers and AllowGroups restrict who may log in; the admin user is
	// always added.
	AllowUsers  []string `yaml:"allow_users"`
	AllowGroups []string `yaml:"allow_groups"`
	// MaxAuthTries and LoginGraceTime bound each connection.
	MaxAuthTries   int             `yaml:"max_auth_tries"`
	LoginGraceTime schema.Duration `yaml:"login_grace_time"`
	// RateLimit is the firewall's per-source limit on new SSH connections.
	RateLimit schema.Rate `yaml:"rate_limit"`
}

// DefaultSSH is the hardened profile: keys only, no root, port 22, public.
func DefaultSSH() SSHConfig {
	return SSHConfig{
		Port:            22,
		Exposure:        schema.ExposurePublic,
		PermitRootLogin: "no",
		MaxAuthTries:    3,
		LoginGraceTime:  schema.Duration(30e9),
		RateLimit:       schema.Rate{N: 10, Per: 60e9},
	}
}

// DefaultHost is the host section's defaults.
func DefaultHost() HostConfig {
	on := true
	return HostConfig{Updates: UpdatesConfig{Unattended: &on}}
}

var (
	userName   = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	sysctlName = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_.-]+)+$`)
)

// ValidUserName checks a name the way Debian's adduser accepts it by default.
func ValidUserName(s string) error {
	if !userName.MatchString(s) {
		return fmt.Errorf("invalid user name %q: expected lower case letters, digits, _ or -, starting with a letter", s)
	}
	return nil
}

// Validate checks the host section.
func (c HostConfig) Validate() error {
	var errs []error
	if c.Admin.User != "" {
		if err := ValidUserName(c.Admin.User); err != nil {
			errs = append(errs, schema.Errorf("admin.user", "%v", err))
		}
		if c.Admin.User == "root" {
			errs = append(errs, schema.Errorf("admin.user", "the admin user must not be root: name the non-root sudo user you log in as"))
		}
	}
	for i, k := range c.Admin.Keys {
		f := strings.Fields(k)
		if len(f) < 2 || !(strings.HasPrefix(f[0], "ssh-") || strings.HasPrefix(f[0], "ecdsa-") || strings.HasPrefix(f[0], "sk-")) {
			errs = append(errs, schema.Errorf(fmt.Sprintf("admin.keys[%d]", i), "expected a public key line like \"ssh-ed25519 AAAA… comment\""))
		}
	}
	if t := c.Updates.RebootTime; t != "" {
		var h, m int
		if n, err := fmt.Sscanf(t, "%d:%d", &h, &m); n != 2 || err != nil || h > 23 || m > 59 || h < 0 || m < 0 || len(t) != 5 {
			errs = append(errs, schema.Errorf("updates.reboot_time", "expected a time like 04:30, found %q", t))
		}
	}
	if s := c.Swap.Swappiness; s != nil && (*s < 0 || *s > 200) {
		errs = append(errs, schema.Errorf("swap.swappiness", "expected 0 to 200, found %d", *s))
	}
	if c.Swap.Disabled && c.Swap.Size != 0 {
		errs = append(errs, schema.Errorf("swap.size", "a size is set while swap is disabled"))
	}
	for k := range c.Sysctl.Extra {
		if !sysctlName.MatchString(k) {
			errs = append(errs, schema.Errorf("sysctl.extra."+k, "not a sysctl name like net.core.somaxconn"))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the ssh section.
func (c SSHConfig) Validate() error {
	var errs []error
	if err := schema.OneOf(c.PermitRootLogin, "no", "prohibit-password"); err != nil {
		errs = append(errs, schema.Errorf("permit_root_login", "%v (moat never permits root logins with a password)", err))
	}
	for i, u := range c.AllowUsers {
		if err := ValidUserName(u); err != nil {
			errs = append(errs, schema.Errorf(fmt.Sprintf("allow_users[%d]", i), "%v", err))
		}
	}
	for i, g := range c.AllowGroups {
		if err := ValidUserName(g); err != nil {
			errs = append(errs, schema.Errorf(fmt.Sprintf("allow_groups[%d]", i), "%v", err))
		}
	}
	if c.MaxAuthTries < 1 || c.MaxAuthTries > 10 {
		errs = append(errs, schema.Errorf("max_auth_tries", "expected 1 to 10, found %d", c.MaxAuthTries))
	}
	if d := c.LoginGraceTime.D(); d < 5e9 || d > 600e9 {
		errs = append(errs, schema.Errorf("login_grace_time", "expected 5s to 10m, found %s", c.LoginGraceTime))
	}
	return errors.Join(errs...)
}
