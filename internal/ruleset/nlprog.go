package ruleset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// prog is a rule as the kernel holds it: expressions that load packet data
// into registers, compare it, and end in a verdict. Evaluating it the way
// the kernel does, on a synthetic packet whose unknown bits stay unknown,
// needs no translation of nft's syntax and so cannot drift from it.
type prog struct {
	exprs []any
	act   action // the verdict when every match holds; actVmap: see vmapAt
	// vmapAt is the index of a verdict-map lookup, or -1.
	vmapAt int
}

// nlSet is a set or map read over netlink.
type nlSet struct {
	name     string
	id       uint32
	interval bool
	isMap    bool
	verdict  bool
	fields   []int // concatenation: the length of each field
	elems    []nftables.SetElement

	// Built once (index): exact keys of a plain set, the elements of an
	// interval set in key order, and whether any element has a range end.
	exact  map[string]*nftables.SetElement
	sorted []*nftables.SetElement
	ranged bool
}

// index prepares s for lookups: a ban set holds 100,000 addresses and the
// audit asks about every listener at every address.
func (s *nlSet) index() {
	for i := range s.elems {
		if s.elems[i].KeyEnd != nil {
			s.ranged = true
		}
	}
	switch {
	case s.ranged:
	case s.interval:
		s.sorted = make([]*nftables.SetElement, 0, len(s.elems))
		for i := range s.elems {
			s.sorted = append(s.sorted, &s.elems[i])
		}
		slices.SortStableFunc(s.sorted, func(a, b *nftables.SetElement) int {
			if c := bytes.Compare(a.Key, b.Key); c != 0 {
				return c
			}
			// At one key, an end closes the range before and a start
			// opens the next.
			switch {
			case a.IntervalEnd && !b.IntervalEnd:
				return -1
			case !a.IntervalEnd && b.IntervalEnd:
				return 1
			}
			return 0
		})
	default:
		s.exact = make(map[string]*nftables.SetElement, len(s.elems))
		for i := range s.elems {
			if _, dup := s.exact[string(s.elems[i].Key)]; !dup {
				s.exact[string(s.elems[i].Key)] = &s.elems[i]
			}
		}
	}
}

// finish decides the rule's action from its last verdict-like expression.
func (p *prog) finish() {
	p.vmapAt = -1
	for i, x := range p.exprs {
		switch x := x.(type) {
		case *expr.Verdict:
			p.act = nlVerdict(x)
		case *expr.Reject:
			p.act = action{kind: actDrop}
		case *expr.NAT:
			p.act = action{kind: actNAT, rewrite: x.Type == expr.NATTypeDestNAT}
		case *expr.Masq:
			p.act = action{kind: actNAT}
		case *expr.Redir:
			p.act = action{kind: actNAT, rewrite: true}
		case *expr.Queue, *expr.SynProxy:
			p.act = action{kind: actUnknown}
		case *xtExpr:
			if x.target {
				p.act = xtTarget(x.name)
			}
		case *expr.Lookup:
			if x.IsDestRegSet && x.DestRegister == unix.NFT_REG_VERDICT {
				p.act, p.vmapAt = action{kind: actVmap}, i
			}
		}
	}
}

// unconditional reports whether the rule matches every packet: nothing in
// it but counters, logs and its verdict.
func (p *prog) unconditional() bool {
	for _, x := range p.exprs {
		switch x := x.(type) {
		case *expr.Counter, *expr.Log, *expr.Verdict, *expr.Reject:
		case *xtExpr:
			if !x.target && x.name != "comment" {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func nlVerdict(v *expr.Verdict) action {
	switch v.Kind {
	case expr.VerdictAccept:
		return action{kind: actAccept}
	case expr.VerdictDrop:
		return action{kind: actDrop}
	case expr.VerdictReturn:
		return action{kind: actReturn}
	case expr.VerdictJump:
		return action{kind: actJump, target: v.Chain}
	case expr.VerdictGoto:
		return action{kind: actGoto, target: v.Chain}
	case expr.VerdictContinue:
		return action{kind: actNone}
	}
	return action{kind: actUnknown}
}

// regs is the register file: the verdict register (16 bytes) and sixteen
// 32-bit data registers, each byte with a mask of the bits we know.
type regs struct {
	val, known [80]byte
}

// regOffset maps a register number (NFT_REG_1..4 or NFT_REG32_00..15) to a
// byte offset, as nft_parse_register does.
// maxRegBytes is the size of the data registers: no load or compare is
// longer (a larger one in hostile input is judged unknown).
const maxRegBytes = 64

func regOffset(r uint32) (int, bool) {
	var idx uint32
	switch {
	case r >= 1 && r <= 4:
		idx = r * 4
	case r >= 8 && r <= 23:
		idx = r - 8 + 4
	default:
		return 0, false
	}
	return int(idx) * 4, true
}

func (g *regs) load(r uint32, n int) (val, known []byte) {
	off, ok := regOffset(r)
	if !ok || off+n > len(g.val) {
		return make([]byte, n), make([]byte, n)
	}
	return g.val[off : off+n], g.known[off : off+n]
}

// store writes n bytes; the kernel zeroes the rest of the last 32-bit word.
func (g *regs) store(r uint32, val, known []byte) {
	off, ok := regOffset(r)
	if !ok {
		return
	}
	n := (len(val) + 3) &^ 3
	if off+n > len(g.val) {
		return
	}
	for i := range n {
		g.val[off+i], g.known[off+i] = 0, 0xff
	}
	copy(g.val[off:], val)
	copy(g.known[off:], known)
}

func (g *regs) unknown(r uint32, n int) {
	off, ok := regOffset(r)
	if !ok {
		return
	}
	for i := off; i < off+((n+3)&^3) && i < len(g.val); i++ {
		g.val[i], g.known[i] = 0, 0
	}
}

func allKnown(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }

// compare is memcmp over partly known bytes: the sign, or ok false when an
// unknown bit decides.
func compare(a, known, b []byte) (int, bool) {
	for i := range b {
		if i >= len(a) {
			return 0, false
		}
		if known[i] == 0xff {
			if a[i] != b[i] {
				if a[i] < b[i] {
					return -1, true
				}
				return 1, true
			}
			continue
		}
		// Partly known: only a difference in a known high bit can decide.
		for bit := 7; bit >= 0; bit-- {
			m := byte(1) << bit
			if known[i]&m == 0 {
				return 0, false
			}
			if a[i]&m != b[i]&m {
				if a[i]&m == 0 {
					return -1, true
				}
				return 1, true
			}
		}
	}
	return 0, true
}

// equal compares partly known bytes with b: no as soon as one known bit
// differs.
func equal(a, known, b []byte) tri {
	res := yes
	for i := range b {
		if i >= len(a) {
			return maybe
		}
		if (a[i]^b[i])&known[i] != 0 {
			return no
		}
		if known[i] != 0xff {
			res = maybe
		}
	}
	return res
}

func cmpTri(op expr.CmpOp, a, known, b []byte) tri {
	if op == expr.CmpOpEq || op == expr.CmpOpNeq {
		r := equal(a, known, b)
		if op == expr.CmpOpNeq {
			r = r.not()
		}
		return r
	}
	c, ok := compare(a, known, b)
	if !ok {
		return maybe
	}
	switch op {
	case expr.CmpOpLt:
		return triOf(c < 0)
	case expr.CmpOpLte:
		return triOf(c <= 0)
	case expr.CmpOpGt:
		return triOf(c > 0)
	case expr.CmpOpGte:
		return triOf(c >= 0)
	}
	return maybe
}

// inRange reports lo <= a <= hi over partly known bytes.
func inRange(a, known, lo, hi []byte) tri {
	c1, ok1 := compare(a, known, lo)
	c2, ok2 := compare(a, known, hi)
	if ok1 && c1 < 0 || ok2 && c2 > 0 {
		return no
	}
	if ok1 && ok2 {
		return yes
	}
	return maybe
}

// runProg evaluates rule r of chain c: whether it matches, and what it then
// leads to. Marks and notrack change the packet for later rules and chains.
func (e *evaluator) runProg(c *Chain, r *Rule, depth int) (tri, result) {
	p := r.prog
	var g regs
	m := yes
	for i, x := range p.exprs {
		if i == p.vmapAt {
			lk := x.(*expr.Lookup)
			return m, e.progVmap(c, r, lk, &g, depth)
		}
		res := e.step(x, &g, c.Table, m)
		switch res {
		case no:
			return no, result{}
		case maybe:
			m = maybe
		}
	}
	if m == no {
		return no, result{}
	}
	return m, e.effect(p.act, c, r, depth)
}

// step runs one expression; its answer is whether the rule goes on (a match
// that fails answers no). sure is whether every match so far held.
func (e *evaluator) step(x any, g *regs, t *Table, sure tri) tri {
	v := &e.view
	switch x := x.(type) {
	case *expr.Meta:
		if x.SourceRegister {
			val, known := g.load(x.Register, 4)
			switch x.Key {
			case expr.MetaKeyMARK:
				e.setMark(&v.mark, &v.markKnown, val, known, sure)
			}
			return yes
		}
		val, known := e.metaValue(x.Key, t)
		g.store(x.Register, val, known)
	case *expr.Ct:
		if x.SourceRegister {
			// Like nft_ct_set_eval: with no entry yet (ingress, raw
			// prerouting) or an untracked packet there is nothing to
			// write to, and the rule goes on as if the set were not there.
			if v.noCT || v.stateKnown && v.state == ctStateBits["untracked"] {
				return yes
			}
			val, known := g.load(x.Register, 4)
			if !v.stateKnown {
				known = make([]byte, 4) // maybe untracked: the set may not happen
			}
			if x.Key == expr.CtKeyMARK {
				e.setMark(&v.ctmark, &v.ctmarkKnown, val, known, sure)
			}
			return yes
		}
		val, known, ok := e.ctValue(x.Key, x.Direction)
		if !ok {
			return no // no conntrack entry: the kernel breaks the rule
		}
		g.store(x.Register, val, known)
	case *expr.Payload:
		if x.OperationType != expr.PayloadLoad {
			return yes // a rewrite of the packet: no bearing on the verdict
		}
		val, known, ok := e.payload(x.Base, int(x.Offset), int(x.Len))
		if !ok {
			return no // beyond the header: the kernel breaks the rule
		}
		g.store(x.DestRegister, val, known)
	case *expr.Immediate:
		g.store(x.Register, x.Data, allKnown(len(x.Data)))
	case *expr.Bitwise:
		if x.Len > maxRegBytes {
			return maybe
		}
		val, known := g.load(x.SourceRegister, int(x.Len))
		out, outKnown := make([]byte, x.Len), make([]byte, x.Len)
		for i := range int(x.Len) {
			var mask, xor byte
			if i < len(x.Mask) {
				mask = x.Mask[i]
			}
			if i < len(x.Xor) {
				xor = x.Xor[i]
			}
			out[i] = val[i]&mask ^ xor
			outKnown[i] = ^mask | known[i]
		}
		g.store(x.DestRegister, out, outKnown)
	case *byteorderExpr:
		if x.len > maxRegBytes {
			return maybe
		}
		val, known := g.load(x.sreg, int(x.len))
		out, outKnown := slices.Clone(val), slices.Clone(known)
		if x.size > 1 {
			for i := 0; i+int(x.size) <= int(x.len); i += int(x.size) {
				slices.Reverse(out[i : i+int(x.size)])
				slices.Reverse(outKnown[i : i+int(x.size)])
			}
		}
		g.store(x.dreg, out, outKnown)
	case *expr.Cmp:
		if len(x.Data) > maxRegBytes {
			return maybe
		}
		val, known := g.load(x.Register, len(x.Data))
		return cmpTri(x.Op, val, known, x.Data)
	case *expr.Range:
		if len(x.FromData) > maxRegBytes {
			return maybe
		}
		val, known := g.load(x.Register, len(x.FromData))
		r := inRange(val, known, x.FromData, x.ToData)
		if x.Op == expr.CmpOpNeq {
			r = r.not()
		}
		return r
	case *expr.Lookup:
		s := t.nlset(x.SetName, x.SetID)
		if s == nil {
			return maybe
		}
		hit, el := s.lookupAt(g, x.SourceRegister)
		if x.IsDestRegSet {
			if hit == yes && el != nil && len(el.Val) > 0 {
				g.store(x.DestRegister, el.Val, allKnown(len(el.Val)))
			} else {
				g.unknown(x.DestRegister, 16)
			}
		}
		if x.Invert {
			hit = hit.not()
		}
		return hit
	case *expr.Fib:
		val, known := e.fib(x)
		g.store(x.Register, val, known)
	case *expr.Limit:
		return triOf(!x.Over)
	case *expr.Connlimit:
		return triOf(x.Flags&1 == 0)
	case *expr.Quota:
		return triOf((x.Consumed >= x.Bytes) == x.Over)
	case *expr.Dynset:
		res := yes
		for _, sub := range x.Exprs {
			switch sub := sub.(type) {
			case *expr.Limit:
				if sub.Over {
					res = maybe // over the limit only on later packets, but the element may exist
				}
			case *expr.Counter:
			default:
				res = maybe
			}
		}
		return res
	case *expr.Notrack:
		// Only before conntrack: a packet that has an entry keeps it.
		switch {
		case v.noCT && sure == yes && !e.forked:
			v.state, v.stateKnown = ctStateBits["untracked"], true
		case v.noCT || !v.stateKnown:
			v.stateKnown = false
		}
	case *expr.Objref:
		switch x.Type {
		case unix.NFT_OBJECT_COUNTER, unix.NFT_OBJECT_CT_HELPER, unix.NFT_OBJECT_CT_TIMEOUT, unix.NFT_OBJECT_SECMARK, unix.NFT_OBJECT_CT_EXPECT:
		default:
			return maybe
		}
	case *xtExpr:
		if !x.target {
			return e.xtMatch(x)
		}
	case *opaqueExpr:
		// Its destination register is not always where dregOf looks:
		// forget every register rather than compare a stale value.
		*g = regs{}
		return maybe
	case *expr.Counter, *expr.Log, *expr.Verdict, *expr.Reject, *expr.NAT, *expr.Masq, *expr.Redir, *expr.Queue, *expr.SynProxy:
	default:
		return maybe
	}
	return yes
}

// setMark applies `meta mark set` or `ct mark set`: exact on the one path
// the evaluator has followed so far, unknown once paths have split.
func (e *evaluator) setMark(mark *uint32, known *bool, val, kn []byte, sure tri) {
	if sure == yes && !e.forked && bytes.Equal(kn, allKnown(4)) {
		*mark, *known = binary.NativeEndian.Uint32(val), true
		return
	}
	*known = false
}

func (e *evaluator) metaValue(k expr.MetaKey, t *Table) ([]byte, []byte) {
	v := &e.view
	ne := binary.NativeEndian
	u8 := func(b byte, ok bool) ([]byte, []byte) {
		if !ok {
			return []byte{0}, []byte{0}
		}
		return []byte{b}, allKnown(1)
	}
	u32 := func(x uint32, ok bool) ([]byte, []byte) {
		b := ne.AppendUint32(nil, x)
		if !ok {
			return b, make([]byte, 4)
		}
		return b, allKnown(4)
	}
	ifname := func(name string, ok bool) ([]byte, []byte) {
		b := make([]byte, 16)
		copy(b, name)
		if !ok {
			return b, make([]byte, 16)
		}
		return b, allKnown(16)
	}
	switch k {
	case expr.MetaKeyIIFNAME:
		return ifname(v.iif, v.iifKnown)
	case expr.MetaKeyOIFNAME:
		return ifname(v.oif, v.oifKnown)
	case expr.MetaKeyIIF:
		return u32(uint32(v.iifIndex), v.iifIndex != 0)
	case expr.MetaKeyOIF:
		return u32(0, v.oifKnown && v.oif == "")
	case expr.MetaKeyL4PROTO:
		return u8(v.l4, v.l4Known)
	case expr.MetaKeyNFPROTO:
		if t != nil && t.Family == FamilyNetdev {
			return u8(unix.NFPROTO_NETDEV, true)
		}
		return u8(byte(nfproto(v.v6)), true)
	case expr.MetaKeyPROTOCOL:
		return binary.BigEndian.AppendUint16(nil, uint16(etherProto(v.v6))), allKnown(2)
	case expr.MetaKeyMARK:
		return u32(v.mark, v.markKnown)
	case expr.MetaKeyPKTTYPE:
		return u8(unix.PACKET_HOST, true)
	}
	return make([]byte, 16), make([]byte, 16)
}

// ctValue loads a conntrack key; ok is false when the packet has no
// conntrack entry yet (ingress, or raw priority before conntrack), where
// only ct state answers (invalid).
func (e *evaluator) ctValue(k expr.CtKey, dir uint32) (val, known []byte, ok bool) {
	v := &e.view
	ne := binary.NativeEndian
	u32 := func(x uint32, ok bool) ([]byte, []byte, bool) {
		b := ne.AppendUint32(nil, x)
		if !ok {
			return b, make([]byte, 4), true
		}
		return b, allKnown(4), true
	}
	if k == expr.CtKeySTATE {
		return u32(uint32(v.state), v.stateKnown)
	}
	if v.noCT {
		return nil, nil, false
	}
	if v.state == ctStateBits["untracked"] && v.stateKnown {
		return nil, nil, false
	}
	switch k {
	case expr.CtKeySTATUS:
		return u32(uint32(v.status), v.stateKnown)
	case expr.CtKeyMARK:
		return u32(v.ctmark, v.ctmarkKnown)
	case expr.CtKeyDIRECTION:
		return []byte{0}, allKnown(1), true
	case expr.CtKeyPROTOCOL:
		if !v.l4Known {
			return []byte{0}, []byte{0}, true
		}
		return []byte{v.l4}, allKnown(1), true
	case unix.NFT_CT_L3PROTOCOL:
		return []byte{byte(nfproto(v.v6))}, allKnown(1), true
	}
	return make([]byte, 16), make([]byte, 16), true
}

// payload reads the synthetic packet: the fields the view knows, the rest
// unknown. ok is false for a read the kernel would refuse (no transport
// header of that kind).
func (e *evaluator) payload(base expr.PayloadBase, off, n int) (val, known []byte, ok bool) {
	v := &e.view
	if n < 0 || n > maxRegBytes || off < 0 {
		n = 0
	}
	var hdr, hk []byte
	switch base {
	case expr.PayloadBaseNetworkHeader:
		hdr, hk = v.networkHeader()
	case expr.PayloadBaseTransportHeader:
		if !v.l4Known {
			return make([]byte, n), make([]byte, n), true
		}
		hdr, hk = v.transportHeader()
	default:
		return make([]byte, n), make([]byte, n), true
	}
	if hdr == nil || off+n > len(hdr) {
		return make([]byte, n), make([]byte, n), true
	}
	return slices.Clone(hdr[off : off+n]), slices.Clone(hk[off : off+n]), true
}

func (v *view) networkHeader() ([]byte, []byte) {
	putAddr := func(h, k []byte, at int, a netip.Addr) {
		if !a.IsValid() || a.Is4() != !v.v6 {
			return
		}
		s := a.AsSlice()
		copy(h[at:], s)
		copy(k[at:], allKnown(len(s)))
	}
	if !v.v6 {
		h, k := make([]byte, 20), make([]byte, 20)
		h[0], k[0] = 0x45, 0xff
		if v.l4Known {
			h[9], k[9] = v.l4, 0xff
		}
		putAddr(h, k, 12, v.saddr)
		putAddr(h, k, 16, v.daddr)
		return h, k
	}
	h, k := make([]byte, 40), make([]byte, 40)
	h[0], k[0] = 0x60, 0xf0
	if v.l4Known {
		h[6], k[6] = v.l4, 0xff
	}
	putAddr(h, k, 8, v.saddr)
	putAddr(h, k, 24, v.daddr)
	return h, k
}

func (v *view) transportHeader() ([]byte, []byte) {
	var h, k []byte
	switch v.l4 {
	case unix.IPPROTO_TCP:
		h, k = make([]byte, 20), make([]byte, 20)
		if v.flagsKnow {
			h[13], k[13] = byte(v.tcpFlags), 0xff
		}
	case unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP:
		h, k = make([]byte, 8), make([]byte, 8)
	default:
		return nil, nil
	}
	if v.sport != 0 {
		binary.BigEndian.PutUint16(h[0:], v.sport)
		k[0], k[1] = 0xff, 0xff
	}
	if v.dport != 0 {
		binary.BigEndian.PutUint16(h[2:], v.dport)
		k[2], k[3] = 0xff, 0xff
	}
	return h, k
}

func (e *evaluator) fib(f *expr.Fib) ([]byte, []byte) {
	v := &e.view
	ne := binary.NativeEndian
	switch {
	case f.ResultADDRTYPE && f.FlagDADDR && !f.FlagSADDR:
		typ := uint32(unix.RTN_UNICAST)
		if v.local {
			typ = unix.RTN_LOCAL
		}
		return ne.AppendUint32(nil, typ), allKnown(4)
	case f.ResultADDRTYPE && f.FlagSADDR && !f.FlagDADDR:
		if v.saddr.IsValid() && v.saddr.IsLoopback() {
			return ne.AppendUint32(nil, unix.RTN_LOCAL), allKnown(4)
		}
		return ne.AppendUint32(nil, unix.RTN_UNICAST), allKnown(4)
	case f.FlagPRESENT:
		return []byte{1}, allKnown(1) // the reverse path exists
	case f.ResultOIF && f.FlagSADDR:
		if v.iifIndex != 0 {
			return ne.AppendUint32(nil, uint32(v.iifIndex)), allKnown(4)
		}
		// Unknown index, but it exists: not zero.
		return ne.AppendUint32(nil, 0), make([]byte, 4)
	case f.ResultOIFNAME && f.FlagSADDR:
		b := make([]byte, 16)
		copy(b, v.iif)
		if v.iifKnown {
			return b, allKnown(16)
		}
		return b, make([]byte, 16)
	}
	return make([]byte, 16), make([]byte, 16)
}

func (t *Table) nlset(name string, id uint32) *nlSet {
	if s, ok := t.nlsets[name]; ok && name != "" {
		return s
	}
	for _, s := range t.nlsets {
		if s.id == id && name == "" {
			return s
		}
	}
	return nil
}

func (s *nlSet) keyLen() int {
	for _, el := range s.elems {
		return min(len(el.Key), maxRegBytes)
	}
	return 0
}

// lookupAt finds the value in register sreg in s: whether it is there, and
// the element when one is known to hold it.
func (s *nlSet) lookupAt(g *regs, sreg uint32) (tri, *nftables.SetElement) {
	cands := s.candidates(g, sreg)
	for _, c := range cands {
		if c.m == yes {
			return yes, c.el
		}
	}
	if len(cands) > 0 {
		return maybe, nil
	}
	return no, nil
}

type candidate struct {
	m  tri
	el *nftables.SetElement
}

// candidates lists the elements that hold or may hold the value in sreg.
func (s *nlSet) candidates(g *regs, sreg uint32) []candidate {
	n := s.keyLen()
	if n == 0 {
		return nil
	}
	val, known := g.load(sreg, n)
	if s.exact == nil && s.sorted == nil && !s.ranged {
		s.index() // a set built by hand (tests)
	}
	full := bytes.Equal(known, allKnown(len(known)))
	var out []candidate
	switch {
	case s.ranged:
		for i := range s.elems {
			el := &s.elems[i]
			if el.IntervalEnd {
				continue
			}
			end := el.KeyEnd
			if end == nil {
				end = el.Key
			}
			if m := s.fieldRange(val, known, el.Key, end); m != no {
				out = append(out, candidate{m, el})
			}
		}
	case s.interval:
		out = s.intervalCandidates(val, known)
	case full:
		if el, ok := s.exact[string(val)]; ok {
			out = append(out, candidate{yes, el})
		}
	default:
		for i := range s.elems {
			el := &s.elems[i]
			if m := equal(val, known, el.Key); m != no {
				out = append(out, candidate{m, el})
			}
		}
	}
	return out
}

// fieldRange matches a concatenation element field by field, as the
// pipapo set does: each field within its own [start, end].
func (s *nlSet) fieldRange(val, known, lo, hi []byte) tri {
	fields := s.fields
	if len(fields) == 0 {
		return inRange(val, known, lo, hi)
	}
	res, off := yes, 0
	for _, f := range fields {
		n := (f + 3) &^ 3
		if off+n > len(lo) || off+n > len(hi) || off+n > len(val) {
			return maybe
		}
		switch inRange(val[off:off+n], known[off:off+n], lo[off:off+n], hi[off:off+n]) {
		case no:
			return no
		case maybe:
			res = maybe
		}
		off += n
	}
	return res
}

// intervalCandidates reads an rbtree interval set: start elements, and end
// elements (flagged) holding the first value past a range.
func (s *nlSet) intervalCandidates(val, known []byte) []candidate {
	els := s.sorted
	if bytes.Equal(known, allKnown(len(known))) {
		// The last element at or below the value decides.
		i, _ := slices.BinarySearchFunc(els, val, func(el *nftables.SetElement, v []byte) int {
			if bytes.Compare(el.Key, v) <= 0 {
				return -1
			}
			return 1
		})
		if i > 0 && !els[i-1].IntervalEnd {
			return []candidate{{yes, els[i-1]}}
		}
		return nil
	}
	var out []candidate
	for i, el := range els {
		if el.IntervalEnd {
			continue
		}
		hi := []byte(nil)
		if i+1 < len(els) {
			hi = els[i+1].Key
		}
		c, ok := compare(val, known, el.Key)
		if ok && c < 0 {
			continue
		}
		if hi != nil {
			if c2, ok2 := compare(val, known, hi); ok2 && c2 >= 0 {
				continue
			}
		}
		out = append(out, candidate{maybe, el})
	}
	return out
}

// progVmap evaluates a verdict-map lookup reached with the rule's matches
// at m.
func (e *evaluator) progVmap(c *Chain, r *Rule, lk *expr.Lookup, g *regs, depth int) result {
	var res result
	here := cause{chain: c, rule: r}
	s := c.Table.nlset(lk.SetName, lk.SetID)
	if s == nil {
		res.add(outAccept|outDrop|outNext, here)
		e.noteUnsure(c, r)
		return res
	}
	cands := s.candidates(g, lk.SourceRegister)
	sure := false
	for _, cd := range cands {
		act := action{kind: actUnknown}
		if vd := elemVerdict(cd.el); vd != nil {
			act = nlVerdict(vd)
		}
		eff := e.effect(act, c, r, depth)
		res.merge(eff)
		if cd.m == yes {
			res.setFall(eff.fall, eff.fallWhy)
			sure = true
			break
		}
		e.noteUnsure(c, r)
	}
	if !sure {
		res.add(outNext, here)
	}
	return res
}

// String renders the rule's expressions for reports, where nft's own text
// is not at hand.
func (p *prog) String() string {
	var parts []string
	for _, x := range p.exprs {
		switch x := x.(type) {
		case *expr.Meta:
			parts = append(parts, fmt.Sprintf("meta %s", metaName(x.Key)))
		case *expr.Payload:
			parts = append(parts, fmt.Sprintf("payload %d+%d/%d", x.Base, x.Offset, x.Len))
		case *expr.Ct:
			parts = append(parts, fmt.Sprintf("ct key %d", x.Key))
		case *expr.Cmp:
			parts = append(parts, fmt.Sprintf("cmp %x", x.Data))
		case *expr.Lookup:
			parts = append(parts, "@"+x.SetName)
		case *expr.Verdict:
			a := nlVerdict(x)
			parts = append(parts, strings.TrimSpace(actName(a)+" "+a.target))
		case *xtExpr:
			kind := "match"
			if x.target {
				kind = "target"
			}
			parts = append(parts, fmt.Sprintf("xt %s %s", kind, x.name))
		case *opaqueExpr:
			parts = append(parts, x.name)
		case *expr.Counter:
		default:
			parts = append(parts, strings.TrimPrefix(fmt.Sprintf("%T", x), "*expr."))
		}
	}
	return strings.ToLower(strings.Join(parts, " "))
}

func metaName(k expr.MetaKey) string {
	switch k {
	case expr.MetaKeyIIFNAME:
		return "iifname"
	case expr.MetaKeyOIFNAME:
		return "oifname"
	case expr.MetaKeyL4PROTO:
		return "l4proto"
	case expr.MetaKeyNFPROTO:
		return "nfproto"
	case expr.MetaKeyMARK:
		return "mark"
	}
	return fmt.Sprint(uint32(k))
}

func actName(a action) string {
	switch a.kind {
	case actAccept:
		return "accept"
	case actDrop:
		return "drop"
	case actReturn:
		return "return"
	case actJump:
		return "jump"
	case actGoto:
		return "goto"
	case actNone:
		return "continue"
	}
	return "verdict"
}

// elemVerdict reads a verdict map element's data: the library lists it as
// the raw nested NFTA_VERDICT_* attributes.
func elemVerdict(el *nftables.SetElement) *expr.Verdict {
	if el.VerdictData != nil {
		return el.VerdictData
	}
	var v *expr.Verdict
	_ = attrs(el.Val, func(ad *netlink.AttributeDecoder) {
		if v == nil {
			v = &expr.Verdict{}
		}
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			v.Kind = expr.VerdictKind(int32(ad.Uint32()))
		case unix.NFTA_VERDICT_CHAIN:
			v.Chain = ad.String()
		}
	})
	return v
}
