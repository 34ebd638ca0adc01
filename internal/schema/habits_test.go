package schema

import (
	"strings"
	"testing"
)

type habitJail struct {
	Enabled  *bool    `yaml:"enabled"`
	Filter   string   `yaml:"filter"`
	Source   string   `yaml:"source"`
	Paths    []string `yaml:"paths"`
	Journal  []string `yaml:"journal"`
	MaxRetry int      `yaml:"maxretry"`
	FindTime Duration `yaml:"findtime"`
	BanTime  Duration `yaml:"bantime,permanent"`
	Incr     struct {
		Factor float64  `yaml:"factor"`
		Max    Duration `yaml:"max"`
	} `yaml:"increment"`
}

type habitFilter struct {
	Regex  []string `yaml:"regex"`
	Ignore []string `yaml:"ignore"`
}

// habitConfig has the shape of moat's guard section, so the hints are
// judged where they are met.
type habitConfig struct {
	Guard struct {
		Enabled *bool                  `yaml:"enabled"`
		Ignore  []CIDR                 `yaml:"ignore"`
		Jails   map[string]habitJail   `yaml:"jails"`
		Filters map[string]habitFilter `yaml:"filters"`
	} `yaml:"guard"`
	SSH struct {
		Port Port `yaml:"port"`
	} `yaml:"ssh"`
}

// TestFail2banHabits attacks the promise that a fail2ban user's names and
// syntax get moat's, at file:line:col: every habit, in the section where
// a jail.local user would write it.
func TestFail2banHabits(t *testing.T) {
	jail := func(line string) string { return "guard:\n  jails:\n    sshd:\n      " + line + "\n" }
	cases := []struct{ name, yaml, want string }{
		{"logpath", jail("logpath: /var/log/auth.log"), `unknown key "logpath"; did you mean "paths"?`},
		{"ignoreip in a jail", jail("ignoreip: 127.0.0.1/8"), "ignoreip is guard.ignore in moat"},
		{"ignoreip in guard", "guard:\n  ignoreip: [10.0.0.1]\n", `did you mean "ignore"?`},
		{"port", jail("port: ssh"), "a jail takes no port"},
		{"action", jail("action: '%(action_mwl)s'"), "a jail takes no action"},
		{"banaction", jail("banaction: iptables-multiport"), "banaction has no equivalent"},
		{"backend", jail("backend: systemd"), `did you mean "source"? (auto, journal or file: fail2ban's backend = systemd is source: journal`},
		{"journalmatch", jail("journalmatch: _SYSTEMD_UNIT=sshd.service"), `did you mean "journal"?`},
		{"bantime -1", jail("bantime: -1"), "a ban that never ends is bantime: permanent"},
		{"bantime = -1", jail("bantime = -1"), `write "bantime: permanent", not fail2ban's "bantime = -1"`},
		{"bantime in seconds, INI", jail("bantime = 604800"), `write "bantime: 604800s"`},
		{"findtime spelled", jail("find_time: 10m"), `did you mean "findtime"?`},
		{"findTime spelled", jail("findTime: 10m"), `did you mean "findtime"?`},
		{"maxRetry spelled", jail("maxRetry: 3"), `did you mean "maxretry"?`},
		{"max-retry spelled", jail("max-retry: 3"), `did you mean "maxretry"?`},
		{"enabled = true", jail("enabled = true"), `write "enabled: true"`},
		{"findtime in DEFAULT", "guard:\n  findtime: 10m\n", "guard.jails.NAME.findtime"},
		{"maxretry in DEFAULT", "guard:\n  maxretry: 3\n", "guard.jails.NAME.maxretry"},
		{"bantime in DEFAULT", "guard:\n  bantime: 1h\n", "guard.jails.NAME.bantime"},
		{"filter in guard", "guard:\n  filter: sshd\n", "guard.jails.NAME.filter"},
		{"enabled elsewhere", "ssh:\n  enabled: true\n", "this section has no enabled switch"},
		{"bantime.increment", jail("bantime.increment: true"), `did you mean "increment"? (increment: {enabled: true}`},
		{"bantime.maxtime", jail("bantime.maxtime: 5w"), "increment: {max: 1w}"},
		{"failregex", jail("failregex: '^Failed .* from <HOST>'"), "guard.filters.NAME.regex"},
		{"usedns", jail("usedns: no"), "moat never resolves host names"},
		{"destemail", jail("destemail: root@localhost"), "type: email"},
		{"jail.local pasted", "[sshd]\nenabled = true\nport = ssh\n", "this looks like fail2ban's jail.local"},
		{"permanent elsewhere", jail("findtime: permanent"), "permanent is only for a jail's bantime"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c habitConfig
			_, err := Decode("moat.yaml", []byte(tc.yaml), &c)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got  %v\nwant %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "moat.yaml:") {
				t.Errorf("no position: %v", err)
			}
		})
	}
	// And moat's own spelling of the same thing is accepted.
	var c habitConfig
	if _, err := Decode("moat.yaml", []byte(jail("bantime: permanent")), &c); err != nil || c.Guard.Jails["sshd"].BanTime != Permanent {
		t.Fatalf("bantime: permanent: %v %v", err, c.Guard.Jails["sshd"].BanTime)
	}
	if Permanent.String() != "permanent" {
		t.Errorf("Permanent prints %q", Permanent)
	}
}
