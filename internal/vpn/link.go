package vpn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The interface's addresses, state, MTU and routes are set over rtnetlink,
// the kernel's own interface (what ip(8) speaks), not by running ip: no
// dependence on iproute2's presence, path or output format.

// RouteProtocol marks the routes moat adds to its WireGuard interface
// (rtm_protocol; ip route shows it as "proto 92"), so a sync removes its
// own stale routes and nobody else's.
const RouteProtocol = 92

// rtnl is one rtnetlink connection.
type rtnl struct{ c *netlink.Conn }

func dialRTNL() (*rtnl, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	return &rtnl{c}, nil
}

func (r *rtnl) Close() error { return r.c.Close() }

func (r *rtnl) do(typ netlink.HeaderType, flags netlink.HeaderFlags, body []byte, attrs func(*netlink.AttributeEncoder)) ([]netlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	if attrs != nil {
		attrs(ae)
	}
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return r.c.Execute(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | flags},
		Data:   append(body, b...),
	})
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// ifAddrmsg is struct ifaddrmsg.
func ifAddrmsg(p netip.Prefix, index int) []byte {
	b := make([]byte, unix.SizeofIfAddrmsg)
	b[0], b[1] = family(p.Addr()), uint8(p.Bits())
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return b
}

// ifInfomsg is struct ifinfomsg.
func ifInfomsg(index int, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(int32(index)))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// rtMsg is struct rtmsg for a link-scope unicast route in the main table.
func rtMsg(p netip.Prefix) []byte {
	return []byte{family(p.Addr()), uint8(p.Bits()), 0, 0, unix.RT_TABLE_MAIN, RouteProtocol, unix.RT_SCOPE_LINK, unix.RTN_UNICAST, 0, 0, 0, 0}
}

// addLink creates a kernel WireGuard interface (ip link add NAME type
// wireguard).
func (r *rtnl) addLink(name string) error {
	_, err := r.do(unix.RTM_NEWLINK, netlink.Create|netlink.Excl|netlink.Acknowledge, ifInfomsg(0, 0, 0), func(ae *netlink.AttributeEncoder) {
		ae.String(unix.IFLA_IFNAME, name)
		ae.Nested(unix.IFLA_LINKINFO, func(n *netlink.AttributeEncoder) error {
			n.String(unix.IFLA_INFO_KIND, "wireguard")
			return nil
		})
	})
	return err
}

func (r *rtnl) delLink(index int) error {
	_, err := r.do(unix.RTM_DELLINK, netlink.Acknowledge, ifInfomsg(index, 0, 0), nil)
	return err
}

// setUp sets the MTU and brings the link up.
func (r *rtnl) setUp(index, mtu int) error {
	_, err := r.do(unix.RTM_NEWLINK, netlink.Acknowledge, ifInfomsg(index, unix.IFF_UP, unix.IFF_UP), func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.IFLA_MTU, uint32(mtu))
	})
	return err
}

func (r *rtnl) replaceAddr(index int, p netip.Prefix) error {
	_, err := r.do(unix.RTM_NEWADDR, netlink.Create|netlink.Replace|netlink.Acknowledge, ifAddrmsg(p, index), func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.IFA_LOCAL, p.Addr().AsSlice())
		ae.Bytes(unix.IFA_ADDRESS, p.Addr().AsSlice())
	})
	return err
}

func (r *rtnl) delAddr(index int, p netip.Prefix) error {
	_, err := r.do(unix.RTM_DELADDR, netlink.Acknowledge, ifAddrmsg(p, index), func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.IFA_LOCAL, p.Addr().AsSlice())
		ae.Bytes(unix.IFA_ADDRESS, p.Addr().AsSlice())
	})
	return err
}

// addrs lists the link's addresses with their prefix lengths.
func (r *rtnl) addrs(index int) ([]netip.Prefix, error) {
	msgs, err := r.do(unix.RTM_GETADDR, netlink.Dump, make([]byte, unix.SizeofIfAddrmsg), nil)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofIfAddrmsg || int(binary.NativeEndian.Uint32(m.Data[4:])) != index {
			continue
		}
		bits := int(m.Data[1])
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfAddrmsg:])
		if err != nil {
			return nil, err
		}
		var local, addr netip.Addr
		for ad.Next() {
			switch ad.Type() {
			case unix.IFA_LOCAL:
				local, _ = netip.AddrFromSlice(ad.Bytes())
			case unix.IFA_ADDRESS:
				addr, _ = netip.AddrFromSlice(ad.Bytes())
			}
		}
		if local.IsValid() {
			addr = local
		}
		if addr.IsValid() {
			out = append(out, netip.PrefixFrom(addr, bits))
		}
	}
	return out, nil
}

func (r *rtnl) replaceRoute(index int, p netip.Prefix) error {
	_, err := r.do(unix.RTM_NEWROUTE, netlink.Create|netlink.Replace|netlink.Acknowledge, rtMsg(p), func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.RTA_DST, p.Addr().AsSlice())
		ae.Uint32(unix.RTA_OIF, uint32(index))
	})
	return err
}

func (r *rtnl) delRoute(index int, p netip.Prefix) error {
	_, err := r.do(unix.RTM_DELROUTE, netlink.Acknowledge, rtMsg(p), func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.RTA_DST, p.Addr().AsSlice())
		ae.Uint32(unix.RTA_OIF, uint32(index))
	})
	return err
}

// ownRoutes lists the main table's routes through the link that moat
// added (RouteProtocol).
func (r *rtnl) ownRoutes(index int) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		body := make([]byte, unix.SizeofRtMsg)
		body[0] = fam
		msgs, err := r.do(unix.RTM_GETROUTE, netlink.Dump, body, nil)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			d := m.Data
			if len(d) < unix.SizeofRtMsg || d[4] != unix.RT_TABLE_MAIN || d[5] != RouteProtocol {
				continue
			}
			ad, err := netlink.NewAttributeDecoder(d[unix.SizeofRtMsg:])
			if err != nil {
				return nil, err
			}
			var dst netip.Addr
			oif := -1
			for ad.Next() {
				switch ad.Type() {
				case unix.RTA_DST:
					dst, _ = netip.AddrFromSlice(ad.Bytes())
				case unix.RTA_OIF:
					oif = int(ad.Uint32())
				}
			}
			if oif == index && dst.IsValid() {
				out = append(out, netip.PrefixFrom(dst, int(d[1])))
			}
		}
	}
	return out, nil
}

// linkIndex finds the interface's index.
func linkIndex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return ifi.Index, nil
}

// SetAddresses makes the interface's addresses exactly addrs (others it
// holds are removed; link-local ones are the kernel's and stay), sets
// its MTU and brings it up, and routes extra through it: a client's
// AllowedIPs wider than its subnet, or the networks routed through the
// host's peers (site to site). Routes it added before and no longer
// wants are removed; routes anybody else added are left alone.
func SetAddresses(name string, addrs []netip.Prefix, extra []netip.Prefix) error {
	r, index, have, err := openLink(name)
	if err != nil {
		return err
	}
	defer r.Close()
	// New addresses first: an interface left without any IPv4 address
	// loses every IPv4 route through it, others' included.
	for _, a := range addrs {
		if err := r.replaceAddr(index, a); err != nil {
			return fmt.Errorf("add address %s to %s: %w", a, name, err)
		}
	}
	for _, h := range have {
		if !h.Addr().IsLinkLocalUnicast() && !slices.Contains(addrs, h) {
			if err := r.delAddr(index, h); err != nil {
				return fmt.Errorf("remove address %s from %s: %w", h, name, err)
			}
		}
	}
	if err := r.setUp(index, MTU); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	return syncRoutes(r, name, index, addrs, extra)
}

// SyncRoutes routes extra through the interface, as SetAddresses does,
// without touching its addresses: moat apply calls it when peers change.
func SyncRoutes(name string, extra []netip.Prefix) error {
	r, index, addrs, err := openLink(name)
	if err != nil {
		return err
	}
	defer r.Close()
	return syncRoutes(r, name, index, addrs, extra)
}

// openLink finds interface name and reads its addresses over a new
// rtnetlink connection, which the caller closes.
func openLink(name string) (r *rtnl, index int, addrs []netip.Prefix, err error) {
	index, err = linkIndex(name)
	if err != nil {
		return nil, 0, nil, err
	}
	r, err = dialRTNL()
	if err != nil {
		return nil, 0, nil, err
	}
	addrs, err = r.addrs(index)
	if err != nil {
		r.Close()
		return nil, 0, nil, fmt.Errorf("read the addresses of %s: %w", name, err)
	}
	return r, index, addrs, nil
}

func syncRoutes(r *rtnl, name string, index int, addrs, extra []netip.Prefix) error {
	var want []netip.Prefix
	for _, p := range extra {
		p = p.Masked()
		// The subnets come with the addresses; a peer's own /32 is inside.
		if slices.ContainsFunc(addrs, func(a netip.Prefix) bool { return within(p, a.Masked()) }) || slices.Contains(want, p) {
			continue
		}
		want = append(want, p)
	}
	own, err := r.ownRoutes(index)
	if err != nil {
		return fmt.Errorf("read the routes through %s: %w", name, err)
	}
	for _, o := range own {
		if !slices.Contains(want, o) {
			if err := r.delRoute(index, o); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("remove route %s via %s: %w", o, name, err)
			}
		}
	}
	for _, p := range want {
		if err := r.replaceRoute(index, p); err != nil {
			return fmt.Errorf("route %s via %s: %w", p, name, err)
		}
	}
	return nil
}

// PeerRoutes are the networks routed through the host's peers: their
// addresses wider than a single host (a home LAN behind a peer).
func (w *WireGuard) PeerRoutes(peers []Peer) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range peers {
		for _, a := range p.Addresses {
			if !a.IsSingleIP() {
				out = append(out, a.Prefix.Masked())
			}
		}
	}
	return out
}
