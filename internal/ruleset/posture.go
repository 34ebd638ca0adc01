package ruleset

import "net/netip"

// Posture summarises how a hook treats one IP family: the facts behind the
// audit's default-deny checks.
type Posture struct {
	// DefaultDrop is set when a base chain on the hook drops whatever its
	// rules did not accept: policy drop, or a last rule that drops (or
	// jumps to a chain that drops) unconditionally. DefaultDropBy names it.
	DefaultDrop   bool
	DefaultDropBy RuleRef
	// EstablishedAccepted: replies (ct state established) to an ephemeral
	// port are surely accepted.
	EstablishedAccepted bool
	// InvalidDropped: packets in ct state invalid cannot be accepted,
	// whatever their port.
	InvalidDropped bool
	// LoopbackAccepted: new connections over lo are surely accepted,
	// whatever their port.
	LoopbackAccepted bool
}

// Posture probes the hook p.Hook (input when empty) for p's IP family with
// variations of p, which should describe ordinary outside traffic: its
// inbound interface and source (a documentation address when unset).
func (r *Ruleset) Posture(p Packet) Posture {
	if p.Hook == "" {
		p.Hook = HookInput
	}
	v6 := p.IsV6()
	p.V6 = v6
	if !p.Saddr.IsValid() {
		p.Saddr = netip.MustParseAddr("198.51.100.1")
		if v6 {
			p.Saddr = netip.MustParseAddr("2001:db8:1::1")
		}
	}
	if p.Proto == "" {
		p.Proto = "tcp"
	}
	p.Dport, p.Sport, p.DNAT = 0, 0, false

	var out Posture
	for _, c := range r.BaseChains(p.Hook, v6) {
		if by, ok := dropsByDefault(c); ok {
			out.DefaultDrop, out.DefaultDropBy = true, by
			break
		}
	}

	// Replies arrive on ephemeral ports; which one is of no consequence.
	est := p
	est.State, est.Sport, est.Dport = StateEstablished, 443, 50000
	out.EstablishedAccepted = r.Evaluate(est, Pessimistic).Accepted

	inv := p
	inv.State = StateInvalid
	out.InvalidDropped = !r.Evaluate(inv, Optimistic).Accepted

	lo := p
	lo.IIf, lo.State = "lo", StateNew
	lo.Saddr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if v6 {
		lo.Saddr = netip.IPv6Loopback()
	}
	lo.Daddr = lo.Saddr
	out.LoopbackAccepted = r.Evaluate(lo, Pessimistic).Accepted
	return out
}

// dropsByDefault reports whether base chain c ends in a drop for whatever
// its rules let through.
func dropsByDefault(c *Chain) (RuleRef, bool) {
	if c.policy() == "drop" {
		return ref(c, nil), true
	}
	return endsInDrop(c, 0)
}

func endsInDrop(c *Chain, depth int) (RuleRef, bool) {
	if len(c.Rules) == 0 || depth > 4 {
		return RuleRef{}, false
	}
	last := c.Rules[len(c.Rules)-1]
	act := last.act
	if last.prog != nil {
		if !last.prog.unconditional() {
			return RuleRef{}, false
		}
		act = last.prog.act
	}
	for _, k := range last.conds {
		if k.key != keyConst || k.constant != yes {
			return RuleRef{}, false
		}
	}
	switch act.kind {
	case actDrop:
		return ref(c, last), true
	case actJump, actGoto:
		if t := c.Table.chains[act.target]; t != nil {
			return endsInDrop(t, depth+1)
		}
	}
	return RuleRef{}, false
}
