package ruleset

import (
	"encoding/json"
	"math"
	"net/netip"
	"strings"
)

// parseRule turns a rule's expression list into conditions and an action.
// Whatever it does not understand becomes an unknown condition or action,
// never an error: the kernel accepted the rule, so it means something.
// compat reports "xt" expressions, which iptables-nft leaves.
func parseRule(j *nftRule) (r *Rule, compat bool) {
	r = &Rule{Handle: j.Handle, Comment: j.Comment}
	var text []string
	for _, raw := range j.Expr {
		k, v, ok := single(raw)
		if !ok {
			r.conds = append(r.conds, cond{key: keyUnknown})
			continue
		}
		compat = compat || k == "xt"
		text = append(text, render(k, v))
		r.stmt(k, v)
	}
	r.Text = clip(strings.Join(text, " "))
	if j.Comment != "" {
		r.Text += ` comment "` + clip(j.Comment) + `"`
	}
	return r, compat
}

// single splits a one-key JSON object into its key and value.
func single(raw json.RawMessage) (string, json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) != 1 {
		return "", nil, false
	}
	for k, v := range m {
		return k, v, true
	}
	return "", nil, false
}

// noops are statements with no bearing on the verdict.
var noops = map[string]bool{
	"counter": true, "log": true, "mangle": true, "flow": true,
	"last": true, "secmark": true, "ct timeout": true, "ct expectation": true,
	"ct helper": true, "dup": true, "fwd": true, "tproxy": true, "continue": true,
	"map": true,
}

func (r *Rule) stmt(k string, v json.RawMessage) {
	switch k {
	case "match":
		r.conds = append(r.conds, parseMatch(v))
	case "accept", "drop", "reject", "return", "jump", "goto", "queue":
		r.act = verdictAction(k, v)
	case "notrack":
		r.notrack = true
	case "synproxy":
		r.act = action{kind: actUnknown} // answers the handshake itself
	case "dnat", "redirect":
		r.act = action{kind: actNAT, rewrite: true}
	case "snat", "masquerade":
		r.act = action{kind: actNAT}
	case "vmap":
		r.act = parseVmap(v)
	case "limit", "quota", "ct count", "meter", "set":
		if c, ok := rateCond(k, v); ok {
			r.conds = append(r.conds, c)
		}
	case "xt":
		var x struct{ Type, Name string }
		_ = json.Unmarshal(v, &x)
		if x.Type == "target" {
			r.act = xtTarget(x.Name)
		} else {
			r.conds = append(r.conds, cond{key: keyUnknown})
		}
	default:
		if !noops[k] {
			// An unknown statement may be a match (socket, osf, ...) or a
			// verdict (synproxy): both are possible.
			r.conds = append(r.conds, cond{key: keyUnknown})
		}
	}
}

// parseVerdict reads {"accept": null}, {"jump": {"target": "x"}}, ...
func parseVerdict(raw json.RawMessage) action {
	k, v, ok := single(raw)
	if !ok {
		return action{kind: actUnknown}
	}
	return verdictAction(k, v)
}

func verdictAction(k string, v json.RawMessage) action {
	switch k {
	case "accept":
		return action{kind: actAccept}
	case "drop", "reject":
		return action{kind: actDrop}
	case "return":
		return action{kind: actReturn}
	case "continue":
		return action{kind: actNone}
	case "jump", "goto":
		var t struct{ Target string }
		if json.Unmarshal(v, &t) != nil || t.Target == "" {
			return action{kind: actUnknown}
		}
		kind := actJump
		if k == "goto" {
			kind = actGoto
		}
		return action{kind: kind, target: t.Target}
	}
	return action{kind: actUnknown} // queue: userspace decides
}

// xtTarget maps an iptables target kept by iptables-nft as "xt target".
func xtTarget(name string) action {
	switch strings.ToUpper(name) {
	case "ACCEPT":
		return action{kind: actAccept}
	case "DROP", "REJECT":
		return action{kind: actDrop}
	case "DNAT", "REDIRECT":
		return action{kind: actNAT, rewrite: true}
	case "SNAT", "MASQUERADE", "NETMAP":
		return action{kind: actNAT}
	}
	if nonTerminalTargets[strings.ToUpper(name)] {
		return action{}
	}
	return action{kind: actUnknown}
}

// nonTerminalTargets only annotate, count or mark the packet.
var nonTerminalTargets = map[string]bool{
	"LOG": true, "NFLOG": true, "ULOG": true, "MARK": true, "CONNMARK": true,
	"TCPMSS": true, "CT": true, "NOTRACK": true, "CHECKSUM": true, "TRACE": true,
	"TEE": true, "AUDIT": true, "SET": true, "CLASSIFY": true, "DSCP": true,
	"TOS": true, "TTL": true, "HL": true, "SECMARK": true, "CONNSECMARK": true,
	"LED": true, "IDLETIMER": true, "HMARK": true, "RATEEST": true,
}

// rateCond turns a limit-like statement into a constant match: one fresh
// connection is under every limit (see the package doc).
func rateCond(k string, v json.RawMessage) (cond, bool) {
	switch k {
	case "limit", "ct count":
		var l struct{ Inv bool }
		_ = json.Unmarshal(v, &l)
		return cond{key: keyConst, constant: triOf(!l.Inv)}, true
	case "quota":
		var q struct {
			Val      float64 `json:"val"`
			ValUnit  string  `json:"val_unit"`
			Used     float64 `json:"used"`
			UsedUnit string  `json:"used_unit"`
			Inv      bool    `json:"inv"`
		}
		_ = json.Unmarshal(v, &q)
		over := q.Used*unitBytes(q.UsedUnit) >= q.Val*unitBytes(q.ValUnit)
		return cond{key: keyConst, constant: triOf(over == q.Inv)}, true
	case "meter", "set":
		// A dynamic set update; with statements attached, they decide.
		var s struct {
			Stmt json.RawMessage `json:"stmt"`
		}
		_ = json.Unmarshal(v, &s)
		var stmts []json.RawMessage
		if json.Unmarshal(s.Stmt, &stmts) != nil {
			stmts = []json.RawMessage{s.Stmt} // meter has one object
		}
		res := cond{key: keyConst, constant: yes}
		for _, st := range stmts {
			sk, sv, ok := single(st)
			if !ok {
				continue
			}
			if sk == "set" || sk == "meter" {
				return cond{key: keyUnknown}, true
			}
			c, ok := rateCond(sk, sv)
			if !ok {
				if !noops[sk] {
					return cond{key: keyUnknown}, true
				}
				continue
			}
			if c.constant != yes {
				res.constant = c.constant
			}
		}
		return res, true
	}
	return cond{}, false
}

func unitBytes(u string) float64 {
	switch u {
	case "kbytes":
		return 1 << 10
	case "mbytes":
		return 1 << 20
	case "gbytes":
		return 1 << 30
	}
	return 1
}

func parseVmap(v json.RawMessage) action {
	var j struct {
		Key  json.RawMessage `json:"key"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(v, &j) != nil {
		return action{kind: actUnknown}
	}
	m := &vmap{key: parseLeft(j.Key)}
	m.key.op = opEq
	var name string
	if json.Unmarshal(j.Data, &name) == nil {
		m.set = strings.TrimPrefix(name, "@")
		return action{kind: actVmap, vmap: m}
	}
	var d struct {
		Set []json.RawMessage `json:"set"`
	}
	if json.Unmarshal(j.Data, &d) != nil {
		return action{kind: actUnknown}
	}
	for _, raw := range d.Set {
		var pair []json.RawMessage
		if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
			return action{kind: actUnknown}
		}
		m.entries = append(m.entries, vmapEntry{elem: parseElem(pair[0]), act: parseVerdict(pair[1])})
	}
	return action{kind: actVmap, vmap: m}
}

func parseMatch(v json.RawMessage) cond {
	var m struct {
		Op    string          `json:"op"`
		Left  json.RawMessage `json:"left"`
		Right json.RawMessage `json:"right"`
	}
	if json.Unmarshal(v, &m) != nil {
		return cond{key: keyUnknown}
	}
	c := parseLeft(m.Left)
	if c.key == keyUnknown {
		return c
	}
	flags := c.key == keyCtState || c.key == keyCtStatus || c.key == keyTCPFlags
	switch m.Op {
	case "==", "":
		c.op = opEq
		if m.Op == "" && flags {
			c.op = opIn
		}
	case "!=":
		c.op = opNe
	case "in":
		c.op = opIn
		if !flags {
			c.op = opEq
		}
	case "<":
		c.op = opLt
	case ">":
		c.op = opGt
	case "<=":
		c.op = opLe
	case ">=":
		c.op = opGe
	default:
		return cond{key: keyUnknown, ipdep: c.ipdep, l4dep: c.l4dep}
	}
	c.rhs = parseRight(m.Right)
	return c
}

// parseLeft reads the left side of a match into a condition without
// operator and right side.
func parseLeft(raw json.RawMessage) cond { return parseLeftAt(raw, 0) }

func parseLeftAt(raw json.RawMessage, depth int) cond {
	k, v, ok := single(raw)
	if !ok || depth > maxNesting {
		return cond{key: keyUnknown}
	}
	switch k {
	case "payload":
		var p struct{ Protocol, Field string }
		_ = json.Unmarshal(v, &p)
		return payloadCond(p.Protocol, p.Field)
	case "meta":
		var m struct{ Key string }
		_ = json.Unmarshal(v, &m)
		return cond{key: metaKeys[m.Key]}
	case "ct":
		var c struct{ Key, Dir string }
		_ = json.Unmarshal(v, &c)
		if c.Dir != "" {
			return cond{key: keyUnknown}
		}
		return cond{key: ctKeys[c.Key]}
	case "fib":
		var f struct {
			Result string
			Flags  json.RawMessage
		}
		_ = json.Unmarshal(v, &f)
		fl := stringList(f.Flags)
		has := func(s string) bool {
			for _, x := range fl {
				if x == s {
					return true
				}
			}
			return false
		}
		switch {
		case f.Result == "type" && has("daddr") && !has("saddr"):
			return cond{key: keyFibDaddrType}
		case (f.Result == "oif" || f.Result == "oifname") && has("saddr"):
			return cond{key: keyFibRPF}
		}
	case "&":
		var ops []json.RawMessage
		if json.Unmarshal(v, &ops) != nil || len(ops) != 2 {
			return cond{key: keyUnknown}
		}
		c := parseLeftAt(ops[0], depth+1)
		if c.hasMask {
			return cond{key: keyUnknown, ipdep: c.ipdep, l4dep: c.l4dep}
		}
		mask, ok := flagNum(c.key, ops[1])
		if !ok {
			return cond{key: keyUnknown, ipdep: c.ipdep, l4dep: c.l4dep}
		}
		c.mask, c.hasMask = mask, true
		return c
	case "concat":
		var parts []json.RawMessage
		if json.Unmarshal(v, &parts) != nil || len(parts) == 0 {
			return cond{key: keyUnknown}
		}
		c := cond{key: keyConcat}
		for _, p := range parts {
			c.parts = append(c.parts, parseLeftAt(p, depth+1))
		}
		return c
	}
	return cond{key: keyUnknown}
}

var metaKeys = map[string]key{
	"iifname": keyIIf, "iif": keyIIf, "oifname": keyOIf, "oif": keyOIf,
	"l4proto": keyL4Proto, "nfproto": keyNFProto, "protocol": keyEtherProto,
	"pkttype": keyPktType,
}

var ctKeys = map[string]key{
	"state": keyCtState, "status": keyCtStatus, "direction": keyCtDirection,
}

// l4Protocols maps payload protocols to the IP protocol they depend on.
var l4Protocols = map[string]uint16{
	"tcp": 6, "udp": 17, "udplite": 136, "sctp": 132, "dccp": 33, "icmp": 1,
	"icmpv6": 58, "esp": 50, "ah": 51, "comp": 108, "gre": 47, "th": depTransport,
}

func payloadCond(proto, field string) cond {
	switch proto {
	case "ip", "ip6":
		dep := uint8(4)
		if proto == "ip6" {
			dep = 6
		}
		switch field {
		case "saddr":
			return cond{key: keySaddr, ipdep: dep}
		case "daddr":
			return cond{key: keyDaddr, ipdep: dep}
		case "protocol", "nexthdr":
			return cond{key: keyL4Proto, ipdep: dep}
		}
		return cond{key: keyUnknown, ipdep: dep}
	}
	dep, ok := l4Protocols[proto]
	if !ok {
		return cond{key: keyUnknown}
	}
	switch {
	case field == "sport" && hasPortsDep(dep):
		return cond{key: keySport, l4dep: dep}
	case field == "dport" && hasPortsDep(dep):
		return cond{key: keyDport, l4dep: dep}
	case field == "flags" && proto == "tcp":
		return cond{key: keyTCPFlags, l4dep: dep}
	}
	return cond{key: keyUnknown, l4dep: dep}
}

func hasPortsDep(dep uint16) bool { return dep == depTransport || dep < 256 && hasPorts(uint8(dep)) }

// flagNum reads a mask: a number, a flag name, a list or an OR of them.
func flagNum(k key, raw json.RawMessage) (uint64, bool) {
	e := parseRight(raw)
	var m uint64
	for i := range e.elems {
		x, ok := e.elems[i].asNum(k)
		if !ok {
			return 0, false
		}
		m |= x
	}
	return m, e.set == "" && len(e.elems) > 0
}

func stringList(raw json.RawMessage) []string {
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	return nil
}

// parseRight reads a match's right side.
func parseRight(raw json.RawMessage) rhs {
	var s string
	if json.Unmarshal(raw, &s) == nil && strings.HasPrefix(s, "@") {
		return rhs{set: s[1:]}
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		r := rhs{list: true}
		for _, x := range list {
			r.elems = append(r.elems, parseElem(x))
		}
		return r
	}
	if k, v, ok := single(raw); ok {
		switch k {
		case "set":
			var members []json.RawMessage
			_ = json.Unmarshal(v, &members)
			r := rhs{}
			for _, x := range members {
				r.elems = append(r.elems, parseElem(x))
			}
			return r
		case "|":
			var ops []json.RawMessage
			_ = json.Unmarshal(v, &ops)
			r := rhs{list: true}
			for _, x := range ops {
				r.elems = append(r.elems, parseElem(x))
			}
			return r
		}
	}
	return rhs{elems: []elem{parseElem(raw)}}
}

// parseElem reads one value: a number, a name, an address, a prefix, a
// range, or a set element wrapper around one of those.
func parseElem(raw json.RawMessage) elem { return parseElemAt(raw, 0) }

func parseElemAt(raw json.RawMessage, depth int) elem {
	if depth > maxNesting {
		return elem{}
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		if n < 0 || n > math.MaxUint64 || n != math.Trunc(n) {
			return elem{}
		}
		return elem{kind: elemNum, num: uint64(n)}
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		if b {
			return elem{kind: elemNum, num: 1}
		}
		return elem{kind: elemNum}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if a, err := netip.ParseAddr(s); err == nil {
			return elem{kind: elemAddrRange, lo: a, hi: a}
		}
		return elem{kind: elemStr, str: s}
	}
	k, v, ok := single(raw)
	if !ok {
		return elem{}
	}
	switch k {
	case "elem":
		var w struct {
			Val json.RawMessage `json:"val"`
		}
		if json.Unmarshal(v, &w) != nil {
			return elem{}
		}
		return parseElemAt(w.Val, depth+1)
	case "prefix":
		var p struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		}
		if json.Unmarshal(v, &p) != nil {
			return elem{}
		}
		a, err := netip.ParseAddr(p.Addr)
		if err != nil {
			return elem{}
		}
		pfx, err := a.Prefix(p.Len)
		if err != nil {
			return elem{}
		}
		return elem{kind: elemAddrRange, lo: pfx.Addr(), hi: lastAddr(pfx)}
	case "concat":
		var parts []json.RawMessage
		if json.Unmarshal(v, &parts) != nil || len(parts) == 0 {
			return elem{}
		}
		e := elem{kind: elemConcat}
		for _, p := range parts {
			e.parts = append(e.parts, parseElemAt(p, depth+1))
		}
		return e
	case "range":
		var bounds []json.RawMessage
		if json.Unmarshal(v, &bounds) != nil || len(bounds) != 2 {
			return elem{}
		}
		lo, hi := parseElemAt(bounds[0], depth+1), parseElemAt(bounds[1], depth+1)
		switch {
		case lo.kind == elemAddrRange && hi.kind == elemAddrRange && lo.lo.BitLen() == hi.lo.BitLen():
			return elem{kind: elemAddrRange, lo: lo.lo, hi: hi.hi}
		case (lo.kind == elemNum || lo.kind == elemStr) && (hi.kind == elemNum || hi.kind == elemStr):
			return elem{kind: elemNumRange, num: lo.num, numHi: hi.num, str: lo.str, strHi: hi.str}
		}
	}
	return elem{}
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
