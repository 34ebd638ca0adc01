package audit

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/ruleset"
)

// The differential harness: random but realistic firewall states (nft
// tables of every family with random priorities, policies, verdict maps,
// jumps, sets, marks and dormant flags, iptables-nft and iptables-legacy
// rules with common matches) and random listeners (IPv4, IPv6, IPV6_V6ONLY,
// loopback, specific addresses, several addresses per interface) are loaded
// into a lab host; the audit's reachability verdict for every listener at
// every address is compared with a real TCP connect from an attacker host.
//
// MOAT_DIFF_STATES sets how many states (default 50), MOAT_DIFF_SEED the
// seed (default fixed, so a run judges the code and not the dice;
// bench/reachdiff.sh seeds from the clock to explore). The seeds in
// testdata/reachdiff/regressions.txt, each a state that once disagreed,
// run first, every time.

// diffAddrs are the vps's public addresses (two per family on eth0) and the
// attacker's.
var (
	diffVPS4     = []string{"198.51.100.1", "198.51.100.3"}
	diffVPS6     = []string{"2001:db8:1::1", "2001:db8:1::3"}
	diffAttacker = []string{"198.51.100.2", "2001:db8:1::2"}
	diffPorts    = []uint16{22, 80, 443, 3306, 5432, 6379, 8080, 9000, 9001, 9200}
)

// diffState is one generated host: its firewall and its listeners.
type diffState struct {
	seed      uint64
	nft       string
	iptNFT    [2]string // iptables-nft-restore, ip6tables-nft-restore
	iptLegacy [2]string // iptables-legacy-restore, ip6tables-legacy-restore
	listen    []diffListener
}

type diffListener struct {
	network, addr string // for net.Listen: "tcp6" on [::] is IPV6_V6ONLY
}

func (s *diffState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d\n--- nft -f\n%s", s.seed, s.nft)
	for i, name := range []string{"iptables-nft", "ip6tables-nft", "iptables-legacy", "ip6tables-legacy"} {
		txt := append(s.iptNFT[:], s.iptLegacy[:]...)[i]
		if txt != "" {
			fmt.Fprintf(&b, "--- %s-restore\n%s", name, txt)
		}
	}
	fmt.Fprintf(&b, "--- listeners %v\n", s.listen)
	return b.String()
}

// gen writes random firewall states from one seed.
type gen struct {
	r    *rand.Rand
	b    strings.Builder
	sets map[string]string // named sets of the current table: name -> kind
}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *gen) chance(p float64) bool    { return g.r.Float64() < p }
func (g *gen) port() uint16             { return diffPorts[g.r.IntN(len(diffPorts))] }

func (g *gen) ports(n int) []string {
	var out []string
	for len(out) < n {
		p := strconv.Itoa(int(g.port()))
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	return out
}

func generate(seed uint64) *diffState {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s := &diffState{seed: seed}
	for i := range 1 + g.r.IntN(3) {
		g.table(i)
	}
	s.nft = g.b.String()
	if g.chance(0.35) {
		s.iptNFT[0] = g.iptables(false)
	}
	if g.chance(0.25) {
		s.iptNFT[1] = g.iptables(true)
	}
	if g.chance(0.2) {
		s.iptLegacy[0] = g.iptables(false)
	}
	if g.chance(0.15) {
		s.iptLegacy[1] = g.iptables(true)
	}
	for _, p := range g.ports(3 + g.r.IntN(3)) {
		for range 1 + g.r.IntN(2) {
			var l diffListener
			switch g.r.IntN(7) {
			case 0:
				l = diffListener{"tcp4", "0.0.0.0:" + p}
			case 1:
				l = diffListener{"tcp", "[::]:" + p} // takes IPv4 too
			case 2:
				l = diffListener{"tcp6", "[::]:" + p} // IPV6_V6ONLY
			case 3:
				l = diffListener{"tcp4", "127.0.0.1:" + p}
			case 4:
				l = diffListener{"tcp6", "[::1]:" + p}
			case 5:
				l = diffListener{"tcp4", g.pick(diffVPS4...) + ":" + p}
			default:
				l = diffListener{"tcp6", "[" + g.pick(diffVPS6...) + "]:" + p}
			}
			s.listen = append(s.listen, l)
		}
	}
	return s
}

func (g *gen) w(format string, args ...any) { fmt.Fprintf(&g.b, format, args...) }

func (g *gen) table(i int) {
	fam := g.pick("inet", "inet", "ip", "ip6", "netdev")
	name := fmt.Sprintf("t%d", i)
	g.sets = map[string]string{}
	g.w("table %s %s {\n", fam, name)
	if g.chance(0.15) {
		g.w("\tflags dormant\n")
	}
	if fam == "netdev" {
		g.w("\tchain in {\n\t\ttype filter hook ingress device \"eth0\" priority %d; policy accept;\n", g.r.IntN(21)-10)
		for range g.r.IntN(4) {
			g.w("\t\t%s\n", g.netdevRule())
		}
		g.w("\t}\n}\n")
		return
	}
	// Named sets and maps the rules may use.
	if g.chance(0.5) {
		g.sets["ports"] = "port"
		g.w("\tset ports { type inet_service; elements = { %s } }\n", strings.Join(g.ports(1+g.r.IntN(3)), ", "))
	}
	if fam != "ip6" && g.chance(0.4) {
		g.sets["net4"] = "addr4"
		g.w("\tset net4 { type ipv4_addr; flags interval; elements = { %s } }\n", g.pick("198.51.100.0/24", "198.51.100.1", "198.51.100.2-198.51.100.3", "10.0.0.0/8, 198.51.100.3"))
	}
	if fam != "ip" && g.chance(0.3) {
		g.sets["net6"] = "addr6"
		g.w("\tset net6 { type ipv6_addr; flags interval; elements = { %s } }\n", g.pick("2001:db8:1::/64", "2001:db8:1::1", "2001:db8:1::2-2001:db8:1::3", "fd00::/8"))
	}
	if fam != "ip6" && g.chance(0.3) {
		g.sets["pair4"] = "concat4"
		ps := g.ports(2)
		g.w("\tset pair4 { type ipv4_addr . inet_service; elements = { %s . %s, %s . %s } }\n", g.pick(diffVPS4...), ps[0], g.pick(diffVPS4...), ps[1])
	}
	if g.chance(0.3) {
		g.sets["vm"] = "vmap"
		ps := g.ports(2)
		g.w("\tmap vm { type inet_service : verdict; elements = { %s : %s, %s : %s } }\n", ps[0], g.pick("accept", "drop"), ps[1], g.pick("accept", "drop"))
	}
	subs := g.r.IntN(3)
	for c := range subs {
		g.w("\tchain sub%d {\n", c)
		for range 1 + g.r.IntN(3) {
			g.w("\t\t%s\n", g.rule(fam, "input", c+1, subs, true))
		}
		g.w("\t}\n")
	}
	hooks := []string{"input"}
	if g.chance(0.5) {
		hooks = append([]string{"prerouting"}, hooks...)
	}
	for _, hook := range hooks {
		prio := []int{-300, -150, -10, 0, 0, 10, 100}[g.r.IntN(7)]
		if hook == "prerouting" {
			prio = []int{-300, -150, -100, 0}[g.r.IntN(4)]
		}
		policy := "accept"
		if hook == "input" && g.chance(0.4) {
			policy = "drop"
		}
		g.w("\tchain %s {\n\t\ttype filter hook %s priority %d; policy %s;\n", hook, hook, prio, policy)
		for range g.r.IntN(6) {
			g.w("\t\t%s\n", g.rule(fam, hook, 0, subs, false))
		}
		g.w("\t}\n")
	}
	g.w("}\n")
}

func (g *gen) netdevRule() string {
	m := []string{}
	switch g.r.IntN(3) {
	case 0:
		m = append(m, "ip daddr "+g.pick(diffVPS4...))
	case 1:
		m = append(m, "ip6 daddr "+g.pick(diffVPS6...))
	}
	m = append(m, "tcp dport "+strconv.Itoa(int(g.port())))
	verdict := g.pick("drop", "accept", "meta mark set 0x1", "counter")
	return strings.Join(append(m, verdict), " ")
}

// rule writes one rule for a chain of family fam at hook; sub > 0 is a
// regular chain that may jump only to later ones (no loops).
func (g *gen) rule(fam, hook string, sub, subs int, regular bool) string {
	var m []string
	n := g.r.IntN(3)
	for range n {
		x := g.match(fam, hook)
		// One rule cannot ask for IPv4 and IPv6 at once (nft refuses it).
		v4 := strings.HasPrefix(x, "ip ") || x == "meta nfproto ipv4"
		v6 := strings.HasPrefix(x, "ip6 ") || x == "meta nfproto ipv6"
		if slices.ContainsFunc(m, func(y string) bool {
			return v4 && (strings.HasPrefix(y, "ip6 ") || y == "meta nfproto ipv6") ||
				v6 && (strings.HasPrefix(y, "ip ") || y == "meta nfproto ipv4")
		}) {
			continue
		}
		m = append(m, x)
	}
	if len(m) == 0 || g.chance(0.7) {
		m = append(m, g.pick("tcp dport "+strconv.Itoa(int(g.port())), "tcp dport { "+strings.Join(g.ports(2), ", ")+" }", "th dport "+strconv.Itoa(int(g.port()))))
	}
	var verdicts []string
	verdicts = append(verdicts, "accept", "drop", "reject", "reject with tcp reset", "counter")
	if hook == "prerouting" {
		verdicts = append(verdicts, "meta mark set 0x1", "meta mark set 0x2", "ct mark set 0x5", "meta mark set meta mark | 0x4", "notrack")
	}
	if regular {
		verdicts = append(verdicts, "return")
	}
	if sub < subs {
		target := sub + g.r.IntN(subs-sub)
		verdicts = append(verdicts, fmt.Sprintf("jump sub%d", target), fmt.Sprintf("goto sub%d", target))
	}
	if g.sets["vm"] != "" {
		verdicts = append(verdicts, "tcp dport vmap @vm")
	}
	if g.chance(0.1) {
		ps := g.ports(2)
		return fmt.Sprintf("tcp dport vmap { %s : %s, %s : %s }", ps[0], g.pick("accept", "drop"), ps[1], g.pick("accept", "drop", "continue"))
	}
	v := g.pick(verdicts...)
	if strings.Contains(v, "vmap") {
		return strings.Join(m, " ") + " " + v
	}
	return strings.Join(append(m, v), " ")
}

func (g *gen) match(fam, hook string) string {
	var opts []string
	if fam != "ip6" {
		opts = append(opts, "ip daddr "+g.pick(diffVPS4...), "ip saddr "+g.pick("198.51.100.0/24", "10.0.0.0/8", "198.51.100.2"), "ip daddr != "+g.pick(diffVPS4...))
		if g.sets["net4"] != "" {
			opts = append(opts, "ip "+g.pick("saddr", "daddr")+" @net4")
		}
		if g.sets["pair4"] != "" {
			opts = append(opts, "ip daddr . tcp dport @pair4")
		}
	}
	if fam != "ip" {
		opts = append(opts, "ip6 daddr "+g.pick(diffVPS6...), "ip6 saddr "+g.pick("2001:db8:1::/64", "fd00::/8", "2001:db8:1::2"))
		if g.sets["net6"] != "" {
			opts = append(opts, "ip6 "+g.pick("saddr", "daddr")+" @net6")
		}
	}
	if fam == "inet" {
		opts = append(opts, "meta nfproto "+g.pick("ipv4", "ipv6"))
	}
	opts = append(opts, `iifname "eth0"`, `iifname "wg0"`, `iif "lo"`, `iif "eth0"`, `iif != "eth0"`, `iifname != "lo"`, "meta l4proto tcp",
		"ct state new", "ct state established,related", "ct state invalid", "ct state != new", "ct state untracked",
		"fib daddr type local", "tcp flags & (syn | ack) == syn", "meta mark 0x1", "meta mark 0x2", "meta mark & 0x4 == 0x4", "ct mark 0x5")
	if g.sets["ports"] != "" {
		opts = append(opts, "tcp dport @ports", "tcp dport != @ports")
	}
	return g.pick(opts...)
}

// iptables writes an iptables-restore filter table with common matches.
func (g *gen) iptables(v6 bool) string {
	addrs, src := diffVPS4, "198.51.100.0/24"
	if v6 {
		addrs, src = diffVPS6, "2001:db8:1::/64"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*filter\n:INPUT %s [0:0]\n", g.pick("ACCEPT", "ACCEPT", "DROP"))
	for range 1 + g.r.IntN(4) {
		var m []string
		switch g.r.IntN(8) {
		case 0:
			m = append(m, "-p tcp -m multiport --dports "+strings.Join(g.ports(2), ","))
		case 1:
			ps := g.ports(2)
			m = append(m, "-p tcp -m multiport --dports "+ps[0]+":"+ps[1])
		case 2:
			m = append(m, "-p tcp -m tcp --dport "+strconv.Itoa(int(g.port())), "-m conntrack --ctstate "+g.pick("NEW", "ESTABLISHED,RELATED", "INVALID"))
		case 3:
			a := g.pick(addrs...)
			m = append(m, "-m iprange --dst-range "+a+"-"+a, "-p tcp --dport "+strconv.Itoa(int(g.port())))
		case 4:
			m = append(m, "-m addrtype --dst-type "+g.pick("LOCAL", "UNICAST"), "-p tcp --dport "+strconv.Itoa(int(g.port())))
		case 5:
			m = append(m, "-m comment --comment \"rule "+strconv.Itoa(g.r.IntN(100))+"\"", "-p tcp --dport "+strconv.Itoa(int(g.port())))
		case 6:
			m = append(m, "-s "+src, "-p tcp --dport "+strconv.Itoa(int(g.port())))
		default:
			m = append(m, "-i "+g.pick("eth0", "wg0"), "-m state --state NEW", "-p tcp --dport "+strconv.Itoa(int(g.port())))
		}
		fmt.Fprintf(&b, "-A INPUT %s -j %s\n", strings.Join(m, " "), g.pick("ACCEPT", "DROP", "REJECT"))
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// regressionSeeds are states that once disagreed, kept as data.
func regressionSeeds(t *testing.T) []uint64 {
	f, err := os.Open(filepath.Join("testdata", "reachdiff", "regressions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		n, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("regressions.txt: %v", err)
		}
		out = append(out, n)
	}
	return out
}

func TestReachabilityDifferential(t *testing.T) {
	lab.RequireTool(t, "nft", "iptables-nft-restore", "ip6tables-nft-restore", "iptables-legacy-restore", "ip6tables-legacy-restore")
	states := 50
	if v := os.Getenv("MOAT_DIFF_STATES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("MOAT_DIFF_STATES=%q: want a positive number", v)
		}
		states = n
	}
	// A fixed default keeps the test suite a gate that passes or fails
	// on the code alone; bench/reachdiff.sh explores from the clock.
	base := uint64(20261206)
	if v := os.Getenv("MOAT_DIFF_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("MOAT_DIFF_SEED=%q: want a number", v)
		}
		base = n
	}
	t.Logf("differential harness: %d states from seed %d (rerun with MOAT_DIFF_SEED=%d MOAT_DIFF_STATES=%d)", states, base, base, states)

	// The audit's stand-ins for "someone on the internet" become the
	// attacker, whose connects are the truth to compare with.
	old4, old6 := internetV4, internetV6
	internetV4, internetV6 = netip.MustParseAddr(diffAttacker[0]), netip.MustParseAddr(diffAttacker[1])
	t.Cleanup(func() { internetV4, internetV6 = old4, old6 })

	l := lab.New(t)
	vps, attacker := l.Host("vps"), l.Host("attacker")
	var vpsAddrs, attAddrs []string
	for _, a := range diffVPS4 {
		vpsAddrs = append(vpsAddrs, a+"/24")
	}
	for _, a := range diffVPS6 {
		vpsAddrs = append(vpsAddrs, a+"/64")
	}
	attAddrs = []string{diffAttacker[0] + "/24", diffAttacker[1] + "/64"}
	l.Link(vps, "eth0", attacker, "eth0", vpsAddrs, attAddrs)
	// Static neighbours both ways: no ruleset can starve ARP or neighbour
	// discovery, so every verdict is the TCP rules' alone.
	mac := func(h *lab.Host) string {
		return strings.TrimSpace(string(h.MustRun(t, "cat", "/sys/class/net/eth0/address")))
	}
	vpsMAC, attMAC := mac(vps), mac(attacker)
	for _, a := range append(slices.Clone(diffVPS4), diffVPS6...) {
		attacker.MustRun(t, "ip", "neigh", "replace", a, "lladdr", vpsMAC, "dev", "eth0", "nud", "permanent")
	}
	for _, a := range diffAttacker {
		vps.MustRun(t, "ip", "neigh", "replace", a, "lladdr", attMAC, "dev", "eth0", "nud", "permanent")
	}
	var eth0 host.Interface
	if err := vps.Do(func() error {
		i, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		eth0 = host.Interface{Name: "eth0", Index: i.Index}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, a := range vpsAddrs {
		eth0.Addrs = append(eth0.Addrs, netip.MustParsePrefix(a))
	}

	seeds := regressionSeeds(t)
	nRegress := len(seeds)
	for i := range states {
		seeds = append(seeds, base+uint64(i))
	}
	var st diffStats
	for i, seed := range seeds {
		s := generate(seed)
		runDiffState(t, vps, attacker, eth0, s, i < nRegress, &st)
	}
	t.Logf("differential harness: %d states (%d regression cases), %d verdicts, %d disagreements, %d uncertain (%.1f%%), %d states not loadable",
		st.states, nRegress, st.verdicts, st.disagree, st.uncertain, 100*float64(st.uncertain)/float64(max(st.verdicts, 1)), st.unloadable)
	if st.unloadable*10 > st.states {
		t.Errorf("%d of %d generated states failed to load: the generator writes invalid rules", st.unloadable, st.states)
	}
}

type diffStats struct {
	states, verdicts, disagree, uncertain, unloadable int
}

func runDiffState(t *testing.T, vps, attacker *lab.Host, eth0 host.Interface, s *diffState, regression bool, st *diffStats) {
	t.Helper()
	ctx := context.Background()
	// Reset: every nft table (iptables-nft's included), and legacy rules.
	vps.MustRun(t, "nft", "flush", "ruleset")
	for _, tool := range []string{"iptables-legacy", "ip6tables-legacy"} {
		if _, err := vps.Run(ctx, tool+"-restore", writeTemp(t, "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")); err != nil {
			t.Fatalf("reset %s: %v", tool, err)
		}
	}
	loads := []struct{ tool, text string }{
		{"nft", s.nft},
		{"iptables-nft-restore", s.iptNFT[0]}, {"ip6tables-nft-restore", s.iptNFT[1]},
		{"iptables-legacy-restore", s.iptLegacy[0]}, {"ip6tables-legacy-restore", s.iptLegacy[1]},
	}
	for _, ld := range loads {
		if ld.text == "" {
			continue
		}
		args := []string{writeTemp(t, ld.text)}
		if ld.tool == "nft" {
			args = append([]string{"-f"}, args...)
		}
		if out, err := vps.Run(ctx, ld.tool, args...); err != nil {
			t.Logf("seed %d: %s does not load (%v: %s): skipped", s.seed, ld.tool, err, out)
			st.unloadable++
			st.states++
			return
		}
	}
	// Listeners, each accepting and closing until the state ends.
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, dl := range s.listen {
		ln, err := vps.Listen(dl.network, dl.addr)
		if err != nil {
			continue // the same address twice, or [::] beside 0.0.0.0 without V6ONLY
		}
		lns = append(lns, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("x"))
				c.Close()
			}
		}()
	}
	var rs *ruleset.Ruleset
	var ls []host.Listener
	if err := vps.Do(func() (err error) {
		if rs, err = ruleset.Live(ctx); err != nil {
			return err
		}
		ls, err = host.New("/").Listeners()
		return err
	}); err != nil {
		t.Fatalf("seed %d: read the host: %v", s.seed, err)
	}
	f := &facts{notesSet: map[string]bool{}}
	f.ruleset = func() (*ruleset.Ruleset, error) { return rs, nil }
	f.routes = func() ([]host.Route, error) { return []host.Route{{Iface: "eth0"}}, nil }
	f.ifaces = func() ([]host.Interface, error) { return []host.Interface{eth0}, nil }

	// The audit's answer per (address, port): reachable if any public
	// listener on the port is accepted at that address.
	type key struct {
		addr string
		port uint16
	}
	type answer struct {
		ok, certain bool
		why         []string
	}
	model := map[key]*answer{}
	var ports []uint16
	for _, dl := range s.listen {
		_, p, _ := net.SplitHostPort(dl.addr)
		n, _ := strconv.Atoi(p)
		if !slices.Contains(ports, uint16(n)) {
			ports = append(ports, uint16(n))
		}
	}
	addrs := append(slices.Clone(diffVPS4), diffVPS6...)
	for _, a := range addrs {
		for _, p := range ports {
			model[key{a, p}] = &answer{certain: true}
		}
	}
	for _, l := range ls {
		if !slices.Contains(ports, l.Addr.Port()) || l.Proto != "tcp" {
			continue
		}
		if sc := host.ClassifyAddr(l.Addr.Addr(), nil); sc != host.ScopeWildcard && sc != host.ScopePublic {
			continue
		}
		for _, tv := range f.reachTargets(rs, l) {
			ans := model[key{tv.t.addr.String(), l.Addr.Port()}]
			if ans == nil {
				continue
			}
			if tv.accepted {
				if !ans.ok {
					ans.certain = tv.certain
				} else {
					ans.certain = ans.certain || tv.certain
				}
				ans.ok = true
			}
			ans.why = append(ans.why, tv.why)
		}
	}
	// The kernel's answer, in parallel: a dropped SYN costs the timeout.
	keys := make([]key, 0, len(model))
	for k := range model {
		keys = append(keys, k)
	}
	kernel := make([]bool, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kernel[i] = talks(attacker, net.JoinHostPort(k.addr, strconv.Itoa(int(k.port))))
		}()
	}
	wg.Wait()
	st.states++
	var bad []string
	for i, k := range keys {
		ans := model[k]
		// With every probe fired at once, a late goroutine on a loaded
		// machine looks dropped: a port judged reachable gets a second,
		// unhurried try on its own before it counts as a disagreement.
		if !kernel[i] && ans.ok && ans.certain {
			kernel[i] = talksWithin(attacker, net.JoinHostPort(k.addr, strconv.Itoa(int(k.port))), 5*time.Second)
		}
		st.verdicts++
		if !ans.certain {
			st.uncertain++
		}
		if kernel[i] != ans.ok && ans.certain {
			st.disagree++
			bad = append(bad, fmt.Sprintf("%s:%d kernel reachable=%v, audit %v (certain %v): %s", k.addr, k.port, kernel[i], ans.ok, ans.certain, strings.Join(ans.why, " | ")))
		}
	}
	if len(bad) > 0 {
		what := "new disagreement: add its seed to testdata/reachdiff/regressions.txt once fixed"
		if regression {
			what = "regression case disagrees again"
		}
		slices.Sort(bad)
		listing, _ := vps.Run(ctx, "nft", "list", "ruleset")
		t.Errorf("%s\n%s\n%s--- nft list ruleset after the probes\n%s", what, strings.Join(bad, "\n"), s, listing)
	}
}

// talks reports whether a connection from h to addr carries data: the
// handshake completes both ways and the server's byte arrives. A connect
// alone would succeed where the firewall passes the SYN but drops the
// handshake's last ACK, which leaves nothing usable.
func talks(h *lab.Host, addr string) bool { return talksWithin(h, addr, time.Second) }

// talksWithin is talks with its timeout.
func talksWithin(h *lab.Host, addr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.Dial(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	buf := make([]byte, 1)
	n, _ := c.Read(buf)
	return n == 1 && buf[0] == 'x'
}
