//go:build linux

package probe

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The raw SYN scan (--syn, root or CAP_NET_RAW): a half-open scan over a
// raw socket, no libpcap, no cgo. Each attempt is one crafted SYN from a
// source port in a random range, its sequence number a per-scan keyed hash
// of (target, port, source port): an answer counts only if it acknowledges
// that cookie, so stray or forged packets cannot set a verdict. The same
// raw socket receives the answers: a SYN-ACK is open, a RST closed, nothing
// after every try filtered (an ICMP unreachable is not read here: nmap
// calls it filtered too, as this scan does the silence it leaves). Nothing
// else is sent: the kernel, which owns no socket on the source port, answers
// a SYN-ACK with a RST and so closes the half-open connection itself.

// synSrcPorts is the size of the source-port range, above the kernel's
// default ephemeral range (32768-60999) so no local connection shares it.
const synSrcPorts = 256

type synKey struct {
	host int
	port uint16
}

type synProbe struct {
	a        attempt
	start    time.Time
	deadline time.Time
	idx      int
}

type synHeap []*synProbe

func (d synHeap) Len() int           { return len(d) }
func (d synHeap) Less(i, j int) bool { return d[i].deadline.Before(d[j].deadline) }
func (d synHeap) Swap(i, j int)      { d[i], d[j] = d[j], d[i]; d[i].idx = i; d[j].idx = j }
func (d *synHeap) Push(x any)        { p := x.(*synProbe); p.idx = len(*d); *d = append(*d, p) }
func (d *synHeap) Pop() any {
	old := *d
	p := old[len(old)-1]
	*d = old[:len(old)-1]
	return p
}

// synAnswer is one matched answer.
type synAnswer struct {
	key  synKey
	open bool
}

// synSocket is one address family's raw socket and what it needs to
// craft a SYN: the source address the route to the target uses.
type synSocket struct {
	fd  int
	src netip.Addr
}

// synScanner holds one scan's raw sockets, cookie key and source ports.
type synScanner struct {
	addrs   []netip.Addr
	socks   map[bool]*synSocket // by Is6
	seed    maphash.Seed
	srcBase uint16
	hostOf  map[netip.Addr]int
}

// ErrNoRawSocket is returned when --syn cannot open a raw socket.
var ErrNoRawSocket = errors.New("the SYN scan needs a raw socket: run as root (or with CAP_NET_RAW), or leave out --syn for the connect scan, which needs neither")

func newSynScanner(addrs []netip.Addr) (*synScanner, error) {
	var b [2]byte
	rand.Read(b[:])
	s := &synScanner{addrs: addrs, socks: map[bool]*synSocket{}, seed: maphash.MakeSeed(), hostOf: map[netip.Addr]int{},
		srcBase: 61000 + binary.BigEndian.Uint16(b[:])%(65535-61000-synSrcPorts)}
	for i, a := range addrs {
		a = a.Unmap()
		s.hostOf[a] = i
		if s.socks[a.Is6()] != nil {
			continue
		}
		sk, err := openSynSocket(a)
		if err != nil {
			s.close()
			return nil, err
		}
		s.socks[a.Is6()] = sk
	}
	return s, nil
}

func openSynSocket(target netip.Addr) (*synSocket, error) {
	// The source address the kernel would use towards the target: a UDP
	// "connect" sends nothing, it only asks the routing table.
	network := "udp4"
	if target.Is6() {
		network = "udp6"
	}
	c, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(target, 9)))
	if err != nil {
		return nil, fmt.Errorf("no route to %s: %w", target, err)
	}
	src := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	c.Close()
	fam := unix.AF_INET
	if target.Is6() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, ErrNoRawSocket
		}
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	// Answers come fast and all at once: room for them (beyond rmem_max
	// when the process may, CAP_NET_ADMIN).
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	var sa unix.Sockaddr
	if target.Is6() {
		// The kernel fills in the TCP checksum at offset 16.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 16); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("raw socket checksum: %w", err)
		}
		sa = &unix.SockaddrInet6{Addr: src.As16()}
	} else {
		sa = &unix.SockaddrInet4{Addr: src.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("raw socket bind %s: %w", src, err)
	}
	return &synSocket{fd: fd, src: src}, nil
}

func (s *synScanner) close() {
	for _, sk := range s.socks {
		unix.Close(sk.fd)
	}
}

func (s *synScanner) srcPort(port uint16) uint16 { return s.srcBase + port%synSrcPorts }

// cookie is the SYN's sequence number: keyed, so only the target's own
// answer to this scan's SYN can acknowledge it.
func (s *synScanner) cookie(a netip.Addr, port, src uint16) uint32 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	b := a.As16()
	h.Write(b[:])
	h.Write([]byte{byte(port >> 8), byte(port), byte(src >> 8), byte(src)})
	return uint32(h.Sum64())
}

// synSegment is a 24-byte TCP SYN: header and an MSS option (a SYN
// without one is unusual enough to be dropped by some stacks).
func synSegment(src, dst netip.Addr, sport, dport uint16, seq uint32) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	b[12] = 6 << 4 // data offset: 6 words
	b[13] = 0x02   // SYN
	binary.BigEndian.PutUint16(b[14:], 64240)
	b[20], b[21] = 2, 4 // MSS
	binary.BigEndian.PutUint16(b[22:], 1460)
	if src.Is4() {
		binary.BigEndian.PutUint16(b[16:], tcpChecksum4(src, dst, b))
	}
	return b
}

// tcpChecksum4 is the TCP checksum over the IPv4 pseudo-header and seg.
func tcpChecksum4(src, dst netip.Addr, seg []byte) uint16 {
	s4, d4 := src.As4(), dst.As4()
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(s4[:])
	add(d4[:])
	sum += unix.IPPROTO_TCP + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func (s *synScanner) send(a attempt) error {
	dst := s.addrs[a.host].Unmap()
	sk := s.socks[dst.Is6()]
	sport := s.srcPort(a.port)
	seg := synSegment(sk.src, dst, sport, a.port, s.cookie(dst, a.port, sport))
	var sa unix.Sockaddr
	if dst.Is6() {
		sa = &unix.SockaddrInet6{Addr: dst.As16()}
	} else {
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
	}
	return unix.Sendto(sk.fd, seg, 0, sa)
}

// parseAnswer reads one packet from the raw socket: for IPv4 it starts
// with the IP header, for IPv6 with the TCP header (from is the sender).
// It returns the answer when it acknowledges one of this scan's SYNs.
func (s *synScanner) parseAnswer(pkt []byte, from netip.Addr, v6 bool) (synAnswer, bool) {
	if !v6 {
		if len(pkt) < 20 || pkt[0]>>4 != 4 {
			return synAnswer{}, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || len(pkt) < ihl {
			return synAnswer{}, false
		}
		from = netip.AddrFrom4([4]byte(pkt[12:16]))
		pkt = pkt[ihl:]
	}
	if len(pkt) < 20 {
		return synAnswer{}, false
	}
	host, ok := s.hostOf[from.Unmap()]
	if !ok {
		return synAnswer{}, false
	}
	sport := binary.BigEndian.Uint16(pkt[0:]) // the target's port
	dport := binary.BigEndian.Uint16(pkt[2:]) // our source port
	ack := binary.BigEndian.Uint32(pkt[8:])
	flags := pkt[13]
	if dport != s.srcPort(sport) || flags&0x10 == 0 || ack-1 != s.cookie(from.Unmap(), sport, dport) {
		return synAnswer{}, false
	}
	switch {
	case flags&0x04 != 0: // RST
		return synAnswer{key: synKey{host, sport}, open: false}, true
	case flags&0x12 == 0x12: // SYN-ACK
		return synAnswer{key: synKey{host, sport}, open: true}, true
	}
	return synAnswer{}, false
}

// receive reads every answer waiting on sk's socket (non-blocking) and
// hands each match to got.
func (s *synScanner) receive(sk *synSocket, v6 bool, buf []byte, got func(synAnswer)) {
	for {
		n, from, err := unix.Recvfrom(sk.fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return // EAGAIN: nothing more for now
		}
		var fa netip.Addr
		if sa, ok := from.(*unix.SockaddrInet6); ok {
			fa = netip.AddrFrom16(sa.Addr)
		}
		if ans, ok := s.parseAnswer(buf[:n], fa, v6); ok {
			got(ans)
		}
	}
}

// synRun is one pass of the SYN scan, like engineRun for connects.
func (s *synScanner) run(ctx context.Context, e *engineRun) error {
	// One loop, as nmap's: send, then wait on the raw sockets (epoll)
	// until an answer, the next deadline or the next token.
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(epfd)
	byFd := map[int32]bool{} // fd → IPv6
	for v6, sk := range s.socks {
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, sk.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(sk.fd)}); err != nil {
			return err
		}
		byFd[int32(sk.fd)] = v6
	}
	var (
		events = make([]unix.EpollEvent, 4)
		buf    = make([]byte, 1500)
		got    func(synAnswer)
		sent   int
	)
	// drain reads what the sockets hold now: done between sends too, so
	// a burst of answers does not overflow the socket's buffer.
	drain := func() {
		for v6, sk := range s.socks {
			s.receive(sk, v6, buf, got)
		}
	}
	var (
		pending = map[synKey]*synProbe{}
		dl      synHeap
		retryQ  []attempt
		next    int
	)
	var known *attempt
	finish := func(p *synProbe, st State, answered bool) {
		a := p.a
		if a.probe {
			if answered {
				e.rtt.sample(e.now().Sub(p.start))
			} else {
				e.lim.dropped(a.sent) // a port that answered before is silent now
			}
			return
		}
		if answered {
			k := a
			k.try, k.probe = 0, true
			known = &k
			e.rtt.sample(e.now().Sub(p.start))
			if a.try > 0 && e.drops {
				e.lim.dropped(a.sent)
			}
			for m := e.maxTry.Load(); int32(a.try) > m && !e.maxTry.CompareAndSwap(m, int32(a.try)); m = e.maxTry.Load() {
			}
			e.done(a, st)
			return
		}
		if a.try < max(e.retries, min(int(e.maxTry.Load())+1, adaptiveRetries)) {
			a.try++
			retryQ = append(retryQ, a)
			return
		}
		e.done(a, Filtered)
	}
	got = func(ans synAnswer) {
		if p := pending[ans.key]; p != nil {
			delete(pending, ans.key)
			heap.Remove(&dl, p.idx)
			st := Closed
			if ans.open {
				st = Open
			}
			finish(p, st, true)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := 20 * time.Millisecond
		// Send what the pace and the in-flight bound allow.
		for len(pending) < e.workers && (len(retryQ) > 0 || next < len(e.work)) {
			if d := e.lim.reserve(); d > 0 {
				// The token is taken: send this one when it is due
				// (answers wait in the channel meanwhile).
				time.Sleep(d)
			}
			var a attempt
			if len(retryQ) > 0 {
				a, retryQ = retryQ[0], retryQ[1:]
			} else {
				a = e.work[next]
				next++
				if e.timing && next%timingEvery == 0 && known != nil {
					// Timing probes, as in the connect scan: a port known
					// to answer, asked again, keeps the wait following
					// the round trip as it is now.
					retryQ = append(retryQ, *known)
				}
			}
			k := synKey{a.host, a.port}
			if pending[k] != nil {
				continue // still waiting for this port's previous try
			}
			now := e.now()
			if a.try == 0 {
				a.sent = now
			}
			atomic.AddInt64(&e.stats.Attempts, 1)
			if a.try > 0 {
				atomic.AddInt64(&e.stats.Retries, 1)
			}
			if err := s.send(a); err != nil {
				if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
					// The local queue is full: back off, try later.
					atomic.AddInt64(&e.stats.Attempts, -1)
					retryQ = append(retryQ, a)
					e.lim.dropped(now)
					break
				}
				// An error for this destination (no route, a local
				// firewall's EPERM): nmap's filtered.
				e.done(a, Filtered)
				continue
			}
			p := &synProbe{a: a, start: now, deadline: now.Add(e.timeout(a.try))}
			pending[k] = p
			heap.Push(&dl, p)
			if sent++; sent%64 == 0 {
				drain()
			}
		}
		if len(pending) == 0 && len(retryQ) == 0 && next >= len(e.work) {
			return nil
		}
		if len(dl) > 0 {
			wait = min(wait, max(dl[0].deadline.Sub(e.now()), 0))
		}
		ms := int((wait + time.Millisecond - 1) / time.Millisecond)
		n, err := unix.EpollWait(epfd, events, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		for _, ev := range events[:max(n, 0)] {
			s.receive(s.socks[byFd[ev.Fd]], byFd[ev.Fd], buf, got)
		}
		now := e.now()
		for len(dl) > 0 && !dl[0].deadline.After(now) {
			p := heap.Pop(&dl).(*synProbe)
			delete(pending, synKey{p.a.host, p.a.port})
			finish(p, Filtered, false)
		}
	}
}

// scanSYN is ScanTCP as a SYN scan: the same pace, waits, adaptive
// retries and verification pass as the connect scan, one loop.
func (s *Scanner) scanSYN(ctx context.Context, out []*HostPorts, ports []uint16, workers int, rate float64, minTO, maxTO time.Duration, retries int, now func() time.Time) (ScanStats, error) {
	var stats ScanStats
	e := s.newEngineRun(out, ports, workers, rate, minTO, maxTO, retries, now, &stats)
	rtt, lim := e.rtt, e.lim
	ss, err := newSynScanner(e.addrs)
	if err != nil {
		return stats, err
	}
	defer ss.close()
	err = ss.run(ctx, e)
	if err == nil && ctx.Err() == nil {
		err = verifyPass(ctx, e, out, workers, retries, maxTO, func(v *engineRun) error { return ss.run(ctx, v) })
	}
	stats.SRTT = rtt.srttValue()
	stats.Pace = lim.statsNow()
	return stats, err
}

// CanSYN says whether this process may open the SYN scan's raw socket.
func CanSYN() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return ErrNoRawSocket
		}
		return fmt.Errorf("raw socket: %w", err)
	}
	unix.Close(fd)
	return nil
}
