package firewall

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/moat-sh/moat/internal/prefix"
)

// Kind picks a pair of moat's sets: one for IPv4, one for IPv6.
type Kind string

// The set kinds Sets edits.
const (
	KindBan Kind = "ban" // ban4, ban6
	KindGeo Kind = "geo" // geo4, geo6
	// KindBlock is the blocklists' sets (block4, block6): written whole
	// by ReplaceBlocklist.
	KindBlock Kind = "block"
)

func (k Kind) names() (v4, v6 string, err error) {
	switch k {
	case KindBan:
		return SetBan4, SetBan6, nil
	case KindGeo:
		return SetGeo4, SetGeo6, nil
	case KindBlock:
		return SetBlock4, SetBlock6, nil
	}
	return "", "", fmt.Errorf("unknown set kind %q", k)
}

// Element is an address or network in one of moat's sets.
type Element struct {
	Prefix netip.Prefix
	// Timeout is how long the element stays once added; 0 keeps it until
	// deleted.
	Timeout time.Duration
	// Expires is the time left, as listed by the kernel; adding ignores it.
	Expires time.Duration
	// raw is the kernel's interval this element was listed from (List's
	// answer only): deleting the element deletes that interval's own
	// start and end elements.
	raw span
}

// Sets edits the elements of table inet moat's ban and geo sets over
// netlink: batched (thousands of elements per message, many messages per
// transaction), idempotent, and without a process per change. The kernel
// keeps elements and their timeouts across moat restarts; List reads them
// back for reconciling.
//
// A Sets holds one netlink socket, bound to the network namespace of the
// thread that called NewSets. Its methods are safe for concurrent use.
type Sets struct {
	mu       sync.Mutex // one request on the socket at a time
	conn     *nftables.Conn
	nl       *netlink.Conn
	table    *nftables.Table
	v6Prefix int
}

// Batching: one netlink attribute holds at most 64 KiB, which bounds the
// elements per message (an IPv6 ban, start and end element, takes 76
// bytes); a transaction holds many messages.
const (
	perMessage     = 512
	perTransaction = 64 * perMessage
	socketBuffer   = 8 << 20
)

// NewSets opens a netlink socket for table inet moat's sets. IPv6 bans are
// widened to a /v6Prefix (64 when 0): attackers rotate inside their
// allocation.
func NewSets(v6Prefix int) (*Sets, error) {
	if v6Prefix == 0 {
		v6Prefix = 64
	}
	if v6Prefix < 16 || v6Prefix > 128 {
		return nil, fmt.Errorf("ban IPv6 prefix /%d out of range 16 to 128", v6Prefix)
	}
	s := &Sets{table: &nftables.Table{Name: Table, Family: nftables.TableFamilyINet}, v6Prefix: v6Prefix}
	conn, err := nftables.New(nftables.AsLasting(), nftables.WithSockOptions(func(c *netlink.Conn) error {
		s.nl = c
		// Large batches need large buffers; root may force them past
		// the sysctl limits, as nft does.
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = errors.Join(
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer))
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("netlink buffers: %w (moat needs root)", serr)
		}
		return primeDumps(c, raw)
	}))
	if err != nil {
		return nil, fmt.Errorf("open netlink for nftables: %w (moat needs root)", err)
	}
	s.conn = conn
	return s, nil
}

// primeDumps makes the kernel fill each message of a dump up to 32 KiB
// instead of one page. The kernel sizes dump messages by the largest
// buffer a receive on the socket has offered, and mdlayher/netlink
// offers a page; one receive with a large buffer, here of the reply to a
// generation request, lifts that for the socket's life. The kernel dumps
// an interval set by walking it from its start for every message, so
// fewer, larger messages list 100k bans in half the time (1.4 s here).
func primeDumps(c *netlink.Conn, raw syscall.RawConn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	req := netlink.Message{
		Header: netlink.Header{Length: 20, Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	b, err := req.MarshalBinary()
	if err != nil {
		return err
	}
	var ioErr error
	if err := raw.Write(func(fd uintptr) bool {
		ioErr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return ioErr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if ioErr != nil {
		return fmt.Errorf("netlink: %w", ioErr)
	}
	buf := make([]byte, 32<<10)
	if err := raw.Read(func(fd uintptr) bool {
		_, _, ioErr = unix.Recvfrom(int(fd), buf, 0)
		return ioErr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if ioErr != nil {
		return fmt.Errorf("netlink: %w", ioErr)
	}
	return nil
}

// Close releases the socket.
func (s *Sets) Close() error { return s.conn.CloseLasting() }

// Ban adds elements to ban4/ban6, IPv6 ones widened to the ban prefix.
// Banning what is banned already renews its timeout; an element inside a
// wider ban is left to it (ban engines reconcile after the wider one
// expires).
func (s *Sets) Ban(ctx context.Context, elems []Element) error {
	return s.Add(ctx, KindBan, s.widen(elems))
}

// Unban deletes bans; IPv6 prefixes are widened as Ban widens them.
// Deleting what is not banned is not an error.
func (s *Sets) Unban(ctx context.Context, prefixes []netip.Prefix) error {
	elems := make([]Element, len(prefixes))
	for i, p := range prefixes {
		elems[i] = Element{Prefix: p}
	}
	return s.Delete(ctx, KindBan, prefixesOf(s.widen(elems)))
}

// Bans lists the ban sets.
func (s *Sets) Bans(ctx context.Context) ([]Element, error) { return s.List(ctx, KindBan) }

// widen masks every element and widens IPv6 ones to the ban prefix.
func (s *Sets) widen(elems []Element) []Element {
	out := make([]Element, 0, len(elems))
	for _, e := range elems {
		p, ok := prefix.WidenPrefix(e.Prefix, s.v6Prefix)
		if !ok {
			continue
		}
		e.Prefix = p
		out = append(out, e)
	}
	return out
}

// normPrefix unmaps and masks p; ok is false for an invalid prefix.
func normPrefix(p netip.Prefix) (netip.Prefix, bool) { return prefix.Canonical(p) }

// Add adds elements to the kind's sets, replacing any with the same
// prefix (so a renewed element gets its new timeout). Elements covered by
// a wider one, in the batch or in the set, are skipped: interval sets
// cannot hold overlapping elements. Elements that cover narrower ones in
// the set replace them.
func (s *Sets) Add(ctx context.Context, kind Kind, elems []Element) error {
	n4, n6, err := kind.names()
	if err != nil {
		return err
	}
	v4, v6 := splitElements(elems)
	for _, f := range []struct {
		name  string
		elems []Element
	}{{n4, v4}, {n6, v6}} {
		if len(f.elems) == 0 {
			continue
		}
		if err := s.add(ctx, f.name, f.elems); err != nil {
			return fmt.Errorf("add to set %s: %w", f.name, err)
		}
	}
	return nil
}

func (s *Sets) add(ctx context.Context, name string, elems []Element) error {
	set := s.set(name)
	elems = outermost(elems)
	// The fast path: nothing to replace. The kernel refuses the whole
	// transaction if one element overlaps or repeats one already there;
	// then read the set and retry with the conflicts resolved. An
	// interval reaching the top of the address space has no end element,
	// and the kernel cannot see what it would cover: it always takes the
	// careful path.
	if !slices.ContainsFunc(elems, func(e Element) bool { return !lastAddr(e.Prefix).Next().IsValid() }) {
		err := s.write(ctx, set, nil, elems)
		if err == nil || ctx.Err() != nil || !(errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY)) {
			return err
		}
	}
	// Timed-out elements stay in the kernel's tree, unlisted, until its
	// garbage collection runs at a commit (once a second at most). Until
	// then they can refuse an exclusive add of the same address, and the
	// end element of a timed-out interval, which the kernel will not
	// delete alone, would end a new interval across it early (or later be
	// collected as the new one's end). Then commit something harmless to
	// let the collection run, and look again.
	var err error
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		raw, lerr := s.conn.GetSetElements(set)
		s.mu.Unlock()
		if lerr != nil {
			return lerr
		}
		cur := fromIntervals(raw)
		del, add := resolve(cur, elems)
		// A stray end element (its start deleted or timed out) inside an
		// addition would end it early: delete it too.
		for _, o := range strays(raw, add) {
			del = append(del, span{end: o})
		}
		err = s.writeSpans(ctx, set, del, shareEnds(cur, del, elementSpans(add)))
		if err == nil || !(errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EEXIST)) {
			return err
		}
		if attempt >= 16 {
			return fmt.Errorf("set %s: %w (after 4s of waiting for the kernel's garbage collection)", set.Name, err)
		}
		if attempt > 0 {
			if err := s.nudgeGC(ctx, set, cur); err != nil {
				return err
			}
			t := time.NewTimer(250 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// strays returns the stray end elements (see orphanEnds) inside one of
// the additions or at its end.
func strays(raw []nftables.SetElement, add []Element) []netip.Addr {
	var out []netip.Addr
	for _, o := range orphanEnds(raw) {
		for _, e := range add {
			if e.Prefix.Contains(o) || lastAddr(e.Prefix).Next() == o {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

// nudgeGC commits a transaction on the set that changes nothing, so that
// the kernel's commit-time garbage collection runs: a live element
// deleted and added again as it is, or a start element at the top of the
// address space added and deleted again.
func (s *Sets) nudgeGC(ctx context.Context, set *nftables.Set, cur []Element) error {
	var tx []elemOp
	if len(cur) > 0 {
		c := cur[0]
		sp := c.raw
		sp.timeout = 0
		if c.Timeout > 0 {
			if c.Expires <= 0 {
				return nil
			}
			sp.timeout = c.Expires
		}
		tx = []elemOp{{del: true, spans: []span{sp}}, {spans: []span{sp}}}
	} else {
		top := netip.AddrFrom4([4]byte{255, 255, 255, 255})
		if set.KeyType == nftables.TypeIP6Addr {
			top = maxAddr(netip.IPv6Unspecified())
		}
		sp := []span{{start: top}}
		tx = []elemOp{{spans: sp}, {del: true, spans: sp}}
	}
	err := s.transactGroups(ctx, set, [][]elemOp{tx})
	if err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// resolve splits the additions against the set's current elements: an
// addition covered by a wider current element is dropped; current
// elements equal to or covered by an addition are deleted first. Deletion
// is by the kernel's own intervals: where one of them is not a single
// prefix (a range added by hand, or damage), the parts of it no addition
// covers are added back with their time left.
func resolve(cur, add []Element) (del []span, keep []Element) {
	cur = slices.Clone(cur)
	sortElements(cur)
	gone := map[netip.Prefix]bool{}
	for _, e := range add {
		// Current elements overlapping e: either one wider than or equal
		// to e, or any number inside it.
		lo := e.Prefix.Addr()
		i, _ := slices.BinarySearchFunc(cur, lo, func(c Element, a netip.Addr) int { return c.Prefix.Addr().Compare(a) })
		// A wider element starts before lo: look back one.
		if i > 0 && cur[i-1].Prefix.Contains(lo) {
			if cur[i-1].Prefix.Bits() < e.Prefix.Bits() {
				continue // covered by a wider ban
			}
		}
		covered := false
		var mine []netip.Prefix
		for j := i; j < len(cur) && e.Prefix.Contains(cur[j].Prefix.Addr()); j++ {
			if cur[j].Prefix.Bits() < e.Prefix.Bits() {
				covered = true // same start, wider
				break
			}
			mine = append(mine, cur[j].Prefix)
		}
		if !covered {
			keep = append(keep, e)
			for _, p := range mine {
				gone[p] = true
			}
		}
	}
	del, back := spanEdits(cur, func(c Element) bool { return gone[c.Prefix] })
	return del, append(keep, back...)
}

// spanEdits returns the kernel intervals to delete so that the current
// elements drop selects go, and the other parts of those intervals to
// add back.
func spanEdits(cur []Element, drop func(Element) bool) (del []span, back []Element) {
	touched := map[span]bool{}
	for _, c := range cur {
		if drop(c) {
			sp := c.raw
			if !sp.start.IsValid() {
				sp = prefixSpan(c.Prefix, 0)
			}
			sp.timeout = 0
			if !touched[sp] {
				touched[sp] = true
				del = append(del, sp)
			}
		}
	}
	for _, c := range cur {
		sp := c.raw
		sp.timeout = 0
		if !c.raw.start.IsValid() || !touched[sp] || drop(c) {
			continue
		}
		switch {
		case c.Timeout == 0:
			back = append(back, Element{Prefix: c.Prefix})
		case c.Expires > 0:
			back = append(back, Element{Prefix: c.Prefix, Timeout: c.Expires})
		}
	}
	return del, back
}

// Delete removes prefixes from the kind's sets; absent ones are ignored.
func (s *Sets) Delete(ctx context.Context, kind Kind, prefixes []netip.Prefix) error {
	n4, n6, err := kind.names()
	if err != nil {
		return err
	}
	elems := make([]Element, 0, len(prefixes))
	for _, p := range prefixes {
		elems = append(elems, Element{Prefix: p})
	}
	v4, v6 := splitElements(elems)
	for _, f := range []struct {
		name  string
		elems []Element
	}{{n4, v4}, {n6, v6}} {
		if len(f.elems) == 0 {
			continue
		}
		if err := s.delete(ctx, s.set(f.name), uniquePrefixes(f.elems)); err != nil {
			return fmt.Errorf("delete from set %s: %w", f.name, err)
		}
	}
	return nil
}

// delete removes prefixes from one set. A delete that fails because an
// element is absent (the kernel then refuses the whole transaction) is
// retried with what a listing shows present: unbanning one address must
// not cost a listing of every ban.
func (s *Sets) delete(ctx context.Context, set *nftables.Set, want []netip.Prefix) error {
	del := make([]span, 0, len(want))
	for _, p := range want {
		del = append(del, prefixSpan(p, 0))
	}
	err := s.write(ctx, set, del, nil)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return err
	}
	cur, err := s.list(set)
	if err != nil {
		return err
	}
	// An element goes when a prefix deleted holds it: a range the kernel
	// holds as pieces goes whole.
	del, back := spanEdits(cur, func(c Element) bool {
		return slices.ContainsFunc(want, func(p netip.Prefix) bool { return p.Bits() <= c.Prefix.Bits() && p.Contains(c.Prefix.Addr()) })
	})
	return s.write(ctx, set, del, back)
}

func uniquePrefixes(elems []Element) []netip.Prefix {
	seen := make(map[netip.Prefix]bool, len(elems))
	out := make([]netip.Prefix, 0, len(elems))
	for _, e := range elems {
		if !seen[e.Prefix] {
			seen[e.Prefix] = true
			out = append(out, e.Prefix)
		}
	}
	return out
}

// List returns the elements of the kind's sets, IPv4 first, each sorted.
// Ranges that are not one prefix (added by hand, or damage) come back as
// the prefixes covering them, with the range's timeouts.
func (s *Sets) List(ctx context.Context, kind Kind) ([]Element, error) {
	n4, n6, err := kind.names()
	if err != nil {
		return nil, err
	}
	var out []Element
	for _, name := range []string{n4, n6} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		elems, err := s.list(s.set(name))
		if err != nil {
			return nil, fmt.Errorf("list set %s: %w", name, err)
		}
		out = append(out, elems...)
	}
	return out, nil
}

// Sync makes the kind's sets hold exactly want: it adds what is missing
// (with want's timeouts) and deletes what is not wanted, leaving elements
// present in both alone, their timeouts running.
func (s *Sets) Sync(ctx context.Context, kind Kind, want []Element) error {
	cur, err := s.List(ctx, kind)
	if err != nil {
		return err
	}
	want = s.normalize(kind, want)
	have := make(map[netip.Prefix]bool, len(cur))
	for _, c := range cur {
		have[c.Prefix] = true
	}
	wanted := make(map[netip.Prefix]bool, len(want))
	var add []Element
	for _, w := range want {
		wanted[w.Prefix] = true
		if !have[w.Prefix] {
			add = append(add, w)
		}
	}
	var del []netip.Prefix
	for _, c := range cur {
		if !wanted[c.Prefix] {
			del = append(del, c.Prefix)
		}
	}
	if err := s.Delete(ctx, kind, del); err != nil {
		return err
	}
	return s.Add(ctx, kind, add)
}

func (s *Sets) normalize(kind Kind, elems []Element) []Element {
	if kind == KindBan {
		return s.widen(elems)
	}
	out := make([]Element, 0, len(elems))
	for _, e := range elems {
		if p, ok := normPrefix(e.Prefix); ok {
			e.Prefix = p
			out = append(out, e)
		}
	}
	return out
}

func (s *Sets) set(name string) *nftables.Set {
	key := nftables.TypeIPAddr
	if name == SetBan6 || name == SetGeo6 || name == SetBlock6 {
		key = nftables.TypeIP6Addr
	}
	return &nftables.Set{Table: s.table, Name: name, Interval: true, HasTimeout: true, KeyType: key}
}

// write deletes del and adds add, exclusively: an element (start or end)
// already in the set fails the transaction with EEXIST, which add then
// resolves against a listing. That is also how a renewal gets its new
// timeout: the listing shows the element, and it is deleted and added
// again in one transaction (atomic: it never leaves the set).
func (s *Sets) write(ctx context.Context, set *nftables.Set, del []span, add []Element) error {
	return s.writeSpans(ctx, set, del, elementSpans(add))
}

// writeSpans deletes del and adds add, deletions first, in as few
// transactions as the batch limits allow.
func (s *Sets) writeSpans(ctx context.Context, set *nftables.Set, del, add []span) error {
	var groups [][]elemOp
	for chunk := range slices.Chunk(del, perMessage) {
		groups = append(groups, []elemOp{{del: true, spans: chunk}})
	}
	for chunk := range slices.Chunk(add, perMessage) {
		groups = append(groups, []elemOp{{spans: chunk}})
	}
	return s.transactGroups(ctx, set, groups)
}

// transactGroups sends groups of messages, each group whole in one
// transaction.
func (s *Sets) transactGroups(ctx context.Context, set *nftables.Set, groups [][]elemOp) error {
	const msgsPerTx = perTransaction / perMessage
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(groups) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		var tx []elemOp
		for len(groups) > 0 && (len(tx) == 0 || len(tx)+len(groups[0]) <= msgsPerTx) {
			tx = append(tx, groups[0]...)
			groups = groups[1:]
		}
		if err := s.transact(ctx, set.Name, tx); err != nil {
			return err
		}
	}
	return nil
}

// list reads a set and turns the kernel's start and end elements back
// into prefixes.
func (s *Sets) list(set *nftables.Set) ([]Element, error) {
	s.mu.Lock()
	raw, err := s.conn.GetSetElements(set)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return fromIntervals(raw), nil
}

// count returns the number of elements of a set, a range counting once.
func (s *Sets) count(name string) (int, error) {
	s.mu.Lock()
	raw, err := s.conn.GetSetElements(s.set(name))
	s.mu.Unlock()
	n := 0
	for _, e := range raw {
		if !e.IntervalEnd {
			n++
		}
	}
	return n, err
}

// shareEnds drops the end element of an added interval where the set
// keeps one at that address already (the end of an interval deleted
// before one that starts there): an exclusive add would fail on it, and
// the one there ends the new interval as well.
func shareEnds(cur []Element, del, add []span) []span {
	ends := map[netip.Addr]bool{}
	for _, c := range cur {
		if c.raw.end.IsValid() {
			ends[c.raw.end] = true
		}
	}
	for _, d := range del {
		if d.end.IsValid() {
			delete(ends, d.end)
		}
	}
	for i := range add {
		if ends[add[i].end] {
			add[i].end = netip.Addr{}
		}
	}
	return add
}

// orphanEnds returns the end elements not preceded by a start element:
// what is left of an interval whose start timed out, until the kernel's
// garbage collection takes it.
func orphanEnds(raw []nftables.SetElement) []netip.Addr {
	type point struct {
		addr netip.Addr
		end  bool
	}
	pts := make([]point, 0, len(raw))
	for _, e := range raw {
		if a, ok := netip.AddrFromSlice(e.Key); ok {
			pts = append(pts, point{a, e.IntervalEnd})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		if a.end == b.end {
			return 0
		}
		if a.end {
			return -1
		}
		return 1
	})
	var out []netip.Addr
	for i, p := range pts {
		if p.end && (i == 0 || pts[i-1].end) {
			out = append(out, p.addr)
		}
	}
	return out
}

// fromIntervals pairs each start element with the end element after it.
func fromIntervals(raw []nftables.SetElement) []Element {
	type point struct {
		addr             netip.Addr
		end              bool
		timeout, expires time.Duration
	}
	pts := make([]point, 0, len(raw))
	for _, e := range raw {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			continue
		}
		pts = append(pts, point{a, e.IntervalEnd, e.Timeout, e.Expires})
	}
	// An end and the next start may share an address: end first.
	slices.SortFunc(pts, func(a, b point) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		switch {
		case a.end && !b.end:
			return -1
		case !a.end && b.end:
			return 1
		}
		return 0
	})
	var out []Element
	for i := 0; i < len(pts); i++ {
		p := pts[i]
		if p.end {
			continue // an end with no start before it matches nothing
		}
		// The interval runs to the next element: its end, or (without
		// one) the next start, or the top of the address space. A start
		// followed by another start is how a damaged set looks: listed as
		// the kernel matches it, so reconcile sees and repairs it.
		raw := span{start: p.addr}
		last := maxAddr(p.addr)
		if i+1 < len(pts) {
			last = pts[i+1].addr.Prev()
			if pts[i+1].end {
				raw.end = pts[i+1].addr
				i++
			}
		}
		for _, pfx := range rangePrefixes(p.addr, last) {
			out = append(out, Element{Prefix: pfx, Timeout: p.timeout, Expires: p.expires, raw: raw})
		}
	}
	return out
}

func maxAddr(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	var b [16]byte
	for i := range b {
		b[i] = 0xff
	}
	return netip.AddrFrom16(b)
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// rangePrefixes returns the fewest prefixes covering lo..hi exactly.
func rangePrefixes(lo, hi netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for lo.IsValid() && lo.Compare(hi) <= 0 && len(out) < 256 {
		bits := lo.BitLen()
		// Widen while lo stays the network address and the prefix ends
		// at or before hi.
		for bits > 0 {
			p := netip.PrefixFrom(lo, bits-1)
			if p.Masked().Addr() != lo || lastAddr(p).Compare(hi) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(lo, bits)
		out = append(out, p)
		lo = lastAddr(p).Next()
	}
	return out
}

func splitElements(elems []Element) (v4, v6 []Element) {
	v4 = make([]Element, 0, len(elems))
	for _, e := range elems {
		p, ok := normPrefix(e.Prefix)
		if !ok {
			continue
		}
		e.Prefix = p
		if p.Addr().Is4() {
			v4 = append(v4, e)
		} else {
			v6 = append(v6, e)
		}
	}
	return v4, v6
}

func sortElements(es []Element) {
	slices.SortFunc(es, func(a, b Element) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
}

// outermost sorts elems, keeps one element per prefix (the last given:
// the caller's latest word) and drops elements inside a wider one.
func outermost(elems []Element) []Element {
	elems = slices.Clone(elems)
	// Stable: among equal prefixes the last given stays last.
	slices.SortStableFunc(elems, func(a, b Element) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	out := elems[:0]
	for _, e := range elems {
		if n := len(out); n > 0 {
			if out[n-1].Prefix == e.Prefix {
				out[n-1] = e
				continue
			}
			if out[n-1].Prefix.Contains(e.Prefix.Addr()) {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

func prefixesOf(elems []Element) []netip.Prefix {
	out := make([]netip.Prefix, len(elems))
	for i, e := range elems {
		out[i] = e.Prefix
	}
	return out
}

// Matches reports for each address whether the kind's sets match it, read
// the way the kernel matches an interval set: the nearest element at or
// below the address decides, a start element matching and an end element
// (or none) not. It reads the kernel's raw elements, so it also sees what
// List's reading as prefixes would hide.
func (s *Sets) Matches(ctx context.Context, kind Kind, addrs []netip.Addr) ([]bool, error) {
	n4, n6, err := kind.names()
	if err != nil {
		return nil, err
	}
	type point struct {
		addr netip.Addr
		end  bool
	}
	read := func(name string) ([]point, error) {
		s.mu.Lock()
		raw, err := s.conn.GetSetElements(s.set(name))
		s.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("list set %s: %w", name, err)
		}
		pts := make([]point, 0, len(raw))
		for _, e := range raw {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				pts = append(pts, point{a, e.IntervalEnd})
			}
		}
		// On a shared address the start wins: it is the later element.
		slices.SortFunc(pts, func(a, b point) int {
			if c := a.addr.Compare(b.addr); c != 0 {
				return c
			}
			switch {
			case a.end && !b.end:
				return -1
			case !a.end && b.end:
				return 1
			}
			return 0
		})
		return pts, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v4, err := read(n4)
	if err != nil {
		return nil, err
	}
	v6, err := read(n6)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(addrs))
	for i, a := range addrs {
		a = a.Unmap()
		pts := v6
		if a.Is4() {
			pts = v4
		}
		j, _ := slices.BinarySearchFunc(pts, a, func(p point, a netip.Addr) int {
			if c := p.addr.Compare(a); c != 0 {
				return c
			}
			return -1 // every element at a sorts before it
		})
		out[i] = j > 0 && !pts[j-1].end
	}
	return out, nil
}

// Present reports whether both of the kind's sets exist in table inet
// moat: without them nothing the guard decides is enforced.
func (s *Sets) Present(kind Kind) (bool, error) {
	n4, n6, err := kind.names()
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range []string{n4, n6} {
		if _, err := s.conn.GetSetByName(s.table, name); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return false, nil
			}
			return false, fmt.Errorf("look up set %s: %w", name, err)
		}
	}
	return true, nil
}
