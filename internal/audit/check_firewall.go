package audit

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/moat-sh/moat/internal/ruleset"
)

func checkFirewall(f *facts, o *out) {
	rs, err := f.ruleset()
	if err != nil {
		f.denied(err, "the nftables ruleset")
		for _, id := range []string{"FW-001", "FW-002", "FW-003", "FW-004", "FW-005", "FW-006"} {
			o.unknown(id, err)
		}
		return
	}
	iif := ""
	if pub := f.publicIfaces(); len(pub) > 0 {
		iif = pub[0]
	}
	// A new connection from the internet to a port nothing should open, at
	// every public address: default-deny drops it; "no firewall" accepts
	// it. The answer is the first address that accepts it, if any does.
	targets := f.publicTargets()
	probe := func(v6fam bool) ruleset.Verdict {
		var first *ruleset.Verdict
		tried := false
		for _, t := range targets {
			if t.addr.Is6() != v6fam {
				continue
			}
			tried = true
			p := ruleset.Packet{Hook: ruleset.HookInput, IIf: t.iface, IIfIndex: t.index, Saddr: internetV4, Daddr: t.addr, Proto: "tcp", Dport: 1}
			if v6fam {
				p.Saddr = internetV6
			}
			v := rs.Evaluate(p, ruleset.Optimistic)
			if v.Accepted {
				return v
			}
			if first == nil {
				first = &v
			}
		}
		if !tried {
			p := ruleset.Packet{Hook: ruleset.HookInput, IIf: iif, Saddr: internetV4, Proto: "tcp", Dport: 1}
			if v6fam {
				p.Saddr = internetV6
			}
			return rs.Evaluate(p, ruleset.Optimistic)
		}
		return *first
	}
	v4, _ := f.publicAddrs()
	p4, p6 := probe(false), probe(true)
	verdictText := func(v ruleset.Verdict) string {
		if v.Rule.Text == "" {
			return "no base chain on the input path"
		}
		if !v.Certain {
			return v.Rule.String() + " (uncertain: " + unsureText(v.Unsure) + ")"
		}
		return v.Rule.String()
	}
	if rs.Empty() || (p4.Accepted && p6.Accepted) {
		ev := "nft list ruleset is empty: every packet is accepted"
		if !rs.Empty() {
			ev = fmt.Sprintf("tables are loaded but a new connection to an unused port is accepted (IPv4: %s; IPv6: %s)", verdictText(p4), verdictText(p6))
		}
		o.fail("FW-001", "", ev)
	} else {
		o.pass("FW-001", "", fmt.Sprintf("%d table(s) loaded", len(rs.Tables())))
	}
	o.check("FW-002", !p4.Accepted, "IPv4", "new tcp/1 from the internet: "+verdictText(p4))
	o.check("FW-003", !p6.Accepted, "IPv6", "new tcp/1 from the internet: "+verdictText(p6))

	if p4.Accepted {
		o.na("FW-004", "no default-deny input chain to judge")
	} else {
		var bad []string
		lo := rs.Evaluate(ruleset.Packet{Hook: ruleset.HookInput, IIf: "lo", Saddr: netip.MustParseAddr("127.0.0.1"), Daddr: netip.MustParseAddr("127.0.0.1"), Proto: "tcp", Dport: 1}, ruleset.Pessimistic)
		if !lo.Accepted {
			bad = append(bad, "loopback traffic is dropped by "+lo.Rule.String())
		}
		est := rs.Evaluate(ruleset.Packet{Hook: ruleset.HookInput, IIf: iif, Saddr: internetV4, Daddr: v4, Proto: "tcp", Dport: 40000, State: ruleset.StateEstablished}, ruleset.Pessimistic)
		if !est.Accepted {
			bad = append(bad, "replies to this host's own connections (ct state established) are dropped by "+est.Rule.String())
		}
		inv := rs.Evaluate(ruleset.Packet{Hook: ruleset.HookInput, IIf: iif, Saddr: internetV4, Daddr: v4, Proto: "tcp", Dport: 22, State: ruleset.StateInvalid}, ruleset.Optimistic)
		if inv.Accepted {
			bad = append(bad, "ct state invalid packets are accepted (to sshd's port) by "+verdictText(inv))
		}
		o.check("FW-004", len(bad) == 0, "", bad...)
	}

	if t := rs.Table(ruleset.FamilyInet, "moat"); t != nil && !t.Dormant {
		o.pass("FW-005", "", moatTableState(t))
	} else if t != nil {
		o.fail("FW-005", "", "table inet moat is loaded but dormant: its chains are off their hooks")
	} else {
		o.fail("FW-005", "", "table inet moat is not loaded")
	}
	var legacy []string
	for _, t := range rs.Tables() {
		if t.Source == ruleset.SourceIptablesLegacy {
			n := 0
			for _, c := range t.Chains {
				n += len(c.Rules)
			}
			if n > 0 {
				legacy = append(legacy, fmt.Sprintf("iptables-legacy table %s %s: %d rules", t.Family, t.Name, n))
			}
		}
	}
	o.check("FW-006", len(legacy) == 0, "", legacy...)
}

// moatTableState summarises moat's own table for FW-005: its base chains
// with their policies, its rules, and the sets its rules use.
func moatTableState(t *ruleset.Table) string {
	var base []string
	rules := 0
	sets := map[string]bool{}
	for _, c := range t.Chains {
		rules += len(c.Rules)
		if c.Base() {
			base = append(base, fmt.Sprintf("%s policy %s", c.Name, c.Policy))
		}
		for _, r := range c.Rules {
			for _, f := range strings.Fields(r.Text) {
				if name, ok := strings.CutPrefix(f, "@"); ok && name != "" {
					sets[strings.TrimRight(name, ",}")] = true
				}
			}
		}
	}
	names := slices.Sorted(maps.Keys(sets))
	setText := "no sets in use"
	if len(names) > 0 {
		setText = fmt.Sprintf("%d sets in use (%s)", len(names), strings.Join(names, ", "))
	}
	return fmt.Sprintf("table inet moat loaded: %d chains (%s), %d rules, %s", len(t.Chains), strings.Join(base, "; "), rules, setText)
}
