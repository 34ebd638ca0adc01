//go:build linux

package probe

import (
	"container/heap"
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// nativeConnect says the scan can run on its own epoll loop here.
const nativeConnect = true

// The native connect scan: what net.Dial does per attempt (a goroutine,
// a timer, the runtime's poller, getsockname and getpeername after the
// handshake), done for thousands of attempts in one loop over one epoll
// set, the way nmap's connect scan does it. Nothing else differs: one
// non-blocking connect(2) per attempt, the socket's error read back when
// it is writable, an open port closed at once with linger 0 (a RST, no
// TIME_WAIT), nothing sent on it.

// attempt is one port's scan in progress.
type attempt struct {
	host  int
	port  uint16
	try   int
	probe bool      // a timing probe: only its round trip counts
	sent  time.Time // when the first try was sent
}

type inflight struct {
	fd       int
	a        attempt
	start    time.Time
	deadline time.Time
	idx      int
}

// deadlines is a min-heap of in-flight attempts by deadline.
type deadlines []*inflight

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].deadline.Before(d[j].deadline) }
func (d deadlines) Swap(i, j int)      { d[i], d[j] = d[j], d[i]; d[i].idx = i; d[j].idx = j }
func (d *deadlines) Push(x any)        { f := x.(*inflight); f.idx = len(*d); *d = append(*d, f) }
func (d *deadlines) Pop() any {
	old := *d
	f := old[len(old)-1]
	*d = old[:len(old)-1]
	return f
}

// engineRun is one pass of the native scan over work, a list of
// (host, port) attempts, in order.
type engineRun struct {
	addrs   []netip.Addr
	work    []attempt
	workers int
	retries int
	// maxTry is the highest try that got an answer so far, shared by the
	// loops of one scan: a port gets retries+1 tries, or one more than the
	// most any port needed, up to adaptiveRetries (nmap's rule). A host
	// that loses packets earns its ports more tries; a firewall that drops
	// earns none, since no retry of a silent port is ever answered.
	maxTry *atomic.Int32
	// timeout is the wait for an attempt's try; fixed is set for the
	// verification pass (the longest wait, no adaptation).
	timeout func(try int) time.Duration
	lim     *pacer
	rtt     *rttEstimator
	now     func() time.Time
	stats   *ScanStats
	// timing enables timing probes every timingEvery attempts.
	timing bool
	// drops: whether an answer on a retry counts as loss (not in the
	// verification pass, whose ports were silent twice already).
	drops bool
	// done receives each port's final state (Filtered when every try
	// went unanswered).
	done func(a attempt, st State)
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	return unix.AF_INET6, sa
}

// classify reads a connect's outcome like connectOnce does Dial's.
func classify(err error) (st State, answered, final bool) {
	switch {
	case err == nil:
		return Open, true, true
	case errors.Is(err, unix.ECONNREFUSED):
		return Closed, true, true
	case errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return Filtered, false, true
	}
	return Filtered, false, false
}

// run scans until the work is done or ctx ends (the ports not finished
// are left for the caller to call Unscanned).
func (e *engineRun) run(ctx context.Context) error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(epfd)
	var (
		fly     = map[int]*inflight{}
		dl      deadlines
		retryQ  []attempt
		next    int
		held    *attempt
		heldAt  time.Time
		known   *netip.AddrPort
		started int
		events  = make([]unix.EpollEvent, 512)
		workers = e.workers
	)
	defer func() {
		for fd := range fly {
			unix.Close(fd)
		}
	}()
	finish := func(f *inflight, st State, answered, final bool) {
		a := f.a
		ap := netip.AddrPortFrom(e.addrs[a.host], a.port)
		if answered {
			e.rtt.sample(e.now().Sub(f.start))
			if a.try > 0 && e.drops {
				// Silent first, answering now: the first SYN or its
				// answer was lost.
				e.lim.dropped(a.sent)
			}
			for m := e.maxTry.Load(); int32(a.try) > m && !e.maxTry.CompareAndSwap(m, int32(a.try)); m = e.maxTry.Load() {
			}
			known = &ap
		}
		if a.probe {
			if !answered && !final {
				e.lim.dropped(a.sent) // a port that answered before is silent now
			}
			return
		}
		switch {
		case final:
			e.done(a, st)
		case a.try < max(e.retries, min(int(e.maxTry.Load())+1, adaptiveRetries)):
			a.try++
			retryQ = append(retryQ, a)
		default:
			e.done(a, Filtered)
		}
	}
	// launch starts one attempt; false when the machine is out of
	// sockets or local ports (the attempt goes back to the queue).
	launch := func(a attempt) bool {
		ap := netip.AddrPortFrom(e.addrs[a.host], a.port)
		fam, sa := sockaddr(ap)
		fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			retryQ = append([]attempt{a}, retryQ...)
			return false
		}
		atomic.AddInt64(&e.stats.Attempts, 1)
		if a.try > 0 {
			atomic.AddInt64(&e.stats.Retries, 1)
		}
		now := e.now()
		if a.try == 0 {
			a.sent = now
		}
		f := &inflight{fd: fd, a: a, start: now, deadline: now.Add(e.timeout(a.try))}
		err = unix.Connect(fd, sa)
		if errors.Is(err, unix.EINPROGRESS) {
			if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}); err != nil {
				unix.Close(fd)
				retryQ = append([]attempt{a}, retryQ...)
				return false
			}
			fly[fd] = f
			heap.Push(&dl, f)
			return true
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EADDRNOTAVAIL) {
			// No local port free: not the target's answer.
			unix.Close(fd)
			atomic.AddInt64(&e.stats.Attempts, -1)
			retryQ = append([]attempt{a}, retryQ...)
			return false
		}
		if err == nil {
			unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		}
		unix.Close(fd)
		st, answered, final := classify(err)
		finish(f, st, answered, final)
		return true
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Start what the pace and the in-flight bound allow.
		for len(fly) < workers {
			var a attempt
			paid := false
			switch {
			case held != nil:
				if e.now().Before(heldAt) {
					goto wait
				}
				a, held, paid = *held, nil, true
			case len(retryQ) > 0:
				a, retryQ = retryQ[0], retryQ[1:]
			case next < len(e.work):
				a = e.work[next]
				next++
				started++
				if e.timing && started%timingEvery == 0 && known != nil {
					// Timing probes, as nmap sends them: a port known to
					// answer, dialled again, keeps the wait following the
					// round trip as it is now.
					retryQ = append(retryQ, attempt{host: hostIndex(e.addrs, known.Addr()), port: known.Port(), probe: true})
				}
			default:
				goto wait
			}
			if !paid {
				if d := e.lim.reserve(); d > 0 {
					held, heldAt = &a, e.now().Add(d)
					goto wait
				}
			}
			if !launch(a) {
				// Out of sockets or local ports: fewer in flight
				// until some finish.
				workers = max(len(fly), 1)
				break
			}
		}
	wait:
		if len(fly) == 0 && held == nil && len(retryQ) == 0 && next >= len(e.work) {
			return nil
		}
		// Sleep until an answer, the next deadline, the next token, or
		// 20 ms (ctx is looked at between waits).
		now := e.now()
		until := now.Add(20 * time.Millisecond)
		if len(dl) > 0 && dl[0].deadline.Before(until) {
			until = dl[0].deadline
		}
		if held != nil && heldAt.Before(until) {
			until = heldAt
		}
		ms := 0
		if d := until.Sub(now); d > 0 {
			ms = int((d + time.Millisecond - 1) / time.Millisecond)
		}
		if len(fly) == 0 {
			if ms > 0 {
				time.Sleep(until.Sub(now))
			}
		} else {
			n, err := unix.EpollWait(epfd, events, ms)
			if err != nil && !errors.Is(err, unix.EINTR) {
				return err
			}
			for _, ev := range events[:max(n, 0)] {
				f, ok := fly[int(ev.Fd)]
				if !ok {
					continue
				}
				soErr, gerr := unix.GetsockoptInt(f.fd, unix.SOL_SOCKET, unix.SO_ERROR)
				var cerr error
				if gerr != nil {
					cerr = gerr
				} else if soErr != 0 {
					cerr = unix.Errno(soErr)
				}
				if cerr == nil {
					unix.SetsockoptLinger(f.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
				}
				unix.Close(f.fd)
				delete(fly, f.fd)
				heap.Remove(&dl, f.idx)
				st, answered, final := classify(cerr)
				finish(f, st, answered, final)
			}
		}
		// Expire attempts past their deadline: no answer.
		now = e.now()
		for len(dl) > 0 && !dl[0].deadline.After(now) {
			f := heap.Pop(&dl).(*inflight)
			unix.Close(f.fd)
			delete(fly, f.fd)
			finish(f, Filtered, false, false)
		}
		workers = min(workers+1, e.workers)
	}
}

func hostIndex(addrs []netip.Addr, a netip.Addr) int {
	for i, x := range addrs {
		if x == a {
			return i
		}
	}
	return 0
}
