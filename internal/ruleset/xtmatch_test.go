package ruleset

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func xtView(v6 bool, dport uint16) view {
	v := view{v6: v6, l4: 6, l4Known: true, sport: 40000, dport: dport, state: ctStateBits["new"], stateKnown: true,
		tcpFlags: tcpFlagBits["syn"], flagsKnow: true, local: true,
		saddr: netip.MustParseAddr("198.51.100.7"), daddr: netip.MustParseAddr("203.0.113.1")}
	if v6 {
		v.saddr, v.daddr = netip.MustParseAddr("2001:db8:1::7"), netip.MustParseAddr("2001:db8:2::1")
	}
	return v
}

// The info structs as iptables-nft writes them, decoded as the kernel does.
func TestXTMatches(t *testing.T) {
	ne := binary.NativeEndian
	multiport := func(rev uint32, flags byte, ports []uint16, ranges []byte, invert bool) *xtExpr {
		b := make([]byte, 48)
		b[0], b[1] = flags, byte(len(ports))
		for i, p := range ports {
			ne.PutUint16(b[2+2*i:], p)
		}
		copy(b[32:], ranges)
		if invert {
			b[47] = 1
		}
		return &xtExpr{name: "multiport", rev: rev, info: b}
	}
	conntrack := func(rev uint32, state uint16, inv bool) *xtExpr {
		b := make([]byte, 164)
		ne.PutUint16(b[146:], 1) // XT_CONNTRACK_STATE
		if inv {
			ne.PutUint16(b[148:], 1)
		}
		if rev == 1 {
			b[150] = byte(state)
		} else {
			ne.PutUint16(b[150:], state)
		}
		return &xtExpr{name: "conntrack", rev: rev, info: b}
	}
	iprange := func(v6 bool, lo, hi string, dst, inv bool) *xtExpr {
		b := make([]byte, 68)
		at, flag := 0, byte(0x01)
		if dst {
			at, flag = 32, 0x02
		}
		copy(b[at:], netip.MustParseAddr(lo).AsSlice())
		copy(b[at+16:], netip.MustParseAddr(hi).AsSlice())
		b[64] = flag
		if inv {
			b[64] |= flag << 4
		}
		return &xtExpr{name: "iprange", rev: 1, info: b}
	}
	addrtype := func(src, dst uint16, flags uint32) *xtExpr {
		b := make([]byte, 8)
		ne.PutUint16(b[0:], src)
		ne.PutUint16(b[2:], dst)
		ne.PutUint32(b[4:], flags)
		return &xtExpr{name: "addrtype", rev: 1, info: b}
	}
	state := func(mask uint32) *xtExpr {
		return &xtExpr{name: "state", info: ne.AppendUint32(nil, mask)}
	}
	tests := []struct {
		name string
		x    *xtExpr
		v    view
		want tri
	}{
		{"multiport hit", multiport(1, 1, []uint16{6379, 8080}, nil, false), xtView(false, 8080), yes},
		{"multiport miss", multiport(1, 1, []uint16{6379, 8080}, nil, false), xtView(false, 22), no},
		{"multiport range", multiport(1, 1, []uint16{9000, 9001}, []byte{1}, false), xtView(false, 9001), yes},
		{"multiport inverted", multiport(1, 1, []uint16{22}, nil, true), xtView(false, 22), no},
		{"multiport rev 0 source", multiport(0, 0, []uint16{40000}, nil, false), xtView(false, 22), yes},
		{"conntrack new", conntrack(3, 8, false), xtView(false, 22), yes},
		{"conntrack established", conntrack(1, 2|4, false), xtView(false, 22), no},
		{"conntrack ! new", conntrack(2, 8, true), xtView(false, 22), no},
		{"state new", state(8), xtView(false, 22), yes},
		{"state established", state(2), xtView(false, 22), no},
		{"iprange dst v4", iprange(false, "203.0.113.1", "203.0.113.1", true, false), xtView(false, 22), yes},
		{"iprange dst v4 miss", iprange(false, "203.0.113.2", "203.0.113.9", true, false), xtView(false, 22), no},
		{"iprange src v6 inverted", iprange(true, "2001:db8:1::1", "2001:db8:1::ff", false, true), xtView(true, 22), no},
		{"addrtype dst local", addrtype(0, 1<<2, 0), xtView(false, 22), yes},
		{"addrtype dst unicast", addrtype(0, 1<<1, 0), xtView(false, 22), no},
		{"addrtype dst local inverted", addrtype(0, 1<<2, 2), xtView(false, 22), no},
		{"addrtype limit-iface", addrtype(0, 1<<2, 4), xtView(false, 22), maybe},
		// IPv6: UNICAST is a property of the address, so a local one is
		// unicast too (the differential harness found this).
		{"addrtype v6 dst unicast", addrtype(0, 1<<1, 0), xtView(true, 22), yes},
		{"addrtype v6 dst local", addrtype(0, 1<<2, 0), xtView(true, 22), yes},
		{"addrtype v6 dst multicast", addrtype(0, 1<<5, 0), xtView(true, 22), no},
		{"comment", &xtExpr{name: "comment", info: make([]byte, 256)}, xtView(false, 22), yes},
		{"unknown extension", &xtExpr{name: "owner", info: make([]byte, 16)}, xtView(false, 22), maybe},
		{"short info", &xtExpr{name: "multiport", rev: 1, info: []byte{1}}, xtView(false, 22), maybe},
	}
	for _, tt := range tests {
		e := evaluator{view: tt.v}
		if got := e.xtMatch(tt.x); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// FuzzXTMatch: any info bytes, for any extension, decide or stay unknown
// without panicking.
func FuzzXTMatch(f *testing.F) {
	for _, n := range []string{"multiport", "conntrack", "iprange", "addrtype", "state", "tcp", "udp", "hashlimit", "connlimit", "recent"} {
		f.Add(n, uint32(1), make([]byte, 48), false)
		f.Add(n, uint32(3), make([]byte, 170), true)
	}
	f.Fuzz(func(t *testing.T, name string, rev uint32, info []byte, v6 bool) {
		e := evaluator{view: xtView(v6, 22)}
		_ = e.xtMatch(&xtExpr{name: name, rev: rev, info: info})
	})
}

// FuzzNetlinkExpr: any expression the kernel could send, decoded and run
// on a packet, is judged or left unknown without panicking or allocating
// beyond the registers.
func FuzzNetlinkExpr(f *testing.F) {
	for _, n := range []string{"cmp", "payload", "meta", "ct", "bitwise", "byteorder", "lookup", "range", "immediate", "match", "fib", "dynset", "objref", "socket"} {
		f.Add(n, []byte{0, 0, 0, 0}, false)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte, v6 bool) {
		b, err := netlink.MarshalAttributes([]netlink.Attribute{
			{Type: unix.NFTA_EXPR_NAME, Data: append([]byte(name), 0)},
			{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: data},
		})
		if err != nil {
			return
		}
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return
		}
		x := decodeExpr(unix.NFPROTO_INET, ad)
		tb := &Table{Family: FamilyInet, nlsets: map[string]*nlSet{}}
		e := evaluator{view: xtView(v6, 22)}
		var g regs
		_ = e.step(x, &g, tb, yes)
		p := &prog{exprs: []any{x}}
		p.finish()
		_ = p.String()
	})
}
