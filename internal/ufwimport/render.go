package ufwimport

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moat-sh/moat/internal/schema"
)

// Input is what an import reads.
type Input struct {
	Source   string // what was read, for the header
	Active   *bool  // ufw enabled; nil unknown
	Policies Policies
	Rules    []Rule
	// SSHPort is sshd's port (22 when 0): moat opens it itself.
	SSHPort uint16
}

// vpnPrefixes name the interfaces of WireGuard, Tailscale, OpenVPN,
// ZeroTier and Nebula.
var vpnPrefixes = []string{"wg", "tailscale", "tun", "zt", "nebula"}

// IsVPNInterface reports whether name looks like a VPN's interface.
func IsVPNInterface(name string) bool {
	for _, p := range vpnPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

type item struct {
	spec schema.PortSpec
	note string
}

type allowRule struct {
	ports   []schema.PortSpec
	sources []string
	notes   []string
}

type render struct {
	public, vpn []item
	allow       []*allowRule
	ifaces      []string
	notes       []string
	seen        map[string]bool
}

func (r *render) once(key string) bool {
	if r.seen[key] {
		return false
	}
	r.seen[key] = true
	return true
}

func (r *render) note(format string, a ...any) {
	n := oneLine(fmt.Sprintf(format, a...))
	if r.once("note " + n) {
		r.notes = append(r.notes, n)
	}
}

// Translate writes the moat.yaml firewall (and vpn) sections equivalent
// to in's rules.
func Translate(in Input) string {
	ssh := in.SSHPort
	if ssh == 0 {
		ssh = 22
	}
	r := &render{seen: map[string]bool{}}
	if in.Active != nil && !*in.Active {
		r.note("ufw is inactive: its rules are not enforced now")
	}
	switch in.Policies.Incoming {
	case "", "deny", "reject":
	default:
		r.note("ufw's incoming policy is %s; moat's firewall drops every port not listed below", in.Policies.Incoming)
	}
	switch in.Policies.Outgoing {
	case "", "allow":
	default:
		r.note("ufw's outgoing policy is %s; moat filters inbound traffic only", in.Policies.Outgoing)
	}
	switch in.Policies.Routed {
	case "", "disabled", "deny", "reject":
	default:
		r.note("ufw's routed policy is %s; moat leaves forwarding to its forward chain's rules (published Docker ports)", in.Policies.Routed)
	}
	for _, rule := range in.Rules {
		r.rule(rule, ssh)
	}
	return r.yaml(in)
}

func (r *render) rule(ru Rule, ssh uint16) {
	desc := describe(ru)
	switch {
	case ru.Route:
		r.note("%s: a routed rule; moat does not filter forwarded traffic beyond published container ports", desc)
		return
	case ru.Direction == "out":
		r.note("%s: an outbound rule; moat filters inbound traffic only", desc)
		return
	case ru.Action == "deny" || ru.Action == "reject":
		if ru.AnySrc() {
			r.note("%s: moat drops every port it does not open", desc)
		} else {
			r.note("%s: ban that source for good with moat ban %s", desc, ru.Src)
		}
		return
	case ru.SPort != "" && ru.SPort != "any":
		r.note("%s: not imported: moat's rules have no source port", desc)
		return
	case !isAny(ru.Dst):
		r.note("%s: to %s only; moat opens the port on every address of the host", desc, ru.Dst)
	}
	protos := []string{ru.Proto}
	switch ru.Proto {
	case "tcp", "udp":
	case "any":
		protos = []string{"tcp", "udp"}
	default:
		r.note("%s: not imported: moat opens tcp and udp ports, not protocol %s", desc, ru.Proto)
		return
	}
	dports := ru.DPort
	if dports == "any" || dports == "" {
		dports = "1:65535"
	}
	ranges, err := splitPorts(dports)
	if err != nil {
		r.note("%s: not imported: %v", desc, err)
		return
	}
	var specs []schema.PortSpec
	for _, p := range protos {
		for _, pr := range ranges {
			specs = append(specs, schema.PortSpec{Proto: p, From: pr.from, To: pr.to})
		}
	}
	why := ""
	if ru.Comment != "" {
		why = ru.Comment
	}
	if ru.Action == "limit" {
		r.note("%s: ufw's limit (6 new connections in 30s per source) has no per-port equivalent; moat's guard bans brute force (and ssh.rate_limit limits new SSH connections)", desc)
	}
	if ru.Log {
		r.note("%s: ufw logs it; moat logs drops only (firewall.log_drops)", desc)
	}
	switch {
	case ru.IfaceIn != "" && IsVPNInterface(ru.IfaceIn):
		if r.once("iface " + ru.IfaceIn) {
			r.ifaces = append(r.ifaces, ru.IfaceIn)
		}
		if !ru.AnySrc() {
			r.note("%s: from %s on %s; moat opens the port to the whole VPN", desc, ru.Src, ru.IfaceIn)
		}
		for _, s := range specs {
			if r.once("vpn " + s.String()) {
				r.vpn = append(r.vpn, item{s, why})
			}
		}
	case ru.IfaceIn != "":
		r.note("%s: not imported: open on %s only, and moat has per-interface rules for the VPN alone (list %s under vpn.interfaces if it is private, or the port under firewall.public)", desc, ru.IfaceIn, ru.IfaceIn)
	case !ru.AnySrc():
		src, err := parsePrefix(ru.Src)
		if err != nil {
			r.note("%s: not imported: source %q", desc, ru.Src)
			return
		}
		r.addAllow(specs, src.String(), why)
	default:
		for _, s := range specs {
			if s.Proto == "tcp" && s.From == ssh && s.To == ssh {
				r.note("%s: moat opens sshd's port itself (ssh.port, staged by ssh.exposure)", desc)
				continue
			}
			if s.From == 1 && s.To == 65535 {
				r.note("%s: not imported: every %s port open to everyone; list the ports to open under firewall.public", desc, s.Proto)
				continue
			}
			if r.once("public " + s.String()) {
				if what, ok := datastores[s.From]; ok && s.From == s.To {
					why = strings.TrimPrefix(why+"; ", "; ") + what + " open to everyone, as ufw had it: consider firewall.vpn or firewall.allow"
				}
				r.public = append(r.public, item{s, why})
			}
		}
	}
}

// addAllow adds sources for ports, merged with a rule of the same ports.
func (r *render) addAllow(specs []schema.PortSpec, src, why string) {
	key := fmt.Sprint(specs)
	for _, a := range r.allow {
		if fmt.Sprint(a.ports) == key {
			if !contains(a.sources, src) {
				a.sources = append(a.sources, src)
			}
			if why != "" && !contains(a.notes, why) {
				a.notes = append(a.notes, why)
			}
			return
		}
	}
	a := &allowRule{ports: specs, sources: []string{src}}
	if why != "" {
		a.notes = append(a.notes, why)
	}
	r.allow = append(r.allow, a)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// describe writes a rule the way `ufw status` would, roughly.
func describe(ru Rule) string {
	var b strings.Builder
	b.WriteString("ufw ")
	if ru.Route {
		b.WriteString("route ")
	}
	b.WriteString(ru.Action)
	if ru.Direction == "out" {
		b.WriteString(" out")
	}
	if ru.IfaceIn != "" {
		b.WriteString(" in on " + ru.IfaceIn)
	}
	if ru.IfaceOut != "" {
		b.WriteString(" out on " + ru.IfaceOut)
	}
	if !ru.AnySrc() {
		b.WriteString(" from " + ru.Src)
	}
	if !isAny(ru.Dst) {
		b.WriteString(" to " + ru.Dst)
	}
	if ru.DApp != "" {
		b.WriteString(" app " + strconv.Quote(ru.DApp))
	}
	if ru.DPort != "" && ru.DPort != "any" {
		b.WriteString(" port " + ru.DPort)
	}
	if ru.Proto != "any" && ru.Proto != "" {
		b.WriteString(" proto " + ru.Proto)
	}
	// IPv4 and IPv6 twins read as one rule: no "(v6)".
	return b.String()
}

func (r *render) yaml(in Input) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("# moat.yaml sections imported from ufw (%s) by `moat import ufw`.", oneLine(in.Source))
	p("# Review, merge into /etc/moat/moat.yaml, then: moat config check && moat plan")
	for _, n := range r.notes {
		p("# %s", n)
	}
	if in.SSHPort != 0 && in.SSHPort != 22 {
		p("ssh:")
		p("  port: %d   # sshd's port: moat opens it itself, as ssh.exposure says", in.SSHPort)
	}
	if len(r.ifaces) > 0 {
		p("vpn:")
		p("  interfaces: [%s]", strings.Join(quoteAll(r.ifaces), ", "))
	}
	p("firewall:")
	if len(r.public) == 0 {
		p("  public: []   # ufw opens no port to everyone (besides SSH)")
	} else {
		p("  public:")
		for _, it := range r.public {
			p("    - %s%s", it.spec, comment(it.note))
		}
	}
	if len(r.vpn) > 0 {
		p("  vpn:")
		for _, it := range r.vpn {
			p("    - %s%s", it.spec, comment(it.note))
		}
	}
	if len(r.allow) > 0 {
		p("  allow:")
		for _, a := range r.allow {
			ports := make([]string, len(a.ports))
			for i, s := range a.ports {
				ports[i] = s.String()
			}
			p("    - ports: [%s]%s", strings.Join(ports, ", "), comment(strings.Join(a.notes, "; ")))
			p("      sources: [%s]", strings.Join(quoteAll(a.sources), ", "))
		}
	}
	return b.String()
}

func comment(s string) string {
	if s == "" {
		return ""
	}
	return "   # " + oneLine(s)
}

// oneLine keeps text from the rules (comments are the operator's) on one
// comment line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
}

// quoteAll single-quotes each value for a YAML flow sequence, where
// ':' or '#' would otherwise be read as syntax.
func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return out
}

// datastores are ports that are rarely meant to be public.
var datastores = map[uint16]string{
	3306: "MySQL", 5432: "PostgreSQL", 1433: "SQL Server", 6379: "Redis", 27017: "MongoDB",
	11211: "memcached", 9200: "Elasticsearch", 2375: "the Docker API", 2376: "the Docker API",
}
