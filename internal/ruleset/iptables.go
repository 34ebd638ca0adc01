package ruleset

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// builtinChains are the hooks and priorities of x_tables' built-in chains.
var builtinChains = map[string]map[string]struct {
	hook Hook
	prio int
}{
	"filter": {
		"INPUT": {HookInput, 0}, "FORWARD": {HookForward, 0}, "OUTPUT": {HookOutput, 0},
	},
	"nat": {
		"PREROUTING": {HookPrerouting, -100}, "INPUT": {HookInput, 100},
		"OUTPUT": {HookOutput, -100}, "POSTROUTING": {HookPostrouting, 100},
	},
	"mangle": {
		"PREROUTING": {HookPrerouting, -150}, "INPUT": {HookInput, -150}, "FORWARD": {HookForward, -150},
		"OUTPUT": {HookOutput, -150}, "POSTROUTING": {HookPostrouting, -150},
	},
	"raw": {
		"PREROUTING": {HookPrerouting, -300}, "OUTPUT": {HookOutput, -300},
	},
	"security": {
		"INPUT": {HookInput, 50}, "FORWARD": {HookForward, 50}, "OUTPUT": {HookOutput, 50},
	},
}

// ParseIptablesSave reads the output of iptables-legacy-save (family
// FamilyIP) or ip6tables-legacy-save (FamilyIP6).
func ParseIptablesSave(text string, family Family) (*Ruleset, error) {
	return parseIptablesSave(text, family, SourceIptablesLegacy)
}

func parseIptablesSave(text string, family Family, src Source) (*Ruleset, error) {
	if family != FamilyIP && family != FamilyIP6 {
		return nil, fmt.Errorf("parse iptables-save: family %q: want ip or ip6", family)
	}
	rs := &Ruleset{}
	var t *Table
	var pending []pendingTarget
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		errAt := func(format string, a ...any) error {
			return fmt.Errorf("parse iptables-save line %d: %s (expected iptables-save output)", n+1, fmt.Sprintf(format, a...))
		}
		if line[0] == '[' { // "[pkts:bytes] -A ..." from iptables-save -c
			if i := strings.IndexByte(line, ']'); i > 0 {
				line = strings.TrimSpace(line[i+1:])
			}
		}
		switch {
		case line == "":
			return nil, errAt("counters without a rule")
		case line[0] == '*':
			if t != nil {
				return nil, errAt("table %s not committed before *%s", t.Name, line[1:])
			}
			t = &Table{Family: family, Name: line[1:], Source: src, chains: map[string]*Chain{}, sets: map[string]*set{}}
		case line == "COMMIT":
			if t == nil {
				return nil, errAt("COMMIT outside a table")
			}
			resolveTargets(t, pending)
			pending = nil
			rs.tables = append(rs.tables, t)
			t = nil
		case t == nil:
			return nil, errAt("%q outside a table", clip(line))
		case line[0] == ':':
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				return nil, errAt("chain line %q", clip(line))
			}
			declareChain(t, f[0], f[1])
		default:
			toks, err := splitArgs(line)
			if err != nil {
				return nil, errAt("%v", err)
			}
			if len(toks) < 2 {
				return nil, errAt("rule %q", clip(line))
			}
			switch toks[0] {
			case "-A", "--append":
				c := t.addChain(&Chain{Name: toks[1]})
				r, target := parseIptablesRule(toks[2:], family)
				r.Text = clip(line)
				c.Rules = append(c.Rules, r)
				if target != "" {
					pending = append(pending, pendingTarget{r, target})
				}
			case "-N", "--new-chain":
				declareChain(t, toks[1], "-")
			case "-P", "--policy":
				if len(toks) >= 3 {
					declareChain(t, toks[1], toks[2])
				}
			default:
				return nil, errAt("unknown command %q", clip(toks[0]))
			}
		}
	}
	if t != nil {
		return nil, fmt.Errorf("parse iptables-save: table %s has no COMMIT (truncated output?)", t.Name)
	}
	return rs, nil
}

func declareChain(t *Table, name, policy string) {
	c := t.addChain(&Chain{Name: name})
	if b, ok := builtinChains[t.Name][name]; ok {
		c.Hook, c.Priority, c.Type = b.hook, b.prio, "filter"
		if t.Name == "nat" {
			c.Type = "nat"
		}
		if policy != "-" {
			c.Policy = strings.ToLower(policy)
		}
		if c.Policy == "" {
			c.Policy = "accept"
		}
	}
}

type pendingTarget struct {
	r    *Rule
	name string
}

// resolveTargets turns -j NAME into a jump once all chains are known.
func resolveTargets(t *Table, pending []pendingTarget) {
	for _, p := range pending {
		if _, ok := t.chains[p.name]; ok {
			p.r.act.target = p.name
			if p.r.act.kind != actGoto {
				p.r.act.kind = actJump
			}
			continue
		}
		if p.r.act.kind == actGoto {
			p.r.act = action{kind: actUnknown}
			continue
		}
		switch p.name {
		case "RETURN":
			p.r.act = action{kind: actReturn}
		default:
			p.r.act = xtTarget(p.name)
		}
	}
}

// splitArgs splits a line as iptables-save quotes it: words, and double
// quoted strings with backslash escapes.
func splitArgs(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quoted && ch == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (ch == ' ' || ch == '\t'):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// iptablesRule accumulates one rule's matches.
type iptablesRule struct {
	r      *Rule
	family Family
	proto  uint16 // from -p, for multiport's ports
	module string
}

// parseIptablesRule reads the options after "-A CHAIN"; target is a -j or
// -g name still to be resolved against the table's chains.
func parseIptablesRule(toks []string, family Family) (*Rule, string) {
	b := iptablesRule{r: &Rule{}, family: family}
	var target string
	neg := false
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		if tok == "!" {
			neg = !neg
			continue
		}
		// args returns the values following option i, up to the next option.
		args := func() []string {
			j := i + 1
			for j < len(toks) && toks[j] != "!" && !(strings.HasPrefix(toks[j], "-") && len(toks[j]) > 1 && !isNumber(toks[j])) {
				j++
			}
			a := toks[i+1 : j]
			i = j - 1
			return a
		}
		switch tok {
		case "-j", "--jump", "-g", "--goto":
			a := args()
			if len(a) == 0 {
				b.r.act = action{kind: actUnknown}
				continue
			}
			target = a[0]
			if tok == "-g" || tok == "--goto" {
				b.r.act = action{kind: actGoto}
			} else {
				// Whatever follows are the target's options.
				return b.r, target
			}
		case "-m", "--match":
			a := args()
			if len(a) > 0 {
				b.module = a[0]
				b.moduleStart()
			}
		case "-c", "--set-counters":
			args()
		default:
			b.option(tok, args(), neg)
		}
		neg = false
	}
	return b.r, target
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

func (b *iptablesRule) add(c cond) { b.r.conds = append(b.r.conds, c) }

func (b *iptablesRule) unknown() { b.add(cond{key: keyUnknown}) }

func (b *iptablesRule) constant(t tri) { b.add(cond{key: keyConst, constant: t}) }

// moduleStart handles matches that need no options to mean something.
func (b *iptablesRule) moduleStart() {
	switch b.module {
	case "limit":
		b.constant(yes) // one fresh connection is under the limit
	case "rpfilter":
		b.constant(yes) // the reverse path is assumed valid; --invert flips it
	}
}

func (b *iptablesRule) ipdep() uint8 {
	if b.family == FamilyIP6 {
		return 6
	}
	return 4
}

func opFor(neg bool) op {
	if neg {
		return opNe
	}
	return opEq
}

func (b *iptablesRule) option(opt string, a []string, neg bool) {
	val := ""
	if len(a) > 0 {
		val = a[0]
	}
	switch opt {
	case "-p", "--protocol":
		if strings.EqualFold(val, "all") || val == "0" {
			if neg {
				b.constant(no)
			}
			return
		}
		e := elem{kind: elemStr, str: strings.ToLower(val)}
		if n, ok := nameNum(keyL4Proto, e.str); ok {
			b.proto = uint16(n)
		}
		b.add(cond{key: keyL4Proto, op: opFor(neg), rhs: rhs{elems: []elem{e}}})
		return
	case "-s", "--source", "-d", "--destination", "--src-range", "--dst-range":
		k := keySaddr
		if opt == "-d" || opt == "--destination" || opt == "--dst-range" {
			k = keyDaddr
		}
		var es []elem
		for _, s := range strings.Split(val, ",") {
			es = append(es, addrElem(s))
		}
		b.add(cond{key: k, ipdep: b.ipdep(), op: opFor(neg), rhs: rhs{elems: es}})
		return
	case "-i", "--in-interface", "-o", "--out-interface":
		k := keyIIf
		if opt == "-o" || opt == "--out-interface" {
			k = keyOIf
		}
		name := val
		if p, ok := strings.CutSuffix(name, "+"); ok {
			name = p + "*"
		}
		b.add(cond{key: k, op: opFor(neg), rhs: rhs{elems: []elem{{kind: elemStr, str: name}}}})
		return
	case "-f", "--fragment":
		b.constant(triOf(neg)) // the packet is not a fragment
		return
	}
	switch b.module {
	case "tcp", "udp", "sctp", "dccp", "udplite":
		dep := l4Protocols[b.module]
		switch opt {
		case "--dport", "--destination-port", "--sport", "--source-port":
			k := keyDport
			if opt == "--sport" || opt == "--source-port" {
				k = keySport
			}
			b.add(cond{key: k, l4dep: dep, op: opFor(neg), rhs: rhs{elems: []elem{portElem(val)}}})
			return
		case "--syn":
			syn := tcpFlagBits["syn"]
			b.add(cond{key: keyTCPFlags, l4dep: 6, op: opFor(neg), mask: syn | tcpFlagBits["fin"] | tcpFlagBits["rst"] | tcpFlagBits["ack"], hasMask: true,
				rhs: rhs{elems: []elem{{kind: elemNum, num: syn}}, list: true}})
			return
		case "--tcp-flags":
			if len(a) == 2 {
				mask, ok1 := iptFlags(a[0])
				comp, ok2 := iptFlags(a[1])
				if ok1 && ok2 {
					b.add(cond{key: keyTCPFlags, l4dep: 6, op: opFor(neg), mask: mask, hasMask: true,
						rhs: rhs{elems: []elem{{kind: elemNum, num: comp}}, list: true}})
					return
				}
			}
		}
		b.add(cond{key: keyUnknown, l4dep: dep})
	case "multiport":
		dep := b.proto
		if dep == 0 {
			dep = depTransport
		}
		k := keyUnknown
		switch opt {
		case "--dports", "--destination-ports":
			k = keyDport
		case "--sports", "--source-ports":
			k = keySport
		}
		if k == keyUnknown {
			b.add(cond{key: keyUnknown, l4dep: dep})
			return
		}
		var es []elem
		for _, p := range strings.Split(val, ",") {
			es = append(es, portElem(p))
		}
		b.add(cond{key: k, l4dep: dep, op: opFor(neg), rhs: rhs{elems: es}})
	case "conntrack", "state":
		switch opt {
		case "--ctstate", "--state":
			b.ctstate(val, neg)
		case "--ctstatus":
			var es []elem
			for _, s := range strings.Split(strings.ToLower(val), ",") {
				es = append(es, elem{kind: elemStr, str: strings.ReplaceAll(s, "_", "-")})
			}
			if val == "NONE" {
				es = []elem{{kind: elemNum}}
			}
			o := opIn
			if neg {
				o = opNotIn
			}
			b.add(cond{key: keyCtStatus, op: o, rhs: rhs{elems: es, list: true}})
		default:
			b.unknown()
		}
	case "addrtype":
		switch opt {
		case "--dst-type":
			types := strings.Split(strings.ToLower(val), ",")
			if b.family == FamilyIP6 && !slices.Equal(types, []string{"local"}) {
				// For IPv6, xt_addrtype tests UNICAST, MULTICAST and UNSPEC
				// on the address itself (a local address is unicast too):
				// only "unicast" alone is modelled, true for the unicast
				// packets asked about.
				if slices.Equal(types, []string{"unicast"}) {
					b.constant(triOf(!neg))
				} else {
					b.unknown()
				}
				break
			}
			var es []elem
			for _, s := range types {
				es = append(es, elem{kind: elemStr, str: s})
			}
			b.add(cond{key: keyFibDaddrType, op: opFor(neg), rhs: rhs{elems: es}})
		case "--limit-iface-in", "--limit-iface-out":
		default:
			b.unknown()
		}
	case "comment":
		b.r.Comment = val
	case "pkttype":
		b.add(cond{key: keyPktType, op: opFor(neg), rhs: rhs{elems: []elem{{kind: elemStr, str: strings.ToLower(val)}}}})
	case "iprange":
		b.unknown() // handled above for --src-range/--dst-range; other options unknown
	case "limit":
		// Its options only tune the rate; moduleStart decided.
	case "hashlimit":
		switch opt {
		case "--hashlimit-above":
			b.constant(triOf(neg))
		case "--hashlimit-upto", "--hashlimit":
			b.constant(triOf(!neg))
		}
	case "connlimit":
		switch opt {
		case "--connlimit-above":
			b.constant(triOf(neg))
		case "--connlimit-upto":
			b.constant(triOf(!neg))
		}
	case "recent":
		switch opt {
		case "--set":
			b.constant(triOf(!neg))
		case "--hitcount":
			// A source seen fewer times than the count: the check fails.
			b.constant(triOf(neg))
		case "--rcheck", "--update", "--remove":
			b.unknown()
		}
	case "rpfilter":
		if opt == "--invert" {
			b.constant(no)
		}
	case "icmp":
		b.add(cond{key: keyUnknown, l4dep: 1})
	case "icmp6", "icmpv6":
		b.add(cond{key: keyUnknown, l4dep: 58})
	default:
		b.unknown()
	}
}

// ctstate adds --ctstate/--state; the virtual states SNAT and DNAT are ct
// status bits.
func (b *iptablesRule) ctstate(val string, neg bool) {
	o := opIn
	if neg {
		o = opNotIn
	}
	var states, status []elem
	for _, s := range strings.Split(strings.ToLower(val), ",") {
		switch s {
		case "snat", "dnat":
			status = append(status, elem{kind: elemStr, str: s})
		default:
			states = append(states, elem{kind: elemStr, str: s})
		}
	}
	switch {
	case len(status) == 0:
		b.add(cond{key: keyCtState, op: o, rhs: rhs{elems: states, list: true}})
	case len(states) == 0:
		b.add(cond{key: keyCtStatus, op: o, rhs: rhs{elems: status, list: true}})
	default:
		b.unknown() // an OR across state and status
	}
}

func iptFlags(s string) (uint64, bool) {
	var m uint64
	for _, f := range strings.Split(strings.ToLower(s), ",") {
		switch f {
		case "all":
			m |= 0x3f
		case "none":
		default:
			x, ok := tcpFlagBits[f]
			if !ok {
				return 0, false
			}
			m |= x
		}
	}
	return m, true
}

// portElem reads "22", "1000:2000", "1000-2000" or a service name.
func portElem(s string) elem {
	lo, hi, isRange := strings.Cut(s, ":")
	if !isRange {
		lo, hi, isRange = strings.Cut(s, "-")
	}
	if !isRange {
		return elem{kind: elemStr, str: s}
	}
	e := elem{kind: elemNumRange, num: 0, numHi: 65535}
	if lo != "" {
		e.str = lo
	}
	if hi != "" {
		e.strHi = hi
	}
	return e
}

// addrElem reads an address, a prefix with a length or a netmask, or a
// range "a-b".
func addrElem(s string) elem {
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(lo)
		z, err2 := netip.ParseAddr(hi)
		if err1 == nil && err2 == nil && a.BitLen() == z.BitLen() {
			return elem{kind: elemAddrRange, lo: a, hi: z}
		}
		return elem{}
	}
	addr, bits, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return elem{}
	}
	if !hasBits {
		return elem{kind: elemAddrRange, lo: a, hi: a}
	}
	n, err := strconv.Atoi(bits)
	if err != nil {
		m, err := netip.ParseAddr(bits) // a dotted netmask
		if err != nil {
			return elem{}
		}
		n = maskBits(m)
		if n < 0 {
			return elem{}
		}
	}
	p, err := a.Prefix(n)
	if err != nil {
		return elem{}
	}
	return elem{kind: elemAddrRange, lo: p.Addr(), hi: lastAddr(p)}
}

// maskBits returns the length of a contiguous netmask, or -1.
func maskBits(m netip.Addr) int {
	n, ones := 0, true
	for _, byt := range m.AsSlice() {
		for i := 7; i >= 0; i-- {
			bit := byt>>i&1 == 1
			if bit && !ones {
				return -1
			}
			if bit {
				n++
			} else {
				ones = false
			}
		}
	}
	return n
}
