package ruleset

import "net/netip"

// CtState is the conntrack state of the packet; the zero value is new.
type CtState uint8

// Conntrack states.
const (
	StateNew CtState = iota
	StateEstablished
	StateRelated
	StateInvalid
	StateUntracked
)

func (s CtState) bit() uint64 {
	switch s {
	case StateEstablished:
		return ctStateBits["established"]
	case StateRelated:
		return ctStateBits["related"]
	case StateInvalid:
		return ctStateBits["invalid"]
	case StateUntracked:
		return ctStateBits["untracked"]
	}
	return ctStateBits["new"]
}

// Packet describes the packet to evaluate. Zero fields are unknown ("any")
// and make the matches on them undecided, except State (zero is new).
type Packet struct {
	// Hook is the path: HookInput (the default) for local delivery,
	// HookForward for routed (DNATed) traffic. Both include the prerouting
	// chains; any other hook evaluates its own base chains only.
	Hook Hook
	// V6 selects IPv6; it is only read when Saddr and Daddr are both unset.
	V6 bool
	// IIf is the inbound interface; OIf the outbound one on the forward path.
	IIf, OIf string
	// IIfIndex is IIf's interface index, when known (meta iif, fib).
	IIfIndex int
	// Saddr and Daddr are the addresses, Daddr after DNAT.
	Saddr, Daddr netip.Addr
	// Proto is the layer-4 protocol by name: tcp, udp, icmp, ...
	Proto string
	// Sport and Dport are the ports, Dport after DNAT.
	Sport, Dport uint16
	// DNAT marks a packet whose destination prerouting rewrote (ct status
	// dnat); OrigDaddr and OrigDport are the destination before the rewrite,
	// seen by prerouting chains at or before the dstnat priority.
	DNAT      bool
	OrigDaddr netip.Addr
	OrigDport uint16
	State     CtState
}

// IsV6 reports the packet's IP version, from its addresses or V6.
func (p *Packet) IsV6() bool {
	for _, a := range []netip.Addr{p.Daddr, p.Saddr} {
		if a.IsValid() {
			return a.Is6() && !a.Is4In6()
		}
	}
	return p.V6
}

// conntrackPriority is where conntrack assigns entries in prerouting.
const conntrackPriority = -200

// dstnatPriority is where nftables and iptables do DNAT in prerouting.
const dstnatPriority = -100

// view returns the packet as base chain c sees it.
func (p *Packet) view(c *Chain) view {
	v := view{
		v6:       p.IsV6(),
		iif:      p.IIf,
		iifKnown: p.IIf != "",
		saddr:    p.Saddr.Unmap(),
		daddr:    p.Daddr.Unmap(),
		sport:    p.Sport,
		dport:    p.Dport,
		state:    p.State.bit(),
		iifIndex: p.IIfIndex,
		local:    p.Hook == HookInput,
		// A new connection's conntrack mark is zero; an older one's is
		// whatever earlier packets set.
		ctmarkKnown: p.State == StateNew,
		markKnown:   true,
		stateKnown:  true,
		oifKnown:    true, // no output device before routing, nor on input
	}
	if p.Proto != "" {
		n, ok := protoNumbers[p.Proto]
		v.l4, v.l4Known = uint8(n), ok
	}
	if v.l4Known && v.l4 == 6 {
		switch p.State {
		case StateNew:
			v.tcpFlags, v.flagsKnow = tcpFlagBits["syn"], true
		case StateEstablished:
			v.tcpFlags, v.flagsKnow = tcpFlagBits["ack"], true
		}
	}
	if p.State == StateEstablished {
		v.status = ctStatusBits["seen-reply"] | ctStatusBits["confirmed"]
	}
	if c.Hook == HookForward {
		v.oif, v.oifKnown = p.OIf, p.OIf != ""
	}
	// Conntrack runs in prerouting at priority -200: before it (ingress,
	// raw) the packet has no entry and ct state reads invalid; at -200
	// itself the order is that of registration.
	switch {
	case c.Hook == HookIngress || c.Hook == HookPrerouting && c.Priority < conntrackPriority:
		v.state, v.noCT = ctStateBits["invalid"], true
		v.status = 0
	case c.Hook == HookPrerouting && c.Priority == conntrackPriority:
		v.stateKnown = false
	}
	if p.DNAT {
		if c.Hook == HookPrerouting && c.Priority <= dstnatPriority {
			v.daddr, v.dport, v.local = p.OrigDaddr.Unmap(), p.OrigDport, true
		} else {
			v.status |= ctStatusBits["dnat"]
		}
	}
	return v
}
