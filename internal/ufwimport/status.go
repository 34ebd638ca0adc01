package ufwimport

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Policies are ufw's default policies.
type Policies struct {
	Incoming, Outgoing, Routed string // allow, deny, reject, disabled; "" unknown
}

// Status is what `ufw status verbose` says.
type Status struct {
	Active   bool
	Policies Policies
	Rules    []Rule
}

var (
	statusRule = regexp.MustCompile(`^(.+?)\s+(ALLOW|DENY|REJECT|LIMIT)(?: (IN|OUT|FWD))?(?: \((log|log-all)\))?\s+(.+?)\s*(?:\s#\s(.*))?$`)
	policyRE   = regexp.MustCompile(`(\w+) \((incoming|outgoing|routed)\)`)
	portSpecRE = regexp.MustCompile(`^([\d,:]+)(?:/(\w+))?$`)
	appParen   = regexp.MustCompile(`^(.*?) \((.+)\)$`)
)

// ReadStatus reads the output of `ufw status verbose` (or `ufw status`).
// Rules naming an application profile alone are resolved with apps.
func ReadStatus(r io.Reader, apps Apps) (*Status, error) {
	st := &Status{}
	sc := bufio.NewScanner(io.LimitReader(r, maxInput))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n, inTable, seen := 0, false, false
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case strings.HasPrefix(line, "Status: "):
			st.Active = strings.TrimPrefix(line, "Status: ") == "active"
			seen = true
			continue
		case strings.HasPrefix(line, "Default: "):
			for _, m := range policyRE.FindAllStringSubmatch(line, -1) {
				switch m[2] {
				case "incoming":
					st.Policies.Incoming = m[1]
				case "outgoing":
					st.Policies.Outgoing = m[1]
				case "routed":
					st.Policies.Routed = m[1]
				}
			}
			continue
		case strings.HasPrefix(strings.TrimSpace(line), "To ") && strings.Contains(line, "Action"):
			inTable = true
			continue
		case strings.HasPrefix(strings.TrimSpace(line), "--"):
			continue
		case strings.TrimSpace(line) == "" || !inTable:
			continue
		}
		text := strings.TrimSpace(line)
		if strings.HasPrefix(text, "[") { // status numbered
			if i := strings.Index(text, "]"); i > 0 {
				text = strings.TrimSpace(text[i+1:])
			}
		}
		m := statusRule.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("line %d: not a ufw rule: %q", n, clip(text))
		}
		rs, err := statusRules(m, apps)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		for i := range rs {
			rs[i].Line = n
		}
		st.Rules = append(st.Rules, rs...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ufw status: %w", err)
	}
	if !seen {
		return nil, fmt.Errorf("no \"Status:\" line: expected the output of ufw status verbose")
	}
	return st, nil
}

// end is one side of a status line: "22/tcp (OpenSSH) on wg0",
// "10.0.0.0/8 5432/tcp", "Anywhere (v6)".
type end struct {
	addr, ports, proto, app, iface string
	v6                             bool
}

func parseEnd(s string, apps Apps) (end, error) {
	var e end
	if strings.Contains(s, " (v6)") {
		e.v6 = true
		s = strings.ReplaceAll(s, " (v6)", "")
	}
	if i := strings.LastIndex(s, " on "); i >= 0 {
		e.iface = strings.TrimSpace(s[i+4:])
		s = strings.TrimSpace(s[:i])
		if !validIface(e.iface) || e.iface == "" {
			return e, fmt.Errorf("interface %q: expected an interface name", clip(e.iface))
		}
	}
	if m := appParen.FindStringSubmatch(s); m != nil && portSpecRE.MatchString(m[1]) {
		s, e.app = m[1], m[2]
	}
	first, rest, _ := strings.Cut(s, " ")
	if first == "Anywhere" || isAddr(first) {
		e.addr, s = first, strings.TrimSpace(rest)
	}
	if s == "" {
		return e, nil
	}
	if m := portSpecRE.FindStringSubmatch(s); m != nil {
		if _, err := splitPorts(m[1]); err != nil {
			return e, err
		}
		e.ports, e.proto = m[1], m[2]
		return e, nil
	}
	// An application profile named alone (ufw status without verbose).
	if _, ok := apps[s]; !ok {
		return e, fmt.Errorf("%q is no port and no application profile under applications.d", clip(s))
	}
	e.app = s
	return e, nil
}

func isAddr(s string) bool {
	_, err := parsePrefix(s)
	return err == nil
}

func statusRules(m []string, apps Apps) ([]Rule, error) {
	to, err := parseEnd(m[1], apps)
	if err != nil {
		return nil, err
	}
	from, err := parseEnd(m[5], apps)
	if err != nil {
		return nil, err
	}
	base := Rule{Action: strings.ToLower(m[2]), Direction: "in", Log: m[4] != "", Comment: m[6], V6: to.v6 || from.v6,
		Dst: to.addr, Src: from.addr, SPort: from.ports, DApp: to.app}
	switch m[3] {
	case "OUT":
		base.Direction, base.IfaceOut = "out", to.iface
	case "FWD":
		base.Route, base.IfaceIn, base.IfaceOut = true, from.iface, to.iface
	default:
		base.IfaceIn = to.iface
	}
	if to.ports == "" && to.app != "" {
		// Resolve the profile: one rule per protocol it lists.
		var out []Rule
		for _, p := range apps[to.app] {
			r := base
			r.DPort, r.Proto = p.ports, p.proto
			out = append(out, r)
		}
		return out, nil
	}
	base.DPort, base.Proto = to.ports, to.proto
	if base.DPort == "" {
		base.DPort = "any"
	}
	if base.Proto == "" {
		base.Proto = "any"
	}
	return []Rule{base}, nil
}
