package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Writing set elements is moat's hot path: 100,000 bans are 200,000
// kernel elements (interval sets hold a start and an end for each).
// google/nftables builds every element from a dozen small allocations, so
// moat encodes NEWSETELEM and DELSETELEM messages itself, straight into
// one buffer per message, and sends them as nf_tables batches on the
// library's socket. Everything else (the socket, reading sets) stays with
// the library.

// elemOp is one message of a transaction: intervals to add or delete.
type elemOp struct {
	del bool
	// Adds are exclusive (NLM_F_EXCL): without it, an interval whose
	// start element is already there (a wider ban from the same address)
	// would silently take the new end and shrink.
	spans []span // timeouts ignored for deletes
	// set names the op's set when it is not the transaction's (a
	// transaction over several sets); flush deletes every element of it
	// (a DELSETELEM without an element list) and ignores spans.
	set   string
	flush bool
}

// span is one interval as the kernel holds it: a start element, and the
// end element one past its last address, which an interval reaching the
// top of the address space does not have (end is then the zero Addr).
// Interval sets match an address when the nearest element at or below it
// is a start element.
type span struct {
	start, end netip.Addr
	timeout    time.Duration
}

// prefixSpan is the interval of p.
func prefixSpan(p netip.Prefix, timeout time.Duration) span {
	return span{start: p.Masked().Addr(), end: lastAddr(p).Next(), timeout: timeout}
}

func elementSpans(elems []Element) []span {
	out := make([]span, len(elems))
	for i, e := range elems {
		out[i] = prefixSpan(e.Prefix, e.Timeout)
	}
	return out
}

// encodeElems returns the body of a NEWSETELEM or DELSETELEM message for
// set in table inet moat: the nfgenmsg header, then table, set and the
// element list, a start element (carrying the timeout) and an end element
// for each span.
func encodeElems(set string, spans []span, withTimeout bool) ([]byte, error) {
	b := make([]byte, 0, 64+len(spans)*80)
	b = append(b, unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0)
	b = appendAttr(b, unix.NFTA_SET_ELEM_LIST_TABLE, cstring(Table))
	b = appendAttr(b, unix.NFTA_SET_ELEM_LIST_SET, cstring(set))
	list := len(b)
	b = append(b, 0, 0, 0, 0)
	var key [16]byte
	for _, sp := range spans {
		if sp.start.IsValid() { // an end alone: a leftover to delete
			b = appendElem(b, addrKey(&key, sp.start), sp.timeout, withTimeout, false)
		}
		if sp.end.IsValid() {
			b = appendElem(b, addrKey(&key, sp.end), 0, false, true)
		}
	}
	if len(b)-list > 0xffff {
		return nil, fmt.Errorf("netlink: %d elements overflow one message", len(spans))
	}
	putAttrHeader(b[list:], unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED, len(b)-list)
	return b, nil
}

func appendElem(b, key []byte, timeout time.Duration, withTimeout, end bool) []byte {
	elem := len(b)
	b = append(b, 0, 0, 0, 0)
	k := len(b)
	b = append(b, 0, 0, 0, 0)
	b = appendAttr(b, unix.NFTA_DATA_VALUE, key)
	putAttrHeader(b[k:], unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED, len(b)-k)
	if withTimeout && timeout > 0 {
		b = appendAttr(b, unix.NFTA_SET_ELEM_TIMEOUT, binary.BigEndian.AppendUint64(nil, uint64(timeout.Milliseconds())))
	}
	if end {
		b = appendAttr(b, unix.NFTA_SET_ELEM_FLAGS, binary.BigEndian.AppendUint32(nil, unix.NFT_SET_ELEM_INTERVAL_END))
	}
	putAttrHeader(b[elem:], unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, len(b)-elem)
	return b
}

func addrKey(buf *[16]byte, a netip.Addr) []byte {
	if a.Is4() {
		k := a.As4()
		copy(buf[:], k[:])
		return buf[:4]
	}
	*buf = a.As16()
	return buf[:16]
}

// appendAttr appends a netlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, payload []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, payload...)
	putAttrHeader(b[start:], typ, 4+len(payload))
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func putAttrHeader(b []byte, typ uint16, length int) {
	binary.NativeEndian.PutUint16(b[0:2], uint16(length))
	binary.NativeEndian.PutUint16(b[2:4], typ)
}

func cstring(s string) []byte { return append([]byte(s), 0) }

// transact sends ops on set as one nf_tables transaction and waits for
// every message's acknowledgement, bounded by ctx's deadline (a minute
// without one): a kernel that never answers must not hang the caller. The
// kernel applies all of the transaction or none of it.
func (s *Sets) transact(ctx context.Context, set string, ops []elemOp) error {
	msgs := make([]netlink.Message, 0, len(ops)+2)
	batchHdr := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}
	msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: unix.NFNL_MSG_BATCH_BEGIN, Flags: netlink.Request}, Data: batchHdr})
	for _, o := range ops {
		typ, flags := unix.NFT_MSG_NEWSETELEM, netlink.Request|netlink.Acknowledge|netlink.Create|netlink.Excl
		if o.del {
			typ, flags = unix.NFT_MSG_DELSETELEM, netlink.Request|netlink.Acknowledge
		}
		name := set
		if o.set != "" {
			name = o.set
		}
		var body []byte
		var err error
		if o.flush {
			body = encodeFlush(name)
		} else if body, err = encodeElems(name, o.spans, !o.del); err != nil {
			return err
		}
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ), Flags: flags}, Data: body})
	}
	msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: unix.NFNL_MSG_BATCH_END, Flags: netlink.Request}, Data: batchHdr})

	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	_ = s.nl.SetDeadline(deadline)
	defer s.nl.SetDeadline(time.Time{})
	if _, err := s.nl.SendMessages(msgs); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	// One acknowledgement per message, errors included: the kernel runs
	// the whole batch to report every error, then aborts it.
	var first error
	for range ops {
		if _, err := s.nl.Receive(); err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ETIMEDOUT) || isTimeout(err) {
				return fmt.Errorf("netlink: no answer from the kernel: %w", err)
			}
			if first == nil {
				first = err
			}
		}
	}
	if errors.Is(first, unix.ENOENT) {
		return fmt.Errorf("%w (is table inet moat loaded? run moat apply firewall)", first)
	}
	return first
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
