package schema

import (
	"fmt"
	"regexp"
	"strings"
)

// Hints for names and syntax carried over from other tools, fail2ban's
// jail.local first: a key moat does not know gets moat's name for the same
// thing, or why moat needs nothing there. Kept in one table so a test can
// walk it.

// habit says what to write instead of a foreign key, in a section that
// has (or lacks) a given key of moat's.
type habit struct {
	// in is a key the section must have for the hint to fit ("" any).
	in string
	// hint follows "unknown key K".
	hint string
}

// habits by foreign key name. The first whose in-key the section has wins.
var habits = map[string][]habit{
	"logpath": {{"paths", `; did you mean "paths"? (fail2ban's logpath; a list here: paths: [/var/log/nginx/error.log])`}},
	"ignoreip": {
		{"ignore", `; did you mean "ignore"? (fail2ban's ignoreip; a list of addresses and CIDRs)`},
		{"maxretry", "; fail2ban's ignoreip is guard.ignore in moat, one list for every jail (host.admin.sources and vpn.ranges are never banned either)"},
	},
	"ignoreself":           {{"maxretry", "; moat never bans the host's own addresses: remove it"}},
	"port":                 {{"maxretry", "; moat bans an address on every port (an nftables set), so a jail takes no port: remove it"}},
	"action":               {{"maxretry", "; moat bans in its own nftables sets (table inet moat) and alerts through alerts.routes: a jail takes no action, remove it"}},
	"banaction":            {{"maxretry", "; moat bans in its own nftables sets (table inet moat), fail2ban's banaction has no equivalent: remove it"}},
	"protocol":             {{"maxretry", "; moat bans an address on every protocol: remove it"}},
	"chain":                {{"maxretry", "; moat's bans live in table inet moat, not in a chain you choose: remove it"}},
	"backend":              {{"source", `; did you mean "source"? (auto, journal or file: fail2ban's backend = systemd is source: journal, polling/pyinotify is file)`}},
	"journalmatch":         {{"journal", `; did you mean "journal"? (a list like [_SYSTEMD_UNIT=sshd.service])`}},
	"failregex":            {{"", "; a jail's regexes are a filter: define it under guard.filters.NAME.regex (with <HOST>) and name it in the jail's filter"}},
	"ignoreregex":          {{"regex", `; did you mean "ignore"?`}, {"", "; define ignore regexes with the filter, under guard.filters.NAME.ignore"}},
	"usedns":               {{"", "; moat never resolves host names, it bans addresses only: remove it"}},
	"logencoding":          {{"", "; moat reads logs as UTF-8 (bytes that are not pass through): remove it"}},
	"maxmatches":           {{"", "; moat keeps no matched lines per ban: remove it"}},
	"destemail":            {{"", "; mail goes through alerts: define alerts.notifiers.NAME with type: email and to: [...]"}},
	"sender":               {{"", "; mail goes through alerts: define alerts.notifiers.NAME with type: email and from: ..."}},
	"mta":                  {{"", "; mail goes through alerts: define alerts.notifiers.NAME with type: email"}},
	"bantime.increment":    {{"increment", `; did you mean "increment"? (increment: {enabled: true}; on by default)`}},
	"bantime.factor":       {{"increment", `; did you mean "increment"? (increment: {factor: 2})`}},
	"bantime.multipliers":  {{"increment", `; moat grows bans by a factor: increment: {factor: 2, max: 1w}`}},
	"bantime.maxtime":      {{"increment", `; did you mean "increment"? (increment: {max: 1w})`}},
	"bantime.rndtime":      {{"increment", "; moat adds no random time to bans: remove it"}},
	"bantime.overalljails": {{"increment", "; moat counts earlier bans of an address in every jail already: remove it"}},
	"findtime":             {{"jails", "; moat sets findtime per jail: guard.jails.NAME.findtime (default 10m)"}},
	"maxretry":             {{"jails", "; moat sets maxretry per jail: guard.jails.NAME.maxretry (default 5)"}},
	"bantime":              {{"jails", "; moat sets bantime per jail: guard.jails.NAME.bantime (default 1h; permanent for ever)"}},
	"enabled":              {{"", "; this section has no enabled switch"}},
	"filter":               {{"jails", "; a filter belongs to a jail: guard.jails.NAME.filter"}},
}

// habitHint is the hint for unknown key in a section with fields, or "".
func habitHint(key string, fields map[string]int) string {
	for _, h := range habits[strings.ToLower(key)] {
		if _, ok := fields[h.in]; ok || h.in == "" {
			return h.hint
		}
	}
	// Spellings: findTime, find_time, max-retry, BanTime.
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(s))
	}
	for name := range fields {
		if norm(name) == norm(key) && name != key {
			return fmt.Sprintf("; did you mean %q?", name)
		}
	}
	return ""
}

var iniLine = regexp.MustCompile(`^\s*([A-Za-z_][\w.]*)\s*=\s*(.*?)\s*$`)

// iniHint reads a scalar written as fail2ban's "key = value" and says how
// YAML writes it, with moat's name and value.
func iniHint(s string) string {
	m := iniLine.FindStringSubmatch(strings.SplitN(s, "\n", 2)[0])
	if m == nil {
		return ""
	}
	key, val := m[1], m[2]
	return fmt.Sprintf("; moat.yaml is YAML: write %q, not fail2ban's %q", yamlFor(key, val), key+" = "+val)
}

// yamlFor is key: value in moat's words, for the fail2ban habits whose
// value changes too.
func yamlFor(key, val string) string {
	switch strings.ToLower(key) {
	case "bantime":
		if strings.HasPrefix(val, "-") {
			return "bantime: permanent"
		}
		if secs := strings.TrimSpace(val); secs != "" && strings.Trim(secs, "0123456789") == "" {
			return "bantime: " + secs + "s"
		}
	case "findtime":
		if secs := strings.TrimSpace(val); secs != "" && strings.Trim(secs, "0123456789") == "" {
			return "findtime: " + secs + "s"
		}
	case "logpath":
		return "paths: [" + val + "]"
	case "ignoreip":
		return "ignore: [" + strings.Join(strings.Fields(val), ", ") + "]  (under guard)"
	case "enabled":
		return "enabled: " + strings.ToLower(val)
	case "backend":
		if val == "systemd" {
			return "source: journal"
		}
		return "source: file"
	}
	return key + ": " + val
}

// iniFile reports whether a YAML syntax error's line looks like INI: a
// [section] header or key = value.
func iniFile(line string) string {
	t := strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") && !strings.Contains(t, ","):
		return " (this looks like fail2ban's jail.local: moat.yaml is YAML, jails go under guard.jails; moat import fail2ban converts it)"
	case iniLine.MatchString(t) && !strings.Contains(t, ":"):
		m := iniLine.FindStringSubmatch(t)
		return fmt.Sprintf(" (moat.yaml is YAML: write %q, not fail2ban's %q)", yamlFor(m[1], m[2]), t)
	}
	return ""
}
