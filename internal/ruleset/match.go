package ruleset

import (
	"net/netip"
	"strconv"
	"strings"
)

// tri is a three-valued truth: a match holds, does not, or cannot be decided.
type tri uint8

const (
	no tri = iota
	yes
	maybe
)

func (t tri) not() tri {
	switch t {
	case yes:
		return no
	case no:
		return yes
	}
	return maybe
}

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

// key is the packet property a condition looks at.
type key uint8

const (
	keyUnknown key = iota // cannot be decided; its dependencies may still rule it out
	keyConst              // a constant answer (limits, quotas)
	keyIIf
	keyOIf
	keyL4Proto
	keyNFProto
	keyEtherProto
	keySaddr
	keyDaddr
	keySport
	keyDport
	keyCtState
	keyCtStatus
	keyCtDirection
	keyFibDaddrType
	keyFibRPF // fib saddr . iif oif: does the reverse path exist
	keyPktType
	keyTCPFlags
	keyConcat // a concatenation of parts, matched against concatenated elements
)

// op is a comparison.
type op uint8

const (
	opEq    op = iota // equal, or member of a set
	opNe              // the negation of opEq
	opIn              // flags: any bit in common
	opNotIn           // flags: no bit in common (iptables' "! --ctstate")
	opLt
	opGt
	opLe
	opGe
)

// Layer-4 dependencies: a payload match on tcp only holds for TCP packets.
const (
	depNone      uint16 = 0
	depTransport uint16 = 0x100 // th: any protocol with ports
)

// cond is one match of a rule, reduced to what the evaluator needs.
type cond struct {
	key      key
	ipdep    uint8  // 4 or 6: the match needs that IP version (ip/ip6 payload)
	l4dep    uint16 // IP protocol number the match needs, or depTransport
	op       op
	mask     uint64 // left-hand "&" mask, when hasMask
	hasMask  bool
	rhs      rhs
	constant tri    // for keyConst
	parts    []cond // for keyConcat
}

// rhs is the right-hand side of a match: one value, a flag list, an
// anonymous set, or a reference to a named set.
type rhs struct {
	elems []elem
	set   string // named set, resolved in the rule's table at evaluation
	list  bool   // a flag list (OR of its elements), not a set of alternatives
}

type elemKind uint8

const (
	elemUnknown   elemKind = iota // values we cannot compare
	elemNum                       // numbers and booleans
	elemStr                       // names: interfaces, protocols, flags, services
	elemAddrRange                 // addresses, prefixes and address ranges, as [lo, hi]
	elemNumRange                  // [lo, hi] of numbers or names
	elemConcat                    // one value per part of a concatenation
)

// elem is one value of a set or a right-hand side.
type elem struct {
	kind       elemKind
	num, numHi uint64
	str, strHi string // names for elemStr, and for elemNumRange bounds given as names
	lo, hi     netip.Addr
	parts      []elem
}

// set is a named set or map of a table.
type set struct {
	elems      []elem
	verdict    []vmapEntry // for verdict maps
	isMap      bool
	verdictMap bool
}

// view is the packet as one base chain sees it.
type view struct {
	v6        bool
	iif, oif  string
	iifKnown  bool
	oifKnown  bool
	l4        uint8
	l4Known   bool
	saddr     netip.Addr
	daddr     netip.Addr
	sport     uint16
	dport     uint16
	state     uint64 // ct state bit
	status    uint64 // ct status bits
	tcpFlags  uint64
	flagsKnow bool
	local     bool // fib daddr type local
	iifIndex  int

	// Carried from chain to chain: marks, and the state notrack changes.
	mark, ctmark           uint32
	markKnown, ctmarkKnown bool
	stateKnown             bool
	noCT                   bool // no conntrack entry yet (ingress, raw prerouting)
}

// eval decides c for the packet in v; t resolves named sets.
func (c *cond) eval(v *view, t *Table) tri {
	if c.ipdep == 4 && v.v6 || c.ipdep == 6 && !v.v6 {
		return no
	}
	if c.l4dep != depNone {
		if !v.l4Known {
			// The dependency itself is unknown; whatever follows is too.
			return maybe
		}
		if c.l4dep == depTransport {
			if !hasPorts(v.l4) {
				return no
			}
		} else if uint16(v.l4) != c.l4dep {
			return no
		}
	}
	switch c.key {
	case keyConst:
		return c.constant
	case keyUnknown:
		return maybe
	case keyIIf:
		return c.matchStr(v.iif, v.iifKnown, t)
	case keyOIf:
		return c.matchStr(v.oif, v.oifKnown, t)
	case keySaddr:
		return c.matchAddr(v.saddr, t)
	case keyDaddr:
		return c.matchAddr(v.daddr, t)
	case keyL4Proto:
		return c.matchNum(uint64(v.l4), v.l4Known, t)
	case keyNFProto:
		return c.matchNum(nfproto(v.v6), true, t)
	case keyEtherProto:
		return c.matchNum(etherProto(v.v6), true, t)
	case keySport:
		return c.matchNum(uint64(v.sport), v.sport != 0, t)
	case keyDport:
		return c.matchNum(uint64(v.dport), v.dport != 0, t)
	case keyCtState:
		return c.matchNum(v.state, v.stateKnown, t)
	case keyCtStatus:
		return c.matchNum(v.status, true, t)
	case keyTCPFlags:
		return c.matchNum(v.tcpFlags, v.flagsKnow, t)
	case keyCtDirection:
		return c.matchStr("original", true, t)
	case keyFibDaddrType:
		typ := "unicast"
		if v.local {
			typ = "local"
		}
		return c.matchStr(typ, true, t)
	case keyFibRPF:
		return c.matchNum(1, true, t)
	case keyPktType:
		return c.matchStr("host", true, t)
	case keyConcat:
		return c.matchConcat(v, t)
	}
	return maybe
}

func hasPorts(proto uint8) bool {
	switch proto {
	case 6, 17, 33, 132, 136: // tcp, udp, dccp, sctp, udplite
		return true
	}
	return false
}

func nfproto(v6 bool) uint64 {
	if v6 {
		return 10
	}
	return 2
}

func etherProto(v6 bool) uint64 {
	if v6 {
		return 0x86dd
	}
	return 0x0800
}

// elems returns the members c compares against; ok is false when a named
// set is missing or cannot be matched.
func (c *cond) elems(t *Table) ([]elem, bool) {
	if c.rhs.set == "" {
		return c.rhs.elems, true
	}
	if t == nil {
		return nil, false
	}
	s, found := t.sets[c.rhs.set]
	if !found {
		return nil, false
	}
	return s.elems, true
}

// matchNum compares a numeric or flag property.
func (c *cond) matchNum(v uint64, known bool, t *Table) tri {
	if !known {
		return maybe
	}
	if c.hasMask {
		v &= c.mask
	}
	es, ok := c.elems(t)
	if !ok {
		return maybe
	}
	switch c.op {
	case opIn, opNotIn:
		m, ok := c.flagValue(es)
		if !ok {
			return maybe
		}
		r := triOf(v&m != 0)
		if c.op == opNotIn {
			r = r.not()
		}
		return r
	case opLt, opGt, opLe, opGe:
		if len(es) != 1 {
			return maybe
		}
		x, ok := es[0].asNum(c.key)
		if !ok {
			return maybe
		}
		switch c.op {
		case opLt:
			return triOf(v < x)
		case opGt:
			return triOf(v > x)
		case opLe:
			return triOf(v <= x)
		default:
			return triOf(v >= x)
		}
	}
	var r tri
	if c.rhs.list {
		m, ok := c.flagValue(es)
		if !ok {
			return maybe
		}
		r = triOf(v == m)
	} else {
		r = no
		for i := range es {
			if m := es[i].containsNum(v, c.key); m == yes {
				r = yes
				break
			} else if m == maybe {
				r = maybe
			}
		}
	}
	if c.op == opNe {
		r = r.not()
	}
	return r
}

// flagValue ORs the elements of a flag list.
func (c *cond) flagValue(es []elem) (uint64, bool) {
	var m uint64
	for i := range es {
		x, ok := es[i].asNum(c.key)
		if !ok {
			return 0, false
		}
		m |= x
	}
	return m, true
}

func (c *cond) matchStr(v string, known bool, t *Table) tri {
	if !known {
		return maybe
	}
	es, ok := c.elems(t)
	if !ok {
		return maybe
	}
	r := no
	for i := range es {
		if es[i].kind != elemStr {
			r = maybe // an interface index or a numeric type: we only know names
			continue
		}
		if ifnameMatch(es[i].str, v) {
			r = yes
			break
		}
	}
	if c.op == opNe {
		r = r.not()
	} else if c.op != opEq && c.op != opIn {
		return maybe
	}
	return r
}

// ifnameMatch compares an interface name with a pattern; a trailing
// unescaped '*' matches any suffix, as in nft.
func ifnameMatch(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok && !strings.HasSuffix(p, `\`) {
		return strings.HasPrefix(name, p)
	}
	return strings.ReplaceAll(pattern, `\*`, "*") == name
}

func (c *cond) matchAddr(a netip.Addr, t *Table) tri {
	if !a.IsValid() {
		return maybe
	}
	es, ok := c.elems(t)
	if !ok {
		return maybe
	}
	r := no
	for i := range es {
		e := &es[i]
		if e.kind != elemAddrRange {
			r = maybe
			continue
		}
		if a.BitLen() == e.lo.BitLen() && a.Compare(e.lo) >= 0 && a.Compare(e.hi) <= 0 {
			r = yes
			break
		}
	}
	switch c.op {
	case opEq:
		return r
	case opNe:
		return r.not()
	}
	return maybe
}

// matchConcat matches `a . b @set`: an element matches when every part does.
func (c *cond) matchConcat(v *view, t *Table) tri {
	es, ok := c.elems(t)
	if !ok {
		return maybe
	}
	r := no
	for i := range es {
		e := &es[i]
		if e.kind != elemConcat || len(e.parts) != len(c.parts) {
			r = maybe
			continue
		}
		m := yes
		for j := range c.parts {
			part := c.parts[j]
			part.op, part.rhs = opEq, rhs{elems: e.parts[j : j+1]}
			if pm := part.eval(v, t); pm == no {
				m = no
				break
			} else if pm == maybe {
				m = maybe
			}
		}
		if m == yes {
			r = yes
			break
		}
		r = max(r, m)
	}
	switch c.op {
	case opEq:
		return r
	case opNe:
		return r.not()
	}
	return maybe
}

// asNum resolves e to a number in the context of key k.
func (e *elem) asNum(k key) (uint64, bool) {
	switch e.kind {
	case elemNum:
		return e.num, true
	case elemStr:
		return nameNum(k, e.str)
	}
	return 0, false
}

func (e *elem) containsNum(v uint64, k key) tri {
	switch e.kind {
	case elemNum, elemStr:
		x, ok := e.asNum(k)
		if !ok {
			return maybe
		}
		return triOf(x == v)
	case elemNumRange:
		lo, hi := e.num, e.numHi
		if e.str != "" {
			x, ok := nameNum(k, e.str)
			if !ok {
				return maybe
			}
			lo = x
		}
		if e.strHi != "" {
			x, ok := nameNum(k, e.strHi)
			if !ok {
				return maybe
			}
			hi = x
		}
		return triOf(lo <= v && v <= hi)
	}
	return maybe
}

// nameNum maps the symbolic constants nft prints to their numbers.
func nameNum(k key, s string) (uint64, bool) {
	if n, err := strconv.ParseUint(s, 0, 64); err == nil {
		return n, true
	}
	var m map[string]uint64
	switch k {
	case keyL4Proto:
		m = protoNumbers
	case keyNFProto:
		m = map[string]uint64{"ipv4": 2, "ipv6": 10}
	case keyEtherProto:
		m = map[string]uint64{"ip": 0x0800, "ip6": 0x86dd, "arp": 0x0806, "vlan": 0x8100}
	case keyCtState:
		m = ctStateBits
	case keyCtStatus:
		m = ctStatusBits
	case keyTCPFlags:
		m = tcpFlagBits
	case keySport, keyDport:
		m = services
	case keyFibRPF:
		m = map[string]uint64{"false": 0, "true": 1, "missing": 0, "exists": 1}
	}
	n, ok := m[strings.ToLower(s)]
	return n, ok
}

var protoNumbers = map[string]uint64{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "dccp": 33, "ipv6": 41, "gre": 47,
	"esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "udplite": 136,
}

// Packet-side bits, as the kernel defines them.
var (
	ctStateBits = map[string]uint64{
		"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64,
	}
	ctStatusBits = map[string]uint64{
		"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8,
		"snat": 16, "dnat": 32, "dying": 512,
	}
	tcpFlagBits = map[string]uint64{
		"fin": 1, "syn": 2, "rst": 4, "psh": 8, "ack": 16, "urg": 32, "ecn": 64, "cwr": 128,
	}
)

// services are the port names nft may print with -S or users may write in
// iptables rules; others stay unknown.
var services = map[string]uint64{
	"ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80,
	"pop3": 110, "ntp": 123, "imap": 143, "snmp": 161, "ldap": 389, "https": 443,
	"submissions": 465, "submission": 587, "imaps": 993, "pop3s": 995,
	"mysql": 3306, "postgresql": 5432, "redis": 6379, "http-alt": 8080,
}
