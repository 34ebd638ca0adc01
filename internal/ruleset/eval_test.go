package ruleset

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

var (
	outside4 = netip.MustParseAddr("198.51.100.7")
	server4  = netip.MustParseAddr("203.0.113.1")
	outside6 = netip.MustParseAddr("2001:db8:1::7")
	server6  = netip.MustParseAddr("2001:db8:2::1")
)

// in4 and in6 are new TCP connections from outside to port on eth0.
func in4(port uint16) Packet {
	return Packet{Hook: HookInput, IIf: "eth0", Saddr: outside4, Daddr: server4, Proto: "tcp", Sport: 40000, Dport: port}
}

func in6(port uint16) Packet {
	return Packet{Hook: HookInput, IIf: "eth0", Saddr: outside6, Daddr: server6, Proto: "tcp", Sport: 40000, Dport: port}
}

// want is an expected answer in both modes.
type want struct {
	optimistic, pessimistic bool
	rule                    string // substring of the deciding rule's String(), optional
}

var (
	accepted  = want{optimistic: true, pessimistic: true}
	dropped   = want{}
	uncertain = want{optimistic: true} // could be accepted, is not surely
)

func (w want) by(rule string) want { w.rule = rule; return w }

func check(t *testing.T, rs *Ruleset, p Packet, w want) {
	t.Helper()
	opt, pes := rs.Evaluate(p, Optimistic), rs.Evaluate(p, Pessimistic)
	if opt.Accepted != w.optimistic || pes.Accepted != w.pessimistic {
		t.Errorf("%s: optimistic %v, pessimistic %v; want %v, %v\n  optimistic: %v\n  pessimistic: %v\n  unsure: %v",
			describe(p), opt.Accepted, pes.Accepted, w.optimistic, w.pessimistic, opt, pes, pes.Unsure)
		return
	}
	certain := w.optimistic == w.pessimistic
	if opt.Certain != certain || pes.Certain != certain {
		t.Errorf("%s: Certain %v/%v, want %v", describe(p), opt.Certain, pes.Certain, certain)
	}
	if certain && (len(opt.Unsure) > 0 || len(pes.Unsure) > 0) {
		t.Errorf("%s: certain verdict lists unsure rules %v", describe(p), pes.Unsure)
	}
	// An uncertain answer may name the rule in either mode.
	if w.rule != "" && !strings.Contains(pes.String(), w.rule) && (certain || !strings.Contains(opt.String(), w.rule)) {
		t.Errorf("%s: verdicts %q / %q, want one to name %q", describe(p), opt, pes, w.rule)
	}
}

func describe(p Packet) string {
	return fmt.Sprintf("%s %s %v:%d -> %v:%d iif=%q oif=%q dnat=%v state=%d", p.Hook, p.Proto, p.Saddr, p.Sport, p.Daddr, p.Dport, p.IIf, p.OIf, p.DNAT, p.State)
}

func TestEmptyRulesetAccepts(t *testing.T) {
	for _, name := range []string{"empty", "accept-policies"} {
		rs := loadCase(t, name)
		for _, p := range []Packet{in4(6379), in6(6379), {Hook: HookForward, Proto: "udp", Dport: 53}} {
			check(t, rs, p, accepted)
			if v := rs.Evaluate(p, Pessimistic); name == "empty" && (v.Rule != RuleRef{} || len(v.Path) != 0) {
				t.Errorf("empty ruleset: verdict %v names a rule or path %v", v, v.Path)
			}
		}
	}
	if !(&Ruleset{}).Empty() || loadCase(t, "empty").Empty() != true {
		t.Error("Empty: an empty ruleset is not empty")
	}
	if loadCase(t, "accept-policies").Empty() {
		t.Error("Empty: a ruleset with a table is empty")
	}
}

func TestDefaultDrop(t *testing.T) {
	rs := loadCase(t, "default-drop")
	for _, mk := range []func(uint16) Packet{in4, in6} {
		check(t, rs, mk(6379), dropped.by("inet f input: policy drop"))
		check(t, rs, mk(22), accepted.by("tcp dport { 22, 80, 443 } accept"))
		check(t, rs, mk(443), accepted)
		lo := mk(6379)
		lo.IIf = "lo"
		check(t, rs, lo, accepted.by(`iif "lo" accept`))
		est := mk(6379)
		est.State = StateEstablished
		check(t, rs, est, accepted.by("ct state established,related accept"))
		udp := mk(22)
		udp.Proto = "udp"
		check(t, rs, udp, dropped)
	}
	v := rs.Evaluate(in4(6379), Pessimistic)
	if len(v.Path) != 1 || v.Path[0].Chain != "inet f input" || !v.Rule.Policy {
		t.Errorf("path %+v, rule %+v", v.Path, v.Rule)
	}
}

func TestAcceptIsNotFinal(t *testing.T) {
	rs := loadCase(t, "accept-then-drop")
	check(t, rs, in4(6379), dropped.by("ip b input (handle 2): tcp dport 6379 drop"))
	check(t, rs, in6(6379), accepted) // the ip table does not see IPv6
	check(t, rs, in6(8080), dropped.by("inet late input (handle 2): tcp dport 8080 reject"))
	check(t, rs, in4(8080), dropped.by("inet late input"))
	check(t, rs, in4(22), accepted)

	v := rs.Evaluate(in6(8080), Pessimistic)
	var chains []string
	for _, s := range v.Path {
		chains = append(chains, fmt.Sprintf("%s@%d:%v", s.Chain, s.Priority, s.Accepted))
	}
	if got := strings.Join(chains, " "); got != "ip6 early input@-10:true inet a input@0:true inet late input@20:false" {
		t.Errorf("path %s", got)
	}
}

func TestInterfaces(t *testing.T) {
	rs := loadCase(t, "wg-only")
	wg := in4(6379)
	wg.IIf = "wg0"
	check(t, rs, wg, accepted.by(`iifname "wg0" accept`))
	check(t, rs, in4(6379), dropped.by("policy drop"))
	check(t, rs, in4(22), accepted)
	any := in4(6379)
	any.IIf = ""
	check(t, rs, any, uncertain.by(`iifname "lo" accept`))
	inv := wg
	inv.State = StateInvalid
	check(t, rs, inv, dropped.by("ct state vmap"))
}

func TestConstructsCase(t *testing.T) {
	rs := loadCase(t, "constructs")
	eth4 := func(port uint16) Packet {
		p := in4(port)
		p.Saddr = netip.MustParseAddr("10.77.0.1")
		return p
	}
	cases := []struct {
		p Packet
		w want
	}{
		{in4(80), accepted.by("tcp dport @web accept")},
		{in4(8050), accepted},
		{in4(8101), dropped.by("policy drop")},
		{in4(22), dropped}, // only from the admin networks
		{eth4(22), accepted.by("ip saddr { 10.77.0.0/24, 10.78.0.0/24 }")},
		{in6(22), dropped},
		{in4(8200), accepted.by("limit rate 100/second")},
		{in4(8201), accepted.by("tcp dport 8201 accept")},
		{in4(5353), accepted.by("th dport 5353")},
		{eth4(5001), accepted},
		{eth4(25), dropped},
		{in4(5001), dropped},
		{in4(6001), dropped}, // ip6 saddr != ... never matches IPv4
		{in6(6001), accepted},
		{in4(9000), accepted.by("vmap")},
		{in4(9001), dropped.by("vmap")},
		{in4(9002), dropped.by("policy drop")},
		{in4(7777), dropped.by("reject")},              // sub returns, then the reject
		{in4(7001), accepted.by("inet c deeper")},      // goto deeper accepts
		{in4(7050), dropped.by("tcp dport 7000-7999")}, // deeper falls off: back to input after "jump sub"
		{in4(6379), dropped.by("policy drop")},
		{eth4(6379), accepted.by("ip saddr . tcp dport @admins accept")},
	}
	for _, c := range cases {
		check(t, rs, c.p, c.w)
	}
	v := rs.Evaluate(in4(7001), Pessimistic)
	if got := strings.Join(v.Via, ","); got != "sub,deeper" {
		t.Errorf("via %q, want sub,deeper", got)
	}

	banned := in4(80)
	banned.Saddr = netip.MustParseAddr("192.0.2.9")
	check(t, rs, banned, dropped.by("inet c pre (handle 9): ip saddr @ban4 tcp dport != 22 drop"))
	banned.Dport = 8050
	check(t, rs, banned, dropped.by("@ban4"))
	banned6 := in6(80)
	banned6.Saddr = netip.MustParseAddr("fd78::3")
	check(t, rs, banned6, dropped.by("@ban6"))
	banned6.Saddr = netip.MustParseAddr("fd78::6")
	check(t, rs, banned6, accepted)
	banned6.Dport = 6050
	check(t, rs, banned6, accepted.by("ip6 saddr fd78::/64 tcp dport 6050 accept"))
}

func TestForwardDNAT(t *testing.T) {
	backend := netip.MustParseAddr("172.30.0.2")
	fwd := func(port, orig uint16) Packet {
		return Packet{Hook: HookForward, IIf: "eth0", OIf: "docker0", Saddr: outside4, Daddr: backend, Proto: "tcp", Sport: 40000, Dport: port,
			DNAT: orig != 0, OrigDaddr: server4, OrigDport: orig}
	}
	for _, name := range []string{"docker", "dnat-forward"} {
		t.Run(name, func(t *testing.T) {
			rs := loadCase(t, name)
			check(t, rs, fwd(80, 8080), accepted)
			check(t, rs, fwd(81, 8081), dropped.by("policy drop"))
			check(t, rs, fwd(82, 0), dropped)
			check(t, rs, fwd(80, 0), map[string]want{"docker": accepted, "dnat-forward": dropped}[name])
			if v := rs.Evaluate(fwd(80, 8080), Pessimistic); v.Rewrite == nil {
				t.Errorf("no Rewrite for a DNATed path: %v", v)
			}
			// The published port seen on the input path: prerouting DNATs
			// it away, and says so.
			if v := rs.Evaluate(in4(8080), Optimistic); v.Rewrite == nil || !strings.Contains(v.Rewrite.Text, "8080") {
				t.Errorf("input to a published port: Rewrite %v", v.Rewrite)
			}
			check(t, rs, in4(22), accepted)
			check(t, rs, in4(6379), dropped)
		})
	}
	rs := loadCase(t, "dnat-forward")
	check(t, rs, fwd(83, 8083), dropped.by("inet guard forward (handle 2): tcp dport 83 drop"))
	v := rs.Evaluate(fwd(80, 8080), Pessimistic)
	if v.Rule.Text != "ct status dnat tcp dport { 80, 83 } accept" {
		t.Errorf("deciding rule %q", v.Rule.Text)
	}
}

func TestUFW(t *testing.T) {
	rs := loadCase(t, "ufw")
	for _, tb := range rs.Tables() {
		if tb.Source != SourceIptablesNFT {
			t.Errorf("table %s %s read from %s, want iptables-nft-save", tb.Family, tb.Name, tb.Source)
		}
	}
	for _, mk := range []func(uint16) Packet{in4, in6} {
		check(t, rs, mk(22), accepted.by("ufw-user-limit-accept -j ACCEPT"))
		check(t, rs, mk(443), accepted)
		check(t, rs, mk(6379), dropped.by("-A ufw-user-input -p tcp -m tcp --dport 6379 -j DROP"))
		check(t, rs, mk(8080), dropped.by("filter INPUT: policy drop"))
		wg := mk(6379)
		wg.IIf = "wg0"
		check(t, rs, wg, accepted)
		lo := mk(6379)
		lo.IIf = "lo"
		check(t, rs, lo, accepted)
	}
	v := rs.Evaluate(in4(22), Pessimistic)
	if got := strings.Join(v.Via, ","); got != "ufw-before-input,ufw-user-input,ufw-user-limit-accept" {
		t.Errorf("via %q", got)
	}
}

// Without iptables-nft-save, nft's JSON hides the xt matches' options:
// the answers get uncertain but never wrong.
func TestUFWFromJSONOnly(t *testing.T) {
	rs, err := ParseNFT(readCase(t, "ufw.json"))
	if err != nil {
		t.Fatal(err)
	}
	full := loadCase(t, "ufw")
	for _, port := range []uint16{22, 80, 443, 6379, 8080} {
		for _, p := range []Packet{in4(port), in6(port)} {
			sure, could := full.Evaluate(p, Pessimistic), full.Evaluate(p, Optimistic)
			lossyOpt, lossyPes := rs.Evaluate(p, Optimistic), rs.Evaluate(p, Pessimistic)
			if could.Accepted && !lossyOpt.Accepted || !sure.Accepted && lossyPes.Accepted {
				t.Errorf("%s: lossy view %v / %v contradicts full view %v", describe(p), lossyOpt, lossyPes, sure)
			}
		}
	}
	v := rs.Evaluate(in4(22), Pessimistic)
	if v.Certain || v.Accepted || len(v.Unsure) == 0 || !strings.Contains(v.Rule.Text, "xt") {
		t.Errorf("lossy ufw, port 22: %v unsure %v", v, v.Unsure)
	}
}

func TestLegacyAndNFT(t *testing.T) {
	rs := loadCase(t, "legacy")
	check(t, rs, in4(443), dropped.by("inet mine input"))
	check(t, rs, in4(22), accepted.by("iptables-legacy ip filter SERVICES"))
	check(t, rs, in4(8080), dropped.by("-A INPUT -p tcp -j REJECT"))
	admin := in4(8080)
	admin.Saddr = netip.MustParseAddr("10.77.0.9")
	check(t, rs, admin, accepted)
	check(t, rs, in4(7001), accepted.by("-A ENDS -j ACCEPT"))
	check(t, rs, in4(7777), dropped.by("REJECT")) // ENDS returns to INPUT: goto skipped SERVICES' RETURN
	wg := in4(25)
	wg.IIf = "wg7"
	check(t, rs, wg, dropped)
	wg.Dport = 26
	check(t, rs, wg, accepted.by("-i wg+"))
	check(t, rs, in6(8080), accepted)
	check(t, rs, in6(9001), dropped.by("ip6 filter INPUT"))
	fd := in6(6379)
	fd.Saddr = netip.MustParseAddr("fd78::1")
	check(t, rs, fd, dropped)
	lo := in4(9)
	lo.IIf = "lo"
	check(t, rs, lo, accepted)
	inv := in4(22)
	inv.State = StateInvalid
	check(t, rs, inv, dropped.by("--ctstate INVALID -j DROP"))
	if tb := rs.Table(FamilyIP, "filter"); tb == nil || tb.Source != SourceIptablesLegacy {
		t.Errorf("Table(ip, filter) = %+v", tb)
	}
	if tb := rs.Table(FamilyInet, "mine"); tb == nil || tb.Chain("input") == nil || !tb.Chain("input").Base() {
		t.Errorf("Table(inet, mine) = %+v", tb)
	}
}

func TestPosture(t *testing.T) {
	tests := []struct {
		name string
		v6   bool
		want Posture
	}{
		{"empty", false, Posture{EstablishedAccepted: true, LoopbackAccepted: true}},
		{"default-drop", false, Posture{DefaultDrop: true, EstablishedAccepted: true, LoopbackAccepted: true}},
		{"default-drop", true, Posture{DefaultDrop: true, EstablishedAccepted: true, LoopbackAccepted: true}},
		{"constructs", false, Posture{DefaultDrop: true, EstablishedAccepted: true, InvalidDropped: true, LoopbackAccepted: true}},
		{"wg-only", true, Posture{DefaultDrop: true, EstablishedAccepted: true, InvalidDropped: true, LoopbackAccepted: true}},
		{"ufw", false, Posture{DefaultDrop: true, EstablishedAccepted: true, InvalidDropped: true, LoopbackAccepted: true}},
		// Their drops apply on lo too: a local client of port 6379 (or 443,
		// or 9000) is refused.
		{"accept-then-drop", false, Posture{EstablishedAccepted: true}},
		{"legacy", false, Posture{DefaultDrop: true, EstablishedAccepted: true, InvalidDropped: true}},
		{"legacy", true, Posture{EstablishedAccepted: true}},
	}
	for _, tt := range tests {
		got := loadCase(t, tt.name).Posture(Packet{IIf: "eth0", V6: tt.v6})
		got.DefaultDropBy = RuleRef{}
		if got != tt.want {
			t.Errorf("%s v6=%v: %+v, want %+v", tt.name, tt.v6, got, tt.want)
		}
	}
	p := loadCase(t, "ufw").Posture(Packet{IIf: "eth0"})
	if p.DefaultDropBy.String() != "ip filter INPUT: policy drop" {
		t.Errorf("DefaultDropBy %q", p.DefaultDropBy)
	}
}

func TestBaseChainsOrder(t *testing.T) {
	rs := loadCase(t, "accept-then-drop")
	var got []string
	for _, c := range rs.BaseChains(HookInput, false) {
		got = append(got, chainName(c))
	}
	if s := strings.Join(got, ","); s != "inet a input,ip b input,inet late input" {
		t.Errorf("v4 input chains: %s", s)
	}
	merged := rs.Merge(loadCase(t, "default-drop"))
	if n := len(merged.BaseChains(HookInput, true)); n != 4 {
		t.Errorf("merged v6 input chains: %d, want 4", n)
	}
	if len(rs.Tables()) != 4 {
		t.Errorf("Merge changed its receiver: %d tables", len(rs.Tables()))
	}
}
