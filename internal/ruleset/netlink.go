package ruleset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Kernel reads the nftables ruleset of the caller's network namespace
// straight from the kernel over nf_tables netlink: table flags (dormant),
// chains with their hooks, devices, priorities and policies, every rule's
// expressions (including the data of iptables-nft's xt matches) and every
// set with its elements, anonymous ones included. Nothing is lost to a
// printer: what the kernel evaluates is what Evaluate reads. Rule texts are
// rendered from the expressions; Live replaces them with nft's own text
// where nft can print it.
func Kernel() (*Ruleset, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("read ruleset over netlink: %w", err)
	}
	defer nl.Close()
	rs := &Ruleset{ifindex: map[string]int{}}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			rs.ifindex[i.Name] = i.Index
		}
	}
	tables := map[string]*Table{}
	key := func(fam byte, name string) string { return fmt.Sprintf("%d\x00%s", fam, name) }

	msgs, err := nfDump(nl, unix.NFT_MSG_GETTABLE)
	if err != nil {
		return nil, fmt.Errorf("read ruleset over netlink: tables: %w%s", err, permHint(err))
	}
	for _, m := range msgs {
		fam := m.Data[0]
		f, ok := nlFamilies[fam]
		if !ok {
			continue
		}
		t := &Table{Family: f, Source: SourceNFT, chains: map[string]*Chain{}, sets: map[string]*set{}, nlsets: map[string]*nlSet{}, kernel: true}
		err := attrs(m.Data[4:], func(ad *netlink.AttributeDecoder) {
			switch ad.Type() {
			case unix.NFTA_TABLE_NAME:
				t.Name = ad.String()
			case unix.NFTA_TABLE_FLAGS:
				t.Dormant = ad.Uint32()&unix.NFT_TABLE_F_DORMANT != 0
			case nftaTableHandle:
				t.Handle = ad.Uint64()
			}
		})
		if err != nil {
			return nil, fmt.Errorf("read ruleset over netlink: table: %w", err)
		}
		tables[key(fam, t.Name)] = t
		rs.tables = append(rs.tables, t)
	}

	msgs, err = nfDump(nl, unix.NFT_MSG_GETCHAIN)
	if err != nil {
		return nil, fmt.Errorf("read ruleset over netlink: chains: %w", err)
	}
	for _, m := range msgs {
		c := &Chain{}
		var table string
		var policy uint32 = nfAccept
		hasPolicy := false
		hooknum := ^uint32(0)
		err := attrs(m.Data[4:], func(ad *netlink.AttributeDecoder) {
			switch ad.Type() {
			case unix.NFTA_CHAIN_TABLE:
				table = ad.String()
			case unix.NFTA_CHAIN_NAME:
				c.Name = ad.String()
			case unix.NFTA_CHAIN_HANDLE:
				c.Handle = ad.Uint64()
			case unix.NFTA_CHAIN_TYPE:
				c.Type = ad.String()
			case unix.NFTA_CHAIN_POLICY:
				policy, hasPolicy = ad.Uint32(), true
			case unix.NFTA_CHAIN_HOOK:
				ad.Nested(func(h *netlink.AttributeDecoder) error {
					for h.Next() {
						switch h.Type() {
						case unix.NFTA_HOOK_HOOKNUM:
							hooknum = h.Uint32()
						case unix.NFTA_HOOK_PRIORITY:
							c.Priority = int(int32(h.Uint32()))
						case unix.NFTA_HOOK_DEV:
							c.Devices = append(c.Devices, h.String())
						case nftaHookDevs:
							h.Nested(func(d *netlink.AttributeDecoder) error {
								for d.Next() {
									c.Devices = append(c.Devices, d.String())
								}
								return nil
							})
						}
					}
					return nil
				})
			}
		})
		if err != nil {
			return nil, fmt.Errorf("read ruleset over netlink: chain: %w", err)
		}
		t := tables[key(m.Data[0], table)]
		if t == nil {
			continue
		}
		if hooknum != ^uint32(0) {
			c.Hook = nlHook(t.Family, hooknum)
			c.Policy = "accept"
			if hasPolicy && policy == nfDrop {
				c.Policy = "drop"
			}
		}
		t.addChain(c)
	}

	msgs, err = nfDump(nl, unix.NFT_MSG_GETRULE)
	if err != nil {
		return nil, fmt.Errorf("read ruleset over netlink: rules: %w", err)
	}
	for _, m := range msgs {
		fam := m.Data[0]
		var table, chain string
		r := &Rule{prog: &prog{}}
		err := attrs(m.Data[4:], func(ad *netlink.AttributeDecoder) {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				table = ad.String()
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				r.Handle = ad.Uint64()
			case unix.NFTA_RULE_USERDATA:
				r.Comment = ruleComment(ad.Bytes())
			case unix.NFTA_RULE_EXPRESSIONS:
				ad.Nested(func(l *netlink.AttributeDecoder) error {
					for l.Next() {
						l.Nested(func(e *netlink.AttributeDecoder) error {
							r.prog.exprs = append(r.prog.exprs, decodeExpr(fam, e))
							return nil
						})
					}
					return nil
				})
			}
		})
		if err != nil {
			return nil, fmt.Errorf("read ruleset over netlink: rule: %w", err)
		}
		t := tables[key(fam, table)]
		if t == nil {
			continue
		}
		c := t.chains[chain]
		if c == nil {
			c = t.addChain(&Chain{Name: chain})
		}
		r.prog.finish()
		for _, x := range r.prog.exprs {
			switch x := x.(type) {
			case *xtExpr:
				t.compat = true
				rs.ctmarkSet = rs.ctmarkSet || x.target && x.name == "CONNMARK"
			case *expr.Ct:
				rs.ctmarkSet = rs.ctmarkSet || x.SourceRegister && x.Key == expr.CtKeyMARK
			}
		}
		r.Text = clip(r.prog.String())
		if r.Comment != "" {
			r.Text += ` comment "` + clip(r.Comment) + `"`
		}
		c.Rules = append(c.Rules, r)
	}

	conn := &nftables.Conn{}
	for _, t := range rs.tables {
		nt := &nftables.Table{Name: t.Name, Family: nftables.TableFamily(nlFamilyByte(t.Family))}
		sets, err := conn.GetSets(nt)
		if err != nil {
			return nil, fmt.Errorf("read ruleset over netlink: sets of %s %s: %w", t.Family, t.Name, err)
		}
		for _, s := range sets {
			elems, err := conn.GetSetElements(s)
			if err != nil {
				return nil, fmt.Errorf("read ruleset over netlink: elements of set %s: %w", s.Name, err)
			}
			ns := &nlSet{name: s.Name, id: s.ID, interval: s.Interval, isMap: s.IsMap, verdict: s.IsMap && s.DataType.Name == "verdict", elems: elems}
			if s.Concatenation {
				for _, f := range nftables.ConcatSetTypeElements(s.KeyType) {
					ns.fields = append(ns.fields, int(f.Bytes))
				}
			}
			ns.index()
			t.nlsets[s.Name] = ns
		}
	}
	return rs, nil
}

func permHint(err error) string {
	if errors.Is(err, unix.EPERM) {
		return " (run as root)"
	}
	return ""
}

// Constants of <linux/netfilter/nf_tables.h> and <linux/netfilter.h> that
// x/sys/unix lacks.
const (
	nftaTableHandle = 4
	nftaHookDevs    = 4
	nfDrop          = 0
	nfAccept        = 1
)

var nlFamilies = map[byte]Family{
	unix.NFPROTO_INET: FamilyInet, unix.NFPROTO_IPV4: FamilyIP, unix.NFPROTO_IPV6: FamilyIP6,
	unix.NFPROTO_ARP: FamilyARP, unix.NFPROTO_BRIDGE: FamilyBridge, unix.NFPROTO_NETDEV: FamilyNetdev,
}

func nlFamilyByte(f Family) byte {
	for b, x := range nlFamilies {
		if x == f {
			return b
		}
	}
	return 0
}

// nlHook names a hook number; netdev (and inet's ingress) number theirs
// apart from the IP hooks.
func nlHook(f Family, n uint32) Hook {
	if f == FamilyNetdev {
		switch n {
		case unix.NF_NETDEV_INGRESS:
			return HookIngress
		case unix.NF_NETDEV_EGRESS:
			return HookEgress
		}
		return Hook(fmt.Sprintf("hook%d", n))
	}
	switch n {
	case unix.NF_INET_PRE_ROUTING:
		return HookPrerouting
	case unix.NF_INET_LOCAL_IN:
		return HookInput
	case unix.NF_INET_FORWARD:
		return HookForward
	case unix.NF_INET_LOCAL_OUT:
		return HookOutput
	case unix.NF_INET_POST_ROUTING:
		return HookPostrouting
	case 5: // NF_INET_INGRESS
		return HookIngress
	}
	return Hook(fmt.Sprintf("hook%d", n))
}

// nfDump runs one nf_tables dump over every family.
func nfDump(nl *netlink.Conn, msgType uint16) ([]netlink.Message, error) {
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | uint16(msgType)),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	msgs, err := nl.Execute(req)
	if err != nil {
		return nil, err
	}
	out := msgs[:0]
	for _, m := range msgs {
		if len(m.Data) >= 4 {
			out = append(out, m)
		}
	}
	return out, nil
}

func attrs(b []byte, fn func(*netlink.AttributeDecoder)) error {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		fn(ad)
	}
	return ad.Err()
}

// ruleComment reads nft's comment from a rule's user data: type-length-value
// records, the comment being type 0.
func ruleComment(b []byte) string {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		if len(b) < 2+n {
			break
		}
		if typ == 0 {
			return string(bytes.TrimRight(b[2:2+n], "\x00"))
		}
		b = b[2+n:]
	}
	return ""
}

// Expressions the nftables library does not decode, or whose raw data we
// read ourselves.
type (
	// xtExpr is an iptables-nft match or target with its info struct.
	xtExpr struct {
		target bool
		name   string
		rev    uint32
		info   []byte
	}
	// byteorderExpr converts a register between host and network order.
	byteorderExpr struct {
		sreg, dreg, op, len, size uint32
	}
	// opaqueExpr is an expression moat does not model: a match with unknown
	// outcome, or a load of an unknown value.
	opaqueExpr struct {
		name string
		dreg uint32 // the register it may write, when known
	}
)

func decodeExpr(fam byte, e *netlink.AttributeDecoder) any {
	var name string
	var data []byte
	for e.Next() {
		switch e.Type() {
		case unix.NFTA_EXPR_NAME:
			name = e.String()
		case unix.NFTA_EXPR_DATA:
			data = e.Bytes()
		}
	}
	switch name {
	case "match", "target":
		x := &xtExpr{target: name == "target"}
		_ = attrs(data, func(ad *netlink.AttributeDecoder) {
			switch ad.Type() {
			case 1: // NFTA_MATCH_NAME, NFTA_TARGET_NAME
				x.name = strings.TrimRight(ad.String(), "\x00")
			case 2:
				x.rev = ad.Uint32()
			case 3:
				x.info = bytes.Clone(ad.Bytes())
			}
		})
		return x
	case "byteorder":
		b := &byteorderExpr{}
		_ = attrs(data, func(ad *netlink.AttributeDecoder) {
			switch ad.Type() {
			case 1:
				b.sreg = ad.Uint32()
			case 2:
				b.dreg = ad.Uint32()
			case 3:
				b.op = ad.Uint32()
			case 4:
				b.len = ad.Uint32()
			case 5:
				b.size = ad.Uint32()
			}
		})
		return b
	case "notrack":
		return &expr.Notrack{}
	case "bitwise":
		// The library reads masks and xors only: a shift (NFTA_BITWISE_OP
		// other than bool) would pass for a mask of zero.
		var op, dreg uint32
		_ = attrs(data, func(ad *netlink.AttributeDecoder) {
			switch ad.Type() {
			case unix.NFTA_BITWISE_DREG:
				dreg = ad.Uint32()
			case 6: // NFTA_BITWISE_OP
				op = ad.Uint32()
			}
		})
		if op != 0 {
			return &opaqueExpr{name: "bitwise shift", dreg: dreg}
		}
	case "ct":
		// The library drops NFTA_CT_SREG, which would read `ct mark set`
		// as a load; the direction is one byte.
		c := &expr.Ct{}
		_ = attrs(data, func(ad *netlink.AttributeDecoder) {
			switch ad.Type() {
			case unix.NFTA_CT_DREG:
				c.Register = ad.Uint32()
			case unix.NFTA_CT_KEY:
				c.Key = expr.CtKey(ad.Uint32())
			case unix.NFTA_CT_DIRECTION:
				if b := ad.Bytes(); len(b) > 0 {
					c.Direction = uint32(b[0])
				}
			case unix.NFTA_CT_SREG:
				c.Register, c.SourceRegister = ad.Uint32(), true
			}
		})
		return c
	}
	x := newExpr(name)
	if x == nil {
		return &opaqueExpr{name: name, dreg: dregOf(data)}
	}
	if err := expr.Unmarshal(fam, data, x); err != nil {
		return &opaqueExpr{name: name, dreg: dregOf(data)}
	}
	if imm, ok := x.(*expr.Immediate); ok && imm.Register == unix.NFT_REG_VERDICT && len(imm.Data) == 0 {
		v := &expr.Verdict{}
		if err := expr.Unmarshal(fam, data, v); err != nil {
			return &opaqueExpr{name: name}
		}
		return v
	}
	return x
}

// dregOf guesses the destination register of an expression we do not
// decode: most expressions keep it in attribute 1 (NFTA_*_DREG), so
// whatever it loads is marked unknown rather than left stale.
func dregOf(data []byte) uint32 {
	var d uint32
	_ = attrs(data, func(ad *netlink.AttributeDecoder) {
		if ad.Type() == 1 && len(ad.Bytes()) == 4 {
			d = ad.Uint32()
		}
	})
	return d
}

// newExpr returns an empty expression of the nftables library for name.
func newExpr(name string) expr.Any {
	switch name {
	case "ct":
		return &expr.Ct{}
	case "range":
		return &expr.Range{}
	case "meta":
		return &expr.Meta{}
	case "cmp":
		return &expr.Cmp{}
	case "counter":
		return &expr.Counter{}
	case "objref":
		return &expr.Objref{}
	case "payload":
		return &expr.Payload{}
	case "lookup":
		return &expr.Lookup{}
	case "immediate":
		return &expr.Immediate{}
	case "bitwise":
		return &expr.Bitwise{}
	case "redir":
		return &expr.Redir{}
	case "nat":
		return &expr.NAT{}
	case "limit":
		return &expr.Limit{}
	case "quota":
		return &expr.Quota{}
	case "dynset":
		return &expr.Dynset{}
	case "log":
		return &expr.Log{}
	case "connlimit":
		return &expr.Connlimit{}
	case "queue":
		return &expr.Queue{}
	case "reject":
		return &expr.Reject{}
	case "masq":
		return &expr.Masq{}
	case "fib":
		return &expr.Fib{}
	case "synproxy":
		return &expr.SynProxy{}
	}
	return nil
}
