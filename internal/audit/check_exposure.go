package audit

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/ruleset"
)

// sensitivePorts are datastores, queues and admin APIs that must never face
// the internet: a wildcard bind of any of these is how VPS databases get
// ransomed.
var sensitivePorts = map[uint16]string{
	1433: "SQL Server", 1521: "Oracle", 2375: "Docker API (plain)", 2376: "Docker API (TLS)",
	2379: "etcd", 3306: "MySQL/MariaDB", 4369: "Erlang port mapper", 5432: "PostgreSQL",
	5601: "Kibana", 5672: "RabbitMQ", 5984: "CouchDB", 6333: "Qdrant", 6334: "Qdrant gRPC",
	6379: "Redis", 6443: "Kubernetes API", 7474: "Neo4j", 8086: "InfluxDB", 8200: "Vault",
	8500: "Consul", 9000: "MinIO/Portainer", 9042: "Cassandra", 9090: "Prometheus",
	9100: "node_exporter", 9200: "Elasticsearch", 9300: "Elasticsearch transport",
	10250: "kubelet", 11211: "memcached", 15672: "RabbitMQ admin", 27017: "MongoDB",
	28015: "RethinkDB", 19530: "Milvus", 8983: "Solr",
}

// sensitiveProcesses catch datastores on non-default ports.
var sensitiveProcesses = map[string]string{
	"redis-server": "Redis", "postgres": "PostgreSQL", "mysqld": "MySQL", "mariadbd": "MariaDB",
	"mongod": "MongoDB", "memcached": "memcached", "dockerd": "Docker API", "etcd": "etcd",
	"qdrant": "Qdrant", "valkey-server": "Valkey",
}

// IsSensitive reports whether a listener on port, owned by process, is a
// datastore or admin service that must never face the internet.
func IsSensitive(port uint16, process string) bool {
	_, ok := sensitive(host.Listener{Addr: netip.AddrPortFrom(netip.IPv4Unspecified(), port), Process: process})
	return ok
}

func sensitive(l host.Listener) (string, bool) {
	if name, ok := sensitiveProcesses[l.Process]; ok {
		return name, true
	}
	name, ok := sensitivePorts[l.Addr.Port()]
	return name, ok
}

// reach is whether the internet can reach a socket, and why.
type reach struct {
	ok      bool
	certain bool
	why     string
}

// target is one address the internet can send to: an address of a public
// interface (or the one a listener is bound to), with that interface.
type target struct {
	iface string
	index int
	addr  netip.Addr
}

// publicTargets lists every address of every public interface, IPv4 and
// IPv6 (link-local addresses excepted: they are not routed to).
func (f *facts) publicTargets() []target {
	ifs, err := f.ifaces()
	if err != nil {
		return nil
	}
	pub := f.publicIfaces()
	var out []target
	for _, name := range pub {
		for _, i := range ifs {
			if i.Name != name {
				continue
			}
			for _, a := range i.Addrs {
				ad := a.Addr().Unmap()
				if ad.IsLinkLocalUnicast() || ad.IsLoopback() || slices.ContainsFunc(out, func(t target) bool { return t.addr == ad }) {
					continue
				}
				out = append(out, target{iface: i.Name, index: i.Index, addr: ad})
			}
		}
	}
	return out
}

// listenerTargets are the addresses at which l can be reached from the
// internet, each with whether l surely takes that family: a [::] socket
// takes IPv4 unless IPV6_V6ONLY is set (unknown without sock_diag).
func (f *facts) listenerTargets(l host.Listener) (ts []target, sure []bool) {
	addr := l.Addr.Addr().Unmap()
	all := f.publicTargets()
	if !addr.IsUnspecified() {
		t := target{addr: addr}
		for _, x := range all {
			if x.addr == addr {
				t = x
			}
		}
		if t.iface == "" {
			if pub := f.publicIfaces(); len(pub) > 0 {
				t.iface = pub[0] // bound to an address routed to this host
			}
		}
		return []target{t}, []bool{true}
	}
	for _, t := range all {
		switch {
		case addr.Is4() && t.addr.Is4(), addr.Is6() && t.addr.Is6():
			ts, sure = append(ts, t), append(sure, true)
		case addr.Is6() && t.addr.Is4() && !(l.V6OnlyKnown && l.V6Only):
			ts, sure = append(ts, t), append(sure, l.V6OnlyKnown)
		}
	}
	if len(ts) == 0 {
		// No public address of this family is known: ask with the
		// address unset (any).
		p := target{}
		if pub := f.publicIfaces(); len(pub) > 0 {
			p.iface = pub[0]
		}
		fam := []netip.Addr{netip.IPv4Unspecified()}
		if addr.Is6() {
			fam = []netip.Addr{netip.IPv6Unspecified()}
			if !(l.V6OnlyKnown && l.V6Only) {
				fam = append(fam, netip.IPv4Unspecified())
			}
		}
		for _, a := range fam {
			p.addr = a
			ts, sure = append(ts, p), append(sure, a.Is6() || addr.Is4() || l.V6OnlyKnown)
		}
	}
	return ts, sure
}

// targetVerdict is the firewall's answer for one address of a listener.
type targetVerdict struct {
	t        target
	accepted bool
	certain  bool // no undecided rule, and the socket surely takes the family
	why      string
}

// reachTargets evaluates a new connection from the internet to listener l
// at each address of each family it takes (optimistically: when in doubt,
// accepted, and said to be uncertain).
func (f *facts) reachTargets(rs *ruleset.Ruleset, l host.Listener) []targetVerdict {
	ts, sure := f.listenerTargets(l)
	out := make([]targetVerdict, 0, len(ts))
	for i, t := range ts {
		p := ruleset.Packet{Hook: ruleset.HookInput, IIf: t.iface, IIfIndex: t.index, Proto: l.Proto, Dport: l.Addr.Port()}
		fam := "IPv4"
		if t.addr.Is6() {
			fam = "IPv6"
			p.Saddr, p.V6 = internetV6, true
		} else {
			p.Saddr = internetV4
		}
		if !t.addr.IsUnspecified() {
			p.Daddr = t.addr
			fam += " " + t.addr.String()
		}
		v := rs.Evaluate(p, ruleset.Optimistic)
		// A connection is only of use once its later packets pass too:
		// a firewall that lets the SYN in but drops or rejects the
		// handshake's ACK (ct state established) exposes nothing.
		est := p
		est.State = ruleset.StateEstablished
		ve := rs.Evaluate(est, ruleset.Optimistic)
		possible := v.Accepted && ve.Accepted
		surely := v.Accepted && v.Certain && ve.Accepted && ve.Certain
		tv := targetVerdict{t: t, accepted: possible, certain: possible == surely && (sure[i] || !possible)}
		if !possible {
			tv.why = fam + ": dropped by " + v.Rule.String()
			if v.Accepted {
				tv.why = fam + ": its later packets (ct state established) dropped by " + ve.Rule.String()
			}
			if !tv.certain {
				tv.why += " (uncertain)"
			}
			out = append(out, tv)
			continue
		}
		if !ve.Certain && v.Certain {
			v = ve // the doubt is in the later packets' verdict
		}
		// One entry per address, without "; " inside: entries are joined
		// and merged on it.
		by := "no firewall rule drops it"
		switch {
		case !v.Certain:
			by = "may be accepted, the firewall's verdict is uncertain (" + unsureText(v.Unsure) + ")"
		case v.Rule.Text != "":
			by = "accepted by " + v.Rule.String()
		}
		if !sure[i] {
			by += ", if the IPv6 socket takes IPv4 (IPV6_V6ONLY unknown)"
		}
		tv.why = fam + ": " + by
		out = append(out, tv)
	}
	return out
}

// reachable is whether the internet can reach listener l at any address,
// and why.
func (f *facts) reachable(l host.Listener) reach {
	rs, err := f.ruleset()
	if err != nil {
		f.note("firewall not read (%v): listeners on public addresses are assumed reachable", err)
		return reach{ok: true, why: "firewall unreadable"}
	}
	var accepted, dropped []string
	res := reach{certain: true}
	surely := false
	for _, tv := range f.reachTargets(rs, l) {
		if tv.accepted {
			res.ok = true
			surely = surely || tv.certain
			accepted = append(accepted, tv.why)
		} else {
			dropped = append(dropped, tv.why)
		}
	}
	if res.ok {
		res.certain = surely
		res.why = strings.Join(accepted, "; ")
		return res
	}
	res.why = strings.Join(dropped, "; ")
	if res.why == "" {
		res.why = "no public address of its family"
	}
	return res
}

// unsureText names the rules an uncertain verdict depends on.
func unsureText(refs []ruleset.RuleRef) string {
	if len(refs) == 0 {
		return "unknown rule"
	}
	var out []string
	for _, r := range refs {
		out = append(out, "depends on "+r.String())
	}
	return strings.Join(out, ", ")
}

// mergeReach joins the verdicts of the sockets of one service (0.0.0.0 and
// [::] of one daemon): reachable if any is, each address said once.
func mergeReach(a, b reach) reach {
	switch {
	case a.why == "":
		return b
	case a.ok != b.ok:
		if a.ok {
			return a
		}
		return b
	}
	out := reach{ok: a.ok, certain: a.certain && b.certain, why: a.why}
	if a.ok {
		out.certain = a.certain || b.certain // reachable if either surely is
	}
	// Each address once ("IPv4 203.0.113.10: ..."), the first verdict kept.
	seen := map[string]bool{}
	for _, part := range strings.Split(a.why, "; ") {
		addr, _, _ := strings.Cut(part, ": ")
		seen[addr] = true
	}
	for _, part := range strings.Split(b.why, "; ") {
		addr, _, _ := strings.Cut(part, ": ")
		if !seen[addr] {
			seen[addr] = true
			out.why += "; " + part
		}
	}
	return out
}

// v6onlyText says how an IPv6 wildcard socket treats IPv4.
func v6onlyText(l host.Listener) string {
	if !l.Addr.Addr().Is6() || !l.Addr.Addr().IsUnspecified() {
		return ""
	}
	switch {
	case !l.V6OnlyKnown:
		return " (IPV6_V6ONLY unknown: may take IPv4 too)"
	case l.V6Only:
		return " (IPV6_V6ONLY: IPv6 only)"
	}
	return " (takes IPv4 too)"
}

func describeListener(l host.Listener) string {
	owner := "unknown process"
	if l.Process != "" {
		owner = fmt.Sprintf("%s (pid %d)", l.Process, l.PID)
	}
	return fmt.Sprintf("%s %s %s", owner, l.Proto, l.Addr)
}

func checkExposure(f *facts, o *out) {
	ls, err := f.listeners()
	if err != nil {
		f.denied(err, "/proc/net")
		for _, id := range []string{"EXP-001", "EXP-002", "EXP-003", "EXP-005"} {
			o.unknown(id, err)
		}
	} else {
		sshPort := uint16(22)
		if sf, err := f.sshd(); err == nil {
			sshPort = uint16(sf.port)
		}
		vpn := f.vpnRanges()
		var inventory []string
		// One verdict per (proto, port, process): 0.0.0.0 and :: of one
		// daemon are one exposure.
		type group struct {
			proto, name string
			port        uint16
			sensitive   bool
			ev          []string
			reach       reach
			funnel      bool // published by Tailscale Funnel: TS-002 judges it
		}
		var groups []*group
		index := map[string]*group{}
		funnel := f.funnelExposed()
		for _, l := range ls {
			scope := host.ClassifyAddr(l.Addr.Addr(), vpn)
			how, viaFunnel := funnel[l.Addr.Port()]
			viaFunnel = viaFunnel && l.Proto == "tcp"
			if viaFunnel {
				inventory = append(inventory, fmt.Sprintf("%s [%s, public through Tailscale Funnel]", describeListener(l), scope))
			} else {
				inventory = append(inventory, fmt.Sprintf("%s [%s]", describeListener(l), scope))
			}
			if scope != host.ScopeWildcard && scope != host.ScopePublic && !viaFunnel {
				continue
			}
			if l.Process == "docker-proxy" {
				continue // a published container port: EXP-004 judges it by the forward path
			}
			if l.PID == 0 {
				f.note("%s", f.socketOwnerNote())
			}
			key := fmt.Sprintf("%s/%d/%s", l.Proto, l.Addr.Port(), l.Process)
			g := index[key]
			if g == nil {
				name, isSensitive := sensitive(l)
				g = &group{proto: l.Proto, port: l.Addr.Port(), name: name, sensitive: isSensitive}
				index[key] = g
				groups = append(groups, g)
			}
			g.ev = append(g.ev, fmt.Sprintf("%s listens on %s%s", describeListener(l), scope, v6onlyText(l)))
			if viaFunnel {
				g.funnel = true
				g.reach = mergeReach(g.reach, reach{ok: true, certain: true, why: how})
			} else {
				g.reach = mergeReach(g.reach, f.reachable(l))
			}
		}
		var exp1, exp2, exp3 int
		for _, g := range groups {
			subject := fmt.Sprintf("%s/%d", g.proto, g.port)
			ev := append(g.ev, "firewall: "+g.reach.why)
			switch {
			case g.sensitive && g.reach.ok:
				head := g.name + " is reachable from the internet"
				if !g.reach.certain {
					head = g.name + " may be reachable from the internet (uncertain: see the firewall line)"
				}
				o.fail("EXP-001", subject, append([]string{head}, ev...)...)
				exp1++
			case g.sensitive:
				o.fail("EXP-002", subject, append([]string{g.name + " is bound beyond loopback"}, ev...)...)
				exp2++
			case g.reach.ok && g.port != sshPort && !f.o.declaredPublic(g.proto, g.port) && !g.funnel:
				o.fail("EXP-003", subject, ev...)
				exp3++
			}
		}
		if exp1 == 0 {
			o.pass("EXP-001", "")
		}
		if exp2 == 0 {
			o.pass("EXP-002", "")
		}
		if exp3 == 0 {
			o.pass("EXP-003", "")
		}
		slices.Sort(inventory)
		o.pass("EXP-005", "", inventory...)
	}
	checkDocker(f, o)
}

func checkDocker(f *facts, o *out) {
	ports, err := f.docker()
	if err != nil {
		f.denied(err, "/var/run/docker.sock")
		o.unknown("EXP-004", err)
		return
	}
	if len(ports) == 0 {
		if f.h.DockerPresent() {
			o.pass("EXP-004", "", "no published ports")
		} else {
			o.na("EXP-004", "Docker is not present")
		}
		return
	}
	rs, rerr := f.ruleset()
	bad := 0
	seen := map[string]bool{}
	for _, p := range ports {
		if p.Scope == host.ScopeLoopback || p.Scope == host.ScopeVPN || p.Scope == host.ScopePrivate {
			continue
		}
		subject := fmt.Sprintf("%s/%d", p.Proto, p.HostPort)
		if seen[subject] {
			continue // the same publication on IPv4 and IPv6
		}
		seen[subject] = true
		ev := fmt.Sprintf("container %s (%s) publishes %s:%d -> %d/%s", p.Container, p.Image, p.HostIP, p.HostPort, p.ContainerPort, p.Proto)
		why := "firewall unreadable"
		accepted := true
		if rerr == nil {
			pkt := ruleset.Packet{Hook: ruleset.HookForward, Saddr: internetV4, Proto: p.Proto, Dport: p.ContainerPort, DNAT: true, OrigDport: p.HostPort}
			if pub := f.publicIfaces(); len(pub) > 0 {
				pkt.IIf = pub[0]
			}
			v := rs.Evaluate(pkt, ruleset.Optimistic)
			accepted = v.Accepted
			why = "forwarded: " + v.Rule.String()
			if !v.Accepted {
				why = "dropped by " + v.Rule.String()
			}
		}
		if !accepted || f.o.declaredPublic(p.Proto, p.HostPort) {
			continue
		}
		sev := High
		if _, ok := sensitivePorts[p.ContainerPort]; ok {
			sev = Critical
		}
		o.failAt("EXP-004", sev, subject, ev, why, "Docker's DNAT sends it through FORWARD: INPUT rules and ufw never see it")
		bad++
	}
	if bad == 0 {
		o.pass("EXP-004", "", fmt.Sprintf("%d published port(s), none reachable from the internet undeclared", len(ports)))
	}
}
