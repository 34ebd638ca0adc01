package firewall

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ctnetlink, the conntrack subsystem of NETLINK_NETFILTER (the socket Sets
// already holds).
const (
	ctMsgGet    = 1 // IPCTNL_MSG_CT_GET
	ctMsgDelete = 2 // IPCTNL_MSG_CT_DELETE

	ctaTupleOrig = 1 // CTA_TUPLE_ORIG
	ctaTupleIP   = 1 // CTA_TUPLE_IP
	ctaIPv4Src   = 1 // CTA_IP_V4_SRC
	ctaIPv6Src   = 3 // CTA_IP_V6_SRC
	ctaZone      = 18
)

// Cut ends the connections banned sources opened before their ban: it
// deletes their conntrack entries, so the next packet of such a
// connection is new again and meets the ban. The table looks bans up for
// new connections only (one lookup per connection instead of one per
// packet), so a ban alone lets established connections run to their end.
// IPv6 prefixes are widened as Ban widens them. It returns the number of
// connections ended.
//
// The cost is one dump of the conntrack table per address family present
// in prefixes; callers banning in bursts should cut once per burst.
func (s *Sets) Cut(ctx context.Context, prefixes []netip.Prefix) (int, error) {
	elems := make([]Element, len(prefixes))
	for i, p := range prefixes {
		elems[i] = Element{Prefix: p}
	}
	v4, v6 := splitElements(s.widen(elems))
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, f := range []struct {
		family uint8
		elems  []Element
	}{{unix.AF_INET, v4}, {unix.AF_INET6, v6}} {
		if len(f.elems) == 0 {
			continue
		}
		n, err := s.cut(ctx, f.family, prefixesOf(outermost(f.elems)))
		total += n
		if err != nil {
			return total, fmt.Errorf("end banned connections: %w", err)
		}
	}
	return total, nil
}

func (s *Sets) cut(ctx context.Context, family uint8, banned []netip.Prefix) (int, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	_ = s.nl.SetDeadline(deadline)
	defer s.nl.SetDeadline(time.Time{})

	msgs, err := s.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8 | ctMsgGet), Flags: netlink.Request | netlink.Dump},
		Data:   []byte{family, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return 0, fmt.Errorf("dump conntrack: %w", err)
	}
	// banned is sorted and holds no prefix inside another: the one that
	// may hold an address is the last starting at or before it.
	inBan := func(a netip.Addr) bool {
		lo, hi := 0, len(banned)
		for lo < hi {
			m := (lo + hi) / 2
			if banned[m].Addr().Compare(a) <= 0 {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo > 0 && banned[lo-1].Contains(a)
	}
	n := 0
	for _, m := range msgs {
		orig, zone, src, ok := parseConntrack(m.Data)
		if !ok || !inBan(src) {
			continue
		}
		b := []byte{family, unix.NFNETLINK_V0, 0, 0}
		b = appendAttr(b, ctaTupleOrig|unix.NLA_F_NESTED, orig)
		if zone != nil {
			b = appendAttr(b, ctaZone, zone)
		}
		_, err := s.nl.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8 | ctMsgDelete), Flags: netlink.Request | netlink.Acknowledge},
			Data:   b,
		})
		switch {
		case err == nil:
			n++
		case errors.Is(err, unix.ENOENT):
			// Gone meanwhile.
		default:
			return n, fmt.Errorf("delete conntrack entry of %s: %w", src, err)
		}
	}
	return n, nil
}

// parseConntrack reads a conntrack entry as dumped (after the nfgenmsg
// header): its original tuple, raw, its zone, raw or nil, and the
// original source address.
func parseConntrack(data []byte) (orig, zone []byte, src netip.Addr, ok bool) {
	if len(data) < 4 {
		return nil, nil, src, false
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return nil, nil, src, false
	}
	for ad.Next() {
		switch ad.Type() {
		case ctaTupleOrig:
			orig = ad.Bytes()
		case ctaZone:
			zone = ad.Bytes()
		}
	}
	if ad.Err() != nil || orig == nil {
		return nil, nil, src, false
	}
	tuple, err := netlink.NewAttributeDecoder(orig)
	if err != nil {
		return nil, nil, src, false
	}
	for tuple.Next() {
		if tuple.Type() != ctaTupleIP {
			continue
		}
		ip, err := netlink.NewAttributeDecoder(tuple.Bytes())
		if err != nil {
			return nil, nil, src, false
		}
		for ip.Next() {
			switch b := ip.Bytes(); {
			case ip.Type() == ctaIPv4Src && len(b) == 4:
				src = netip.AddrFrom4([4]byte(b))
			case ip.Type() == ctaIPv6Src && len(b) == 16:
				src = netip.AddrFrom16([16]byte(b))
			}
		}
	}
	return orig, zone, src, src.IsValid()
}
