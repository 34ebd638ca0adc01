package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// The blocklists' sets and their drop reason. They sit beside the ban
// sets, in the guard chain after its exemptions (VPN, admin sources), and
// are written whole, never element by element: a list's refresh replaces
// their contents in one transaction.
const (
	SetBlock4       = "block4"
	SetBlock6       = "block6"
	ReasonBlocklist = "blocklist" // source in block4/block6
)

// ReplaceBlocklist makes block4 and block6 hold exactly prefixes, merged:
// overlapping and adjacent networks become one interval (the merging
// nft's auto-merge flag would do, without its cost of reading every set
// before each script). The old contents are flushed and the new added in
// one nf_tables transaction over both sets, so a packet sees the old
// lists or the new, never an empty set between them; a transaction the
// kernel refuses leaves the old contents in place.
func (s *Sets) ReplaceBlocklist(ctx context.Context, prefixes []netip.Prefix) error {
	v4, v6, err := blockSpans(prefixes)
	if err != nil {
		return err
	}
	var ops []elemOp
	for _, f := range []struct {
		name  string
		spans []span
	}{{SetBlock4, v4}, {SetBlock6, v6}} {
		ops = append(ops, elemOp{set: f.name, del: true, flush: true})
		for chunk := range slices.Chunk(f.spans, perMessage) {
			ops = append(ops, elemOp{set: f.name, spans: chunk})
		}
	}
	if n := len(v4) + len(v6); n > MaxBlockRanges {
		return fmt.Errorf("the blocklists merge into %d ranges, more than %d: drop a list (or use a smaller variant of it)", n, MaxBlockRanges)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// One transaction is one sendmsg, which the socket's send buffer
	// bounds: grow it to fit (root may force it past the sysctl limits).
	if err := s.growSendBuffer(len(v4)*spanBytes4 + len(v6)*spanBytes6 + len(ops)*128); err != nil {
		return fmt.Errorf("replace the blocklist sets: %w", err)
	}
	if err := s.transact(ctx, SetBlock4, ops); err != nil {
		return fmt.Errorf("replace the blocklist sets: %w", err)
	}
	return nil
}

// MaxBlockRanges bounds the merged blocklists: one transaction of 4
// million ranges is about 160 MiB of netlink messages.
const MaxBlockRanges = 4 << 20

// Encoded sizes of one interval (start and end element), IPv4 and IPv6.
const (
	spanBytes4 = 40
	spanBytes6 = 64
)

// growSendBuffer makes the socket's send buffer hold need bytes in one
// message; the kernel doubles what is asked and keeps the larger.
func (s *Sets) growSendBuffer(need int) error {
	if need <= socketBuffer {
		return nil
	}
	raw, err := s.nl.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, need)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("netlink send buffer of %d bytes: %w", need, serr)
	}
	return nil
}

// blockSpans merges prefixes into the kernel's intervals, per family.
func blockSpans(prefixes []netip.Prefix) (v4, v6 []span, err error) {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		if p, ok := normPrefix(p); ok {
			b.AddPrefix(p)
		}
	}
	set, err := b.IPSet()
	if err != nil {
		return nil, nil, fmt.Errorf("merge the blocklists: %w", err)
	}
	for _, r := range set.Ranges() {
		// The top of the address space has no end element: Next is the
		// zero Addr there.
		sp := span{start: r.From(), end: r.To().Next()}
		if r.From().Is4() {
			v4 = append(v4, sp)
		} else {
			v6 = append(v6, sp)
		}
	}
	return v4, v6, nil
}

// Blocklisted lists the blocklist sets' contents as prefixes, IPv4 first.
func (s *Sets) Blocklisted(ctx context.Context) ([]Element, error) { return s.List(ctx, KindBlock) }

// encodeFlush is the body of a DELSETELEM message without elements: the
// kernel deletes every element of the set.
func encodeFlush(set string) []byte {
	b := []byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}
	b = appendAttr(b, unix.NFTA_SET_ELEM_LIST_TABLE, cstring(Table))
	return appendAttr(b, unix.NFTA_SET_ELEM_LIST_SET, cstring(set))
}
