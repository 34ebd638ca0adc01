package ruleset

// actKind is what a rule does when it matches.
type actKind uint8

const (
	actNone    actKind = iota // no verdict: the next rule runs
	actAccept                 // accept
	actDrop                   // drop and reject
	actReturn                 // return
	actJump                   // jump target
	actGoto                   // goto target
	actNAT                    // dnat, snat, masquerade, redirect: ends the chain like accept
	actVmap                   // a verdict map
	actUnknown                // queue, synproxy, unknown targets: any outcome
)

type action struct {
	kind    actKind
	target  string // jump and goto
	rewrite bool   // actNAT that changes the destination (dnat, redirect)
	vmap    *vmap
}

// vmap is `KEY vmap { value : verdict, ... }` or `KEY vmap @name`.
type vmap struct {
	key     cond // the left side; each entry supplies the right side
	set     string
	entries []vmapEntry
}

type vmapEntry struct {
	elem elem
	act  action
}

// effect returns what action a of rule r in chain c may lead to.
func (e *evaluator) effect(a action, c *Chain, r *Rule, depth int) (res result) {
	here := cause{chain: c, rule: r}
	defer func() { res.setFall(outNext, here) }()
	switch a.kind {
	case actNone:
		res.add(outNext, here)
	case actAccept:
		res.add(outAccept, here)
		res.setFall(outAccept, here)
	case actDrop:
		res.add(outDrop, here)
		res.setFall(outDrop, here)
	case actReturn:
		res.add(outReturn, here)
		res.setFall(outReturn, here)
	case actNAT:
		if a.rewrite && e.rewrite == nil {
			rr := ref(c, r)
			e.rewrite = &rr
		}
		res.add(outAccept, here)
		res.setFall(outAccept, here)
	case actJump, actGoto:
		target := c.Table.chains[a.target]
		if target == nil {
			res.add(outAccept|outDrop|outNext, here)
			e.noteUnsure(c, r)
			break
		}
		sub := e.chain(target, depth+1)
		for i, o := range []outcome{outAccept, outDrop} {
			if sub.out&o != 0 {
				res.add(o, sub.why[i].under(target))
			}
		}
		back := outNext // where a return from the target leads
		if a.kind == actGoto {
			back = outReturn
		}
		if sub.out&outReturn != 0 {
			res.add(back, here)
		}
		if sub.fall == outReturn {
			res.setFall(back, here)
		} else {
			res.setFall(sub.fall, sub.fallWhy.under(target))
		}
	case actVmap:
		res = e.vmap(a.vmap, c, r, depth)
	default:
		res.add(outAccept|outDrop|outNext, here)
	}
	return res
}

func (e *evaluator) vmap(m *vmap, c *Chain, r *Rule, depth int) result {
	var res result
	entries := m.entries
	if m.set != "" {
		s := c.Table.sets[m.set]
		if s == nil {
			res.add(outAccept|outDrop|outNext, cause{chain: c, rule: r})
			e.noteUnsure(c, r)
			return res
		}
		entries = s.verdict
	}
	k := m.key
	for i := range entries {
		if i >= maxVmapChecks {
			res.add(outAccept|outDrop|outNext, cause{chain: c, rule: r})
			e.noteUnsure(c, r)
			return res
		}
		k.rhs = rhs{elems: []elem{entries[i].elem}}
		switch k.eval(&e.view, c.Table) {
		case yes:
			eff := e.effect(entries[i].act, c, r, depth)
			res.merge(eff)
			res.setFall(eff.fall, eff.fallWhy)
			return res
		case maybe:
			res.merge(e.effect(entries[i].act, c, r, depth))
			e.noteUnsure(c, r)
		}
	}
	// No element matched: the rule stops here and the next one runs.
	res.add(outNext, cause{chain: c, rule: r})
	return res
}
