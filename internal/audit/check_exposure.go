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

// reachable walks every table's base chains for a new connection from the
// internet to addr:port on the public interface (optimistically: when in
// doubt, reachable).
func (f *facts) reachable(proto string, addr netip.Addr, port uint16) reach {
	rs, err := f.ruleset()
	if err != nil {
		f.note("firewall not read (%v): listeners on public addresses are assumed reachable", err)
		return reach{ok: true, why: "firewall unreadable"}
	}
	v4, v6 := f.publicAddrs()
	var pkts []ruleset.Packet
	iif := ""
	if pub := f.publicIfaces(); len(pub) > 0 {
		iif = pub[0]
	}
	dst4, dst6 := v4, v6
	if !addr.IsUnspecified() {
		dst4, dst6 = addr, addr
	}
	if addr.Is4() || addr.IsUnspecified() {
		pkts = append(pkts, ruleset.Packet{Hook: ruleset.HookInput, IIf: iif, Saddr: internetV4, Daddr: dst4, Proto: proto, Dport: port})
	}
	if addr.Is6() {
		if addr.IsUnspecified() {
			// A socket on :: takes IPv4 too (bindv6only is 0 by default).
			pkts = append(pkts, ruleset.Packet{Hook: ruleset.HookInput, IIf: iif, Saddr: internetV4, Daddr: dst4, Proto: proto, Dport: port})
		}
		pkts = append(pkts, ruleset.Packet{Hook: ruleset.HookInput, IIf: iif, Saddr: internetV6, Daddr: dst6, Proto: proto, Dport: port, V6: true})
	}
	var why []string
	for _, p := range pkts {
		v := rs.Evaluate(p, ruleset.Optimistic)
		fam := "IPv4"
		if p.IsV6() {
			fam = "IPv6"
		}
		if v.Accepted {
			by := "no firewall rule drops it"
			if v.Rule.Text != "" {
				by = "accepted by " + v.Rule.String()
			}
			return reach{ok: true, certain: v.Certain, why: fam + ": " + by}
		}
		why = append(why, fam+": dropped by "+v.Rule.String())
	}
	return reach{ok: false, certain: true, why: strings.Join(why, "; ")}
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
		}
		var groups []*group
		index := map[string]*group{}
		for _, l := range ls {
			scope := host.ClassifyAddr(l.Addr.Addr(), vpn)
			inventory = append(inventory, fmt.Sprintf("%s [%s]", describeListener(l), scope))
			if scope != host.ScopeWildcard && scope != host.ScopePublic {
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
			g.ev = append(g.ev, fmt.Sprintf("%s listens on %s", describeListener(l), scope))
			if r := f.reachable(l.Proto, l.Addr.Addr(), l.Addr.Port()); r.ok || g.reach.why == "" {
				if !g.reach.ok {
					g.reach = r
				}
			}
		}
		var exp1, exp2, exp3 int
		for _, g := range groups {
			subject := fmt.Sprintf("%s/%d", g.proto, g.port)
			ev := append(g.ev, "firewall: "+g.reach.why)
			switch {
			case g.sensitive && g.reach.ok:
				o.fail("EXP-001", subject, append([]string{g.name + " is reachable from the internet"}, ev...)...)
				exp1++
			case g.sensitive:
				o.fail("EXP-002", subject, append([]string{g.name + " is bound beyond loopback"}, ev...)...)
				exp2++
			case g.reach.ok && g.port != sshPort && !f.o.declaredPublic(g.proto, g.port):
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
