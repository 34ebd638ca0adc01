package ufwimport

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Rule is one ufw rule.
type Rule struct {
	Action    string // allow, deny, reject, limit
	Log       bool   // allow_log, …: ufw logs it; moat has no per-rule log
	Route     bool   // a routed (forward) rule
	Proto     string // tcp, udp, any, or another protocol name
	DPort     string // "22", "80,443", "60000:61000", "any"
	Dst       string // CIDR or address; 0.0.0.0/0 or ::/0 for any
	SPort     string
	Src       string
	DApp      string // application profile, if the rule names one
	Direction string // in or out
	IfaceIn   string
	IfaceOut  string
	Comment   string
	V6        bool
	Line      int // where it was read
}

// AnySrc reports whether the rule admits every source.
func (r Rule) AnySrc() bool { return isAny(r.Src) }

func isAny(s string) bool {
	return s == "" || s == "any" || s == "0.0.0.0/0" || s == "::/0" || s == "Anywhere"
}

// maxInput bounds what is read: ufw's files hold a few hundred rules.
const maxInput = 8 << 20

var tupleRE = regexp.MustCompile(`^### tuple ###\s*`)

// ReadRules reads the tuple comments of a user.rules or user6.rules file,
// as ufw reads them (_read_rules): 6 to 9 fields, the last naming the
// direction and interfaces, an optional hex comment=. A malformed tuple
// is an error naming its line, where ufw warns and skips it.
func ReadRules(r io.Reader, v6 bool) ([]Rule, error) {
	var out []Rule
	sc := bufio.NewScanner(io.LimitReader(r, maxInput))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if !tupleRE.MatchString(line) {
			continue
		}
		comment := ""
		if i := strings.Index(line, " comment="); i >= 0 {
			h := strings.TrimSpace(line[i+len(" comment="):])
			line = line[:i]
			b, err := hex.DecodeString(h)
			if err != nil || !utf8.Valid(b) {
				return nil, fmt.Errorf("line %d: comment=%q: expected ufw's hex-encoded UTF-8", n, clip(h))
			}
			comment = string(b)
		}
		f := strings.Fields(tupleRE.ReplaceAllString(line, ""))
		if len(f) < 6 || len(f) > 9 {
			return nil, fmt.Errorf("line %d: a tuple has 6 to 9 fields, found %d: %q", n, len(f), clip(line))
		}
		rule := Rule{Proto: f[1], DPort: f[2], Dst: f[3], SPort: f[4], Src: f[5], Direction: "in", Comment: comment, V6: v6, Line: n}
		action := f[0]
		if a, ok := strings.CutPrefix(action, "route:"); ok {
			rule.Route, action = true, a
		}
		if a, _, ok := strings.Cut(action, "_log"); ok {
			rule.Log, action = true, a
		}
		switch action {
		case "allow", "deny", "reject", "limit":
		default:
			return nil, fmt.Errorf("line %d: unknown action %q: expected allow, deny, reject or limit", n, clip(f[0]))
		}
		rule.Action = action
		if len(f) == 7 || len(f) == 9 {
			last := f[len(f)-1]
			dir, ifaces, _ := strings.Cut(last, "_")
			if dir != "in" && dir != "out" {
				return nil, fmt.Errorf("line %d: direction %q: expected in or out", n, clip(last))
			}
			rule.Direction = dir
			if ifaces != "" {
				if in, out, ok := strings.Cut(last, "!"); ok {
					rule.IfaceIn = strings.TrimPrefix(in, "in_")
					rule.IfaceOut = strings.TrimPrefix(out, "out_")
				} else if dir == "in" {
					rule.IfaceIn = ifaces
				} else {
					rule.IfaceOut = ifaces
				}
			}
		}
		if len(f) >= 8 {
			if f[6] != "-" {
				rule.DApp = strings.ReplaceAll(f[6], "%20", " ")
			}
		}
		if err := rule.check(); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	return out, nil
}

// check validates the fields moat will use, so that nothing odd reaches
// the YAML.
func (r Rule) check() error {
	for _, a := range []string{r.Src, r.Dst} {
		if isAny(a) {
			continue
		}
		if _, err := parsePrefix(a); err != nil {
			return fmt.Errorf("address %q: expected an address or CIDR", clip(a))
		}
	}
	if r.DPort != "any" && r.DPort != "" {
		if _, err := splitPorts(r.DPort); err != nil {
			return err
		}
	}
	for _, i := range []string{r.IfaceIn, r.IfaceOut} {
		if !validIface(i) {
			return fmt.Errorf("interface %q: expected an interface name", clip(i))
		}
	}
	if !validWord(r.Proto) {
		return fmt.Errorf("protocol %q: expected a protocol name", clip(r.Proto))
	}
	return nil
}

func validIface(s string) bool {
	if len(s) > 15 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c > '~' || c == '/' || c == ':' || c == '"' || c == '\'' || c == '#' {
			return false
		}
	}
	return true
}

func validWord(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("bad address")
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// portRange is one port or range of a ufw port list.
type portRange struct{ from, to uint16 }

// splitPorts reads "22", "80,443", "60000:61000" or a mix.
func splitPorts(s string) ([]portRange, error) {
	var out []portRange
	for _, p := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(p, ":")
		a, err := port(lo)
		if err != nil {
			return nil, fmt.Errorf("port %q: expected a port, list or range like 80,443 or 60000:61000", clip(s))
		}
		b := a
		if isRange {
			if b, err = port(hi); err != nil || b < a {
				return nil, fmt.Errorf("port %q: expected a port, list or range like 80,443 or 60000:61000", clip(s))
			}
		}
		out = append(out, portRange{a, b})
	}
	return out, nil
}

func port(s string) (uint16, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("bad port")
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port")
	}
	return uint16(n), nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
