package f2bimport

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Jail is one fail2ban jail, its options read and interpolated as
// fail2ban reads them.
type Jail struct {
	Name      string
	Enabled   bool
	Backend   string
	Filter    string            // filter file name, without options
	FilterOpt map[string]string // its [k=v] options (mode=aggressive)
	LogPaths  []string
	Ports     string
	Protocol  string
	IgnoreIP  []string
	MaxRetry  int
	FindTime  time.Duration
	BanTime   time.Duration // negative: for ever
	Increment Increment
	Actions   []Action
	// Errors are what fail2ban would refuse the jail for.
	Errors []error
}

// Increment is bantime.increment and its knobs.
type Increment struct {
	Enabled     bool
	Factor      string
	Formula     string
	Multipliers string
	MaxTime     time.Duration
	RndTime     string
	OverallJail bool
}

// Action is one entry of a jail's action list: name[opts].
type Action struct {
	Name string
	Opts map[string]string
}

// notJails are the sections of jail files that are not jails.
var notJails = map[string]bool{"INCLUDES": true, "Definition": true, "Init": true}

// Jails reads every jail of dir/jail.* in the order sections first
// appear.
func Jails(c *Config) []Jail {
	var out []Jail
	for _, name := range c.Sections() {
		if notJails[name] || strings.HasPrefix(name, "KNOWN/") || strings.Contains(name, "?") {
			continue
		}
		out = append(out, readJail(c, name))
	}
	return out
}

func readJail(c *Config, name string) Jail {
	j := Jail{Name: name}
	get := func(opt, def string) string {
		v, err := c.Get(name, opt, nil)
		if errors.Is(err, ErrNoOption) {
			return def
		}
		if err != nil {
			j.Errors = append(j.Errors, err)
			return def
		}
		return v
	}
	j.Enabled = parseBool(get("enabled", "false"))
	j.Backend = strings.TrimSpace(get("backend", "auto"))
	flt := strings.TrimSpace(get("filter", ""))
	if flt != "" {
		n, opts, err := ExtractOptions(flt)
		if err != nil {
			j.Errors = append(j.Errors, fmt.Errorf("filter %q: %w", clip(flt), err))
		}
		j.Filter, j.FilterOpt = n, opts
	}
	j.LogPaths = strings.Fields(get("logpath", ""))
	j.Ports = strings.TrimSpace(get("port", ""))
	j.Protocol = strings.TrimSpace(get("protocol", "tcp"))
	j.IgnoreIP = strings.Fields(strings.ReplaceAll(get("ignoreip", ""), ",", " "))
	if s := strings.TrimSpace(get("maxretry", "5")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			j.Errors = append(j.Errors, fmt.Errorf("maxretry %q: expected a whole number", clip(s)))
			n = 5
		}
		j.MaxRetry = n
	}
	dur := func(opt, def string) time.Duration {
		s := get(opt, def)
		v, err := ParseTime(s)
		if err != nil {
			j.Errors = append(j.Errors, fmt.Errorf("%s: %w", opt, err))
			v, _ = ParseTime(def)
		}
		if v < 0 {
			return -1
		}
		return Seconds(v)
	}
	j.FindTime = dur("findtime", "600")
	j.BanTime = dur("bantime", "600")
	j.Increment.Enabled = parseBool(get("bantime.increment", "false"))
	j.Increment.Factor = strings.TrimSpace(get("bantime.factor", ""))
	j.Increment.Formula = strings.TrimSpace(get("bantime.formula", ""))
	j.Increment.Multipliers = strings.TrimSpace(get("bantime.multipliers", ""))
	j.Increment.RndTime = strings.TrimSpace(get("bantime.rndtime", ""))
	j.Increment.OverallJail = parseBool(get("bantime.overalljails", "false"))
	if get("bantime.maxtime", "") != "" {
		j.Increment.MaxTime = dur("bantime.maxtime", "0")
	}
	if j.Enabled {
		// fail2ban interpolates the action only for jails it starts; a
		// disabled jail may name options nobody defined.
		for _, a := range SplitWithOptions(get("action", "")) {
			n, opts, err := ExtractOptions(a)
			if err != nil {
				j.Errors = append(j.Errors, fmt.Errorf("action %q: %w", clip(a), err))
				continue
			}
			j.Actions = append(j.Actions, Action{Name: n, Opts: opts})
		}
	}
	return j
}

// parseBool reads a boolean as fail2ban's converter does.
func parseBool(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true
	}
	return false
}

var (
	optionRE  = regexp.MustCompile(`(?s)^([^\[]+)(?:\[(.*)\])?\s*$`)
	extractRE = regexp.MustCompile(`(?s)\s*([\w\-_\.]+)=(?:"([^"]*)"|'([^']*)'|([^,\]]*))(?:,|\]\s*\[|$)|,?\s*$`)
	splitRE   = regexp.MustCompile(`(?s)(?:[^\[\s]+(?:\s*\[\s*(?:[\w\-_\.]+=(?:"[^"]*"|'[^']*'|[^,\]]*)\s*(?:,|\]\s*\[)?\s*)*\])?|\S+)`)
)

// ExtractOptions splits "name[k=v, k2="v 2"]" as fail2ban's
// extractOptions does.
func ExtractOptions(s string) (string, map[string]string, error) {
	m := optionRE.FindStringSubmatch(s)
	if m == nil {
		return "", nil, fmt.Errorf("unexpected option syntax: expected name[key=value, ...]")
	}
	name, opts := strings.TrimSpace(m[1]), map[string]string{}
	rest := m[2]
	for rest != "" {
		loc := extractRE.FindStringSubmatchIndex(rest)
		if loc == nil || loc[0] != 0 || loc[1] == 0 {
			return name, opts, fmt.Errorf("unexpected syntax in options at %q", clip(rest))
		}
		sub := func(i int) string {
			if loc[2*i] < 0 {
				return ""
			}
			return rest[loc[2*i]:loc[2*i+1]]
		}
		if k := sub(1); k != "" {
			v := sub(2) + sub(3) + sub(4)
			opts[k] = strings.TrimSpace(v)
		}
		rest = rest[loc[1]:]
	}
	return name, opts, nil
}

// SplitWithOptions splits a list of name[opts] entries on blank space
// outside brackets and quotes.
func SplitWithOptions(s string) []string {
	return splitRE.FindAllString(s, -1)
}
