package ruleset

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/google/nftables/expr"
)

// Mode decides how matches the evaluator cannot decide are counted.
type Mode uint8

const (
	// Optimistic answers "could the packet be accepted?": undecided matches
	// go whichever way lets it through. The audit uses it to flag exposure.
	Optimistic Mode = iota
	// Pessimistic answers "is the packet surely accepted?": undecided
	// matches go whichever way drops it. The lockout check uses it.
	Pessimistic
)

func (m Mode) String() string {
	if m == Pessimistic {
		return "pessimistic"
	}
	return "optimistic"
}

// Verdict is the answer for one packet.
type Verdict struct {
	Accepted bool
	// Certain is true when Optimistic and Pessimistic agree: no undecided
	// match could change the answer.
	Certain bool
	// Rule decided the verdict: for a drop, the rule or policy that drops;
	// for an accept, the rule that let the packet through a policy-drop
	// chain (else any accepting rule, else the last policy). Zero when no
	// base chain lies on the path.
	Rule RuleRef
	// Via lists the regular chains jumped through to reach Rule.
	Via []string
	// Path holds the base chains evaluated, in order, up to the deciding one.
	Path []Step
	// Unsure names the rules with undecided matches or verdicts that were
	// reached; empty when Certain.
	Unsure []RuleRef
	// Rewrite is the first dnat or redirect rule that may rewrite the
	// destination on this path, so the packet may reach another socket than
	// the one asked about; nil when none.
	Rewrite *RuleRef
}

// Step is one base chain's answer.
type Step struct {
	Chain    string // "inet filter input"
	Hook     Hook
	Priority int
	Policy   string
	Accepted bool // in the evaluation's mode
	Certain  bool
	Rule     RuleRef
	Via      []string
}

// RuleRef names a rule, or a chain's policy, for reports.
type RuleRef struct {
	Source Source
	Family Family
	Table  string
	Chain  string
	Handle uint64 // 0 for policies and iptables-save rules
	Policy bool   // the chain's policy decided
	Text   string // `tcp dport 22 drop`, `policy drop`, or an iptables-save line
}

// String renders r as `inet filter input: tcp dport 22 drop`.
func (r RuleRef) String() string {
	if r.Chain == "" {
		return r.Text
	}
	var b strings.Builder
	if r.Source == SourceIptablesLegacy {
		b.WriteString("iptables-legacy ")
	}
	fmt.Fprintf(&b, "%s %s %s", r.Family, r.Table, r.Chain)
	if r.Handle != 0 {
		fmt.Fprintf(&b, " (handle %d)", r.Handle)
	}
	b.WriteString(": ")
	b.WriteString(r.Text)
	return b.String()
}

// String renders v as one line for reports.
func (v Verdict) String() string {
	var b strings.Builder
	if v.Accepted {
		b.WriteString("accepted")
	} else {
		b.WriteString("dropped")
	}
	if !v.Certain {
		b.WriteString(" (uncertain)")
	}
	if v.Rule == (RuleRef{}) {
		b.WriteString(": no base chain on the path")
		return b.String()
	}
	b.WriteString(" by ")
	b.WriteString(v.Rule.String())
	if len(v.Via) > 0 {
		fmt.Fprintf(&b, " (via %s)", strings.Join(v.Via, " → "))
	}
	return b.String()
}

func chainName(c *Chain) string {
	return fmt.Sprintf("%s %s %s", c.Table.Family, c.Table.Name, c.Name)
}

func ref(c *Chain, r *Rule) RuleRef {
	ref := RuleRef{Source: c.Table.Source, Family: c.Table.Family, Table: c.Table.Name, Chain: c.Name}
	if r == nil {
		ref.Policy = true
		ref.Text = "policy " + c.policy()
		return ref
	}
	ref.Handle, ref.Text = r.Handle, r.Text
	return ref
}

func (c *Chain) policy() string {
	if c.Policy == "" {
		return "accept"
	}
	return c.Policy
}

// Evaluate runs p through every base chain on its path and reports whether
// the kernel would accept it, under mode m for undecided matches.
func (r *Ruleset) Evaluate(p Packet, m Mode) Verdict {
	if p.Hook == "" {
		p.Hook = HookInput
	}
	v6 := p.IsV6()
	var chains []*Chain
	switch p.Hook {
	case HookInput, HookForward:
		chains = append(r.ingressChains(p.IIf), r.BaseChains(HookPrerouting, v6)...)
		chains = append(chains, r.BaseChains(p.Hook, v6)...)
	default:
		chains = r.BaseChains(p.Hook, v6)
	}
	e := evaluator{unsureSeen: map[*Rule]bool{}}
	var carried *carry
	type chainAnswer struct {
		c   *Chain
		res result
	}
	var answers []chainAnswer
	possible, surely := true, true
	for _, c := range chains {
		if c.Type == "nat" && p.State != StateNew {
			continue // nat chains see only a connection's first packet
		}
		v := p.view(c)
		if r.ctmarkZero() {
			v.ctmarkKnown = true // no rule sets one: every ct mark is zero
		}
		if v.iifIndex == 0 && v.iifKnown {
			v.iifIndex = r.ifindex[p.IIf]
			if p.IIf == "lo" {
				v.iifIndex = 1 // loopback is 1 in every namespace
			}
		}
		if carried != nil {
			carried.apply(&v)
		}
		res := e.base(c, v)
		if c.Hook == HookIngress && (p.IIf == "" && len(c.Devices) > 0 || c.devUnknown) || c.Table.dormantUnsure {
			// Attached to devices while the packet's is unknown, or in a
			// table that may be dormant: the chain may not see it at all.
			res.add(outAccept, cause{chain: c})
			if c.Table.dormantUnsure && len(e.unsure) < maxUnsure {
				e.unsure = append(e.unsure, RuleRef{Source: c.Table.Source, Family: c.Table.Family, Table: c.Table.Name, Chain: c.Name,
					Text: "table flags unreadable in nft's JSON: the table may be dormant"})
			}
		}
		next := carryOf(&e.view)
		carried = &next
		answers = append(answers, chainAnswer{c, res})
		possible = possible && res.out&outAccept != 0
		surely = surely && res.out == outAccept
	}

	v := Verdict{Certain: possible == surely, Rewrite: e.rewrite}
	if m == Optimistic {
		v.Accepted = possible
	} else {
		v.Accepted = surely
	}
	decided := len(answers) - 1
	if !v.Accepted {
		for i, a := range answers {
			// A chain that cannot accept decides a sure drop; otherwise the
			// first chain that may drop decides the pessimistic answer.
			if possible && a.res.out&outDrop != 0 || !possible && a.res.out&outAccept == 0 {
				decided = i
				break
			}
		}
	}
	for _, a := range answers[:decided+1] {
		s := Step{Chain: chainName(a.c), Hook: a.c.Hook, Priority: a.c.Priority, Policy: a.c.policy(), Certain: a.res.out == outAccept || a.res.out == outDrop}
		s.Accepted = a.res.out == outAccept || m == Optimistic && a.res.out&outAccept != 0
		// A chain with one answer is explained by its fall-through path;
		// otherwise by the first rule that could give the mode's answer.
		why := a.res.fallWhy
		if !s.Certain {
			why = a.res.why[idxDrop]
			if s.Accepted {
				why = a.res.why[idxAccept]
			}
		}
		s.Rule, s.Via = why.ref(), why.viaNames()
		v.Path = append(v.Path, s)
	}
	if len(v.Path) > 0 {
		d := v.Path[len(v.Path)-1]
		if v.Accepted {
			d = explainAccept(v.Path)
		}
		v.Rule, v.Via = d.Rule, d.Via
	}
	if !v.Certain {
		v.Unsure = e.unsure
	}
	return v
}

// ctmarkZero reports whether no rule can set a conntrack mark: every nft
// table came from the kernel (so its ct mark statements are known) and no
// iptables-legacy rule jumps to CONNMARK.
func (r *Ruleset) ctmarkZero() bool {
	if r.ctmarkSet || len(r.tables) == 0 {
		return false
	}
	for _, t := range r.tables {
		if t.Source == SourceIptablesLegacy {
			for _, c := range t.Chains {
				for _, rule := range c.Rules {
					if strings.Contains(rule.Text, "CONNMARK") {
						return false
					}
				}
			}
			continue
		}
		if !t.kernel {
			return false
		}
	}
	return true
}

// explainAccept picks the step that best explains an accepted packet: a
// rule that let it through a default-drop chain, else any accepting rule,
// else the last policy.
func explainAccept(path []Step) Step {
	best := path[len(path)-1]
	rank := func(s Step) int {
		switch {
		case s.Rule.Policy:
			return 0
		case s.Policy == "drop":
			return 2
		}
		return 1
	}
	for _, s := range path {
		if rank(s) >= rank(best) {
			best = s
		}
	}
	return best
}

// outcome is a set of possible results of a chain or a rule.
type outcome uint8

const (
	outAccept outcome = 1 << iota
	outDrop
	outReturn // returned, or fell off the end: the caller continues
	outNext   // a rule without verdict: the next rule runs
)

const (
	idxAccept = iota
	idxDrop
	idxReturn
	idxNext
)

// cause is the first rule found to produce an outcome, and the chains
// jumped through to reach it.
type cause struct {
	chain *Chain
	rule  *Rule // nil: the end of chain (the policy of a base chain)
	via   []*Chain
}

func (c cause) ref() RuleRef {
	if c.chain == nil {
		return RuleRef{}
	}
	return ref(c.chain, c.rule)
}

func (c cause) viaNames() []string {
	var out []string
	for _, ch := range c.via {
		out = append(out, ch.Name)
	}
	return out
}

// result is what a chain or rule may lead to. fall is the one path where
// every undecided match fails and every unpredictable verdict continues: it
// explains answers that hold on every path better than the first rule that
// could produce them.
type result struct {
	out     outcome
	why     [4]cause
	fall    outcome
	fallWhy cause
}

func (r *result) setFall(o outcome, c cause) {
	if r.fall == 0 {
		r.fall, r.fallWhy = o, c
	}
}

func (r *result) add(o outcome, c cause) {
	for i := range 4 {
		bit := outcome(1) << i
		if o&bit != 0 && r.out&bit == 0 {
			r.out |= bit
			r.why[i] = c
		}
	}
}

func (r *result) merge(o result) {
	for i := range 4 {
		if bit := outcome(1) << i; o.out&bit != 0 {
			r.add(bit, o.why[i])
		}
	}
}

// Bounds that keep hostile or broken input from running away; the kernel
// itself allows 16 nested jumps.
const (
	maxDepth      = 32
	maxUnsure     = 16
	maxVmapChecks = 1 << 16
)

// carry is what one base chain hands the next: marks, and the conntrack
// state notrack may have changed.
type carry struct {
	mark, ctmark           uint32
	markKnown, ctmarkKnown bool
	untracked, stateLost   bool
}

func carryOf(v *view) carry {
	c := carry{mark: v.mark, ctmark: v.ctmark, markKnown: v.markKnown, ctmarkKnown: v.ctmarkKnown}
	c.untracked = v.stateKnown && v.state == ctStateBits["untracked"]
	c.stateLost = !v.stateKnown && !v.noCT
	return c
}

func (c carry) apply(v *view) {
	v.mark, v.ctmark, v.markKnown, v.ctmarkKnown = c.mark, c.ctmark, c.markKnown, c.ctmarkKnown
	switch {
	case c.untracked:
		v.state, v.stateKnown, v.noCT = ctStateBits["untracked"], true, false
	case c.stateLost:
		v.stateKnown = false
	}
}

// memoKey is a chain entered with a packet state: what a chain does
// depends on the marks it sees.
type memoKey struct {
	c      *Chain
	state  carry
	forked bool
}

type memoVal struct {
	res    result
	exit   carry // the state it leaves behind
	forked bool
}

type evaluator struct {
	view view
	memo map[memoKey]memoVal
	// forked is set once the walk of a base chain has split into several
	// paths: from then on a mark set on one path is unknown on the others.
	forked     bool
	active     map[*Chain]bool // chains being evaluated: a jump loop
	unsure     []RuleRef
	unsureSeen map[*Rule]bool
	rewrite    *RuleRef
}

// anything is the result of what cannot be predicted at all.
func anything(c cause) result {
	r := result{fall: outReturn, fallWhy: c}
	r.add(outAccept|outDrop|outReturn, c)
	return r
}

// base evaluates base chain c for the packet in v: its outcomes are
// accept and drop, the policy standing in for falling off the end.
func (e *evaluator) base(c *Chain, v view) result {
	e.view = v
	e.memo = map[memoKey]memoVal{} // what a chain does depends on the hook
	e.active = map[*Chain]bool{}
	e.forked = false
	res := e.chain(c, 0)
	policy := outAccept
	if c.policy() == "drop" {
		policy = outDrop
	}
	if res.out&outReturn != 0 {
		res.out &^= outReturn
		res.add(policy, cause{chain: c})
	}
	if res.fall == outReturn {
		res.fall, res.fallWhy = policy, cause{chain: c}
	}
	return res
}

func (e *evaluator) chain(c *Chain, depth int) result {
	key := memoKey{c, carryOf(&e.view), e.forked}
	if m, ok := e.memo[key]; ok {
		m.exit.apply(&e.view)
		e.forked = e.forked || m.forked
		return m.res
	}
	forkedBefore := e.forked
	if e.active[c] || depth > maxDepth {
		// The kernel refuses loops and deep nesting; answer "anything".
		return anything(cause{chain: c})
	}
	e.active[c] = true
	defer delete(e.active, c)

	var res result
	done := false
	for _, r := range c.Rules {
		var m tri
		var eff result
		if r.prog != nil {
			m, eff = e.runProg(c, r, depth)
			if m == no {
				continue
			}
		} else {
			m = e.match(r, c.Table)
			if m == no {
				continue
			}
			if r.notrack {
				e.step(&expr.Notrack{}, nil, c.Table, m)
			}
			eff = e.effect(r.act, c, r, depth)
		}
		if m == yes && eff.fall != outNext {
			res.setFall(eff.fall, eff.fallWhy)
		}
		if m == maybe {
			eff.add(outNext, cause{})
		}
		if m == maybe || r.act.kind == actUnknown || r.prog != nil && r.prog.act.kind == actUnknown {
			e.noteUnsure(c, r)
		}
		if bits.OnesCount8(uint8(eff.out)) > 1 {
			e.forked = true
		}
		next := eff.out&outNext != 0
		eff.out &^= outNext
		res.merge(eff)
		if !next {
			done = true
			break
		}
	}
	if !done {
		res.add(outReturn, cause{chain: c})
	}
	res.setFall(outReturn, cause{chain: c})
	e.memo[key] = memoVal{res: res, exit: carryOf(&e.view), forked: e.forked && !forkedBefore}
	return res
}

func (e *evaluator) noteUnsure(c *Chain, r *Rule) {
	if e.unsureSeen[r] || len(e.unsure) >= maxUnsure {
		return
	}
	e.unsureSeen[r] = true
	e.unsure = append(e.unsure, ref(c, r))
}

func (e *evaluator) match(r *Rule, t *Table) tri {
	res := yes
	for i := range r.conds {
		switch r.conds[i].eval(&e.view, t) {
		case no:
			return no
		case maybe:
			res = maybe
		}
	}
	return res
}

// under prefixes the chain a jump entered to c's path.
func (c cause) under(entered *Chain) cause {
	c.via = append([]*Chain{entered}, c.via...)
	return c
}
