package ruleset

import (
	"net/netip"
	"testing"
)

// Seed corpora live in testdata/fuzz/Fuzz*/: the cases' captures and the
// crashers found so far. The captures are large: bound minimisation, as in
// go test -run='^$' -fuzz=FuzzParseNFT -fuzztime=30s -fuzzminimizetime=2s

func FuzzParseNFT(f *testing.F) {
	f.Add([]byte(emptyJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseNFT(data)
		if err != nil {
			return
		}
		exercise(t, rs)
	})
}

func FuzzParseIptablesSave(f *testing.F) {
	f.Add("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n", false)
	f.Fuzz(func(t *testing.T, text string, v6 bool) {
		fam := FamilyIP
		if v6 {
			fam = FamilyIP6
		}
		rs, err := ParseIptablesSave(text, fam)
		if err != nil {
			return
		}
		exercise(t, rs)
	})
}

// FuzzEvaluate varies the packet as well as the ruleset.
func FuzzEvaluate(f *testing.F) {
	f.Add([]byte(emptyJSON), uint16(22), uint16(40000), uint8(0), uint8(0), "eth0", false, false, false)
	f.Fuzz(func(t *testing.T, data []byte, dport, sport uint16, proto, state uint8, iif string, v6, forward, dnat bool) {
		rs, err := ParseNFT(data)
		if err != nil {
			return
		}
		p := Packet{Hook: HookInput, IIf: iif, Proto: []string{"tcp", "udp", "icmp", ""}[proto%4], Sport: sport, Dport: dport,
			State: CtState(state % 5), DNAT: dnat, OrigDport: dport + 1}
		if forward {
			p.Hook, p.OIf = HookForward, "docker0"
		}
		p.Saddr, p.Daddr = outside4, server4
		if v6 {
			p.Saddr, p.Daddr = outside6, server6
		}
		if dport%7 == 0 {
			p.Saddr = netip.Addr{} // unknown source
		}
		checkInvariants(t, rs, p)
	})
}

// exercise evaluates a handful of packets and the posture.
func exercise(t *testing.T, rs *Ruleset) {
	for _, p := range []Packet{in4(22), in6(443), {Hook: HookForward, Proto: "udp", Dport: 53, DNAT: true}, {Hook: HookInput, IIf: "lo", V6: true}} {
		checkInvariants(t, rs, p)
	}
	_ = rs.Posture(Packet{IIf: "eth0"})
	for _, tb := range rs.Tables() {
		for _, c := range tb.Chains {
			if c.Table != tb || tb.Chain(c.Name) != c {
				t.Fatalf("chain %s of table %s is not linked back", c.Name, tb.Name)
			}
		}
	}
}

func checkInvariants(t *testing.T, rs *Ruleset, p Packet) {
	opt, pes := rs.Evaluate(p, Optimistic), rs.Evaluate(p, Pessimistic)
	if pes.Accepted && !opt.Accepted {
		t.Fatalf("%s: surely accepted (%v) but not possibly (%v)", describe(p), pes, opt)
	}
	if opt.Certain != pes.Certain || opt.Certain != (opt.Accepted == pes.Accepted) {
		t.Fatalf("%s: certainty %v/%v for answers %v/%v", describe(p), opt.Certain, pes.Certain, opt.Accepted, pes.Accepted)
	}
	if len(opt.Unsure) > maxUnsure || len(opt.Path) > len(rs.ingressChains(p.IIf))+len(rs.BaseChains(HookPrerouting, p.IsV6()))+len(rs.BaseChains(p.Hook, p.IsV6())) {
		t.Fatalf("%s: unsure %d, path %d", describe(p), len(opt.Unsure), len(opt.Path))
	}
	_ = opt.String() + pes.String()
}
