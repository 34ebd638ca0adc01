package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
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
	ctaFilter    = 25 // CTA_FILTER (Linux 5.8+)

	ctaFilterOrigFlags  = 1      // CTA_FILTER_ORIG_FLAGS
	ctaFilterReplyFlags = 2      // CTA_FILTER_REPLY_FLAGS
	ctaFilterFlagIPSrc  = 1 << 0 // CTA_FILTER_F_CTA_IP_SRC

	// filteredMax is how many single addresses one cut asks the kernel
	// for one by one (a dump filtered by source in the kernel, copying
	// only that source's entries); more, or any network, take one full
	// dump per family.
	filteredMax = 64
)

// Cut ends the connections banned sources opened before their ban: it
// deletes their conntrack entries, so the next packet of such a
// connection is new again and meets the ban. The table looks bans up for
// new connections only (one lookup per connection instead of one per
// packet), so a ban alone lets established connections run to their end.
// IPv6 prefixes are widened as Ban widens them. It returns the number of
// connections ended.
//
// A few single addresses are looked up one by one with a dump the kernel
// filters by source; networks, or many addresses, cost one dump of the
// conntrack table per address family. Cutter runs it off the caller's
// path.
func (s *Sets) Cut(ctx context.Context, prefixes []netip.Prefix) (int, error) {
	elems := make([]Element, len(prefixes))
	for i, p := range prefixes {
		elems[i] = Element{Prefix: p}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return cutConns(ctx, s.nl, s.widen(elems))
}

func cutConns(ctx context.Context, nl *netlink.Conn, elems []Element) (int, error) {
	v4, v6 := splitElements(elems)
	total := 0
	for _, f := range []struct {
		family uint8
		elems  []Element
	}{{unix.AF_INET, v4}, {unix.AF_INET6, v6}} {
		if len(f.elems) == 0 {
			continue
		}
		banned := prefixesOf(outermost(f.elems))
		hosts := len(banned) <= filteredMax
		for _, p := range banned {
			hosts = hosts && p.IsSingleIP()
		}
		var n int
		var err error
		if hosts {
			for _, p := range banned {
				var k int
				k, err = cut(ctx, nl, f.family, []netip.Prefix{p}, p.Addr())
				if n += k; err != nil {
					break
				}
			}
		} else {
			n, err = cut(ctx, nl, f.family, banned, netip.Addr{})
		}
		total += n
		if err != nil {
			return total, fmt.Errorf("end banned connections: %w", err)
		}
	}
	return total, nil
}

// cut deletes the entries of family whose original source is in banned,
// from a dump of the whole table or, with src valid, of src's entries
// only (filtered in the kernel).
func cut(ctx context.Context, nl *netlink.Conn, family uint8, banned []netip.Prefix, src netip.Addr) (int, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	_ = nl.SetDeadline(deadline)
	defer nl.SetDeadline(time.Time{})

	req := []byte{family, unix.NFNETLINK_V0, 0, 0}
	if src.IsValid() {
		typ := uint16(ctaIPv4Src)
		if family == unix.AF_INET6 {
			typ = ctaIPv6Src
		}
		ip := appendAttr(nil, typ, src.AsSlice())
		tuple := appendAttr(nil, ctaTupleIP|unix.NLA_F_NESTED, ip)
		req = appendAttr(req, ctaTupleOrig|unix.NLA_F_NESTED, tuple)
		var filter []byte
		filter = appendAttr(filter, ctaFilterOrigFlags, binary.NativeEndian.AppendUint32(nil, ctaFilterFlagIPSrc))
		filter = appendAttr(filter, ctaFilterReplyFlags, binary.NativeEndian.AppendUint32(nil, 0))
		req = appendAttr(req, ctaFilter|unix.NLA_F_NESTED, filter)
	}
	msgs, err := nl.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8 | ctMsgGet), Flags: netlink.Request | netlink.Dump},
		Data:   req,
	})
	if err != nil && src.IsValid() && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
		// A kernel before 5.8 has no filtered dumps.
		return cut(ctx, nl, family, banned, netip.Addr{})
	}
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
		_, err := nl.Execute(netlink.Message{
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

// Cutter ends banned sources' connections off the ban path: Queue returns
// at once, and one goroutine cuts what was queued meanwhile, in batches,
// on a netlink socket of its own (the ban sets' socket stays free for
// bans).
type Cutter struct {
	nl   *netlink.Conn
	log  func(error)
	mu   sync.Mutex
	todo []Element
	wake chan struct{}
	quit chan struct{}
	done chan struct{}
	cut  atomic.Uint64
}

// NewCutter opens a conntrack socket in the calling thread's network
// namespace. log receives cutting errors (nil drops them).
func NewCutter(log func(error)) (*Cutter, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("open conntrack netlink: %w (moat needs root)", err)
	}
	if log == nil {
		log = func(error) {}
	}
	c := &Cutter{nl: nl, log: log, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// Queue asks for the connections of prefixes (as the ban sets hold them)
// to be ended, soon.
func (c *Cutter) Queue(prefixes []netip.Prefix) {
	c.mu.Lock()
	for _, p := range prefixes {
		c.todo = append(c.todo, Element{Prefix: p})
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Ended returns the number of connections ended so far.
func (c *Cutter) Ended() uint64 { return c.cut.Load() }

func (c *Cutter) run() {
	defer close(c.done)
	for {
		select {
		case <-c.quit:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		todo := c.todo
		c.todo = nil
		c.mu.Unlock()
		if len(todo) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := cutConns(ctx, c.nl, todo)
		cancel()
		c.cut.Add(uint64(n))
		if err != nil {
			c.log(err)
		}
	}
}

// Close stops the goroutine (what is queued is dropped) and closes the
// socket.
func (c *Cutter) Close() error {
	close(c.quit)
	<-c.done
	return c.nl.Close()
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
