package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DialFunc opens a connection, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// State is what a port's answer says.
type State uint8

// Port states, as nmap names them.
const (
	Unscanned State = iota // the scan stopped before this port
	Open                   // the handshake completed
	Closed                 // a RST (or reject with tcp reset) answered
	Filtered               // no answer after every try, or an ICMP unreachable
)

var stateNames = [...]string{"unscanned", "open", "closed", "filtered"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Scan defaults: a full 65,535-port scan of a host that drops everything
// takes about Retries+1 × MinTimeout × 65,535 ÷ Workers, or 65,535 ×
// (Retries+1) ÷ the pace, whichever is longer. The pace starts at 1,000
// attempts a second and adapts (pace.go) up to a ceiling: DefaultRate for
// a target across routers (the internet), DefaultLinkRate for one on a
// directly connected network or the machine itself.
const (
	DefaultRate       = 8000    // connection attempts per second
	DefaultLinkRate   = 1000000 // the same, for a target on a local link
	DefaultWorkers    = 1024
	DefaultTimeout    = 1500 * time.Millisecond
	DefaultMinTimeout = 200 * time.Millisecond
	DefaultRetries    = 1
)

// Scanner runs TCP connect scans: no root, no raw packets, one full
// handshake per open port (closed at once), nothing sent on it.
type Scanner struct {
	// Dial opens connections; nil is a plain net.Dialer.
	Dial DialFunc
	// Rate is the ceiling on connection attempts per second (token
	// bucket, burst of Workers ÷ 8), never exceeded; below it the pace
	// adapts to the target's answers. 0 is DefaultRate, or DefaultLinkRate
	// when every address is on a directly connected network.
	Rate float64
	// Workers bounds attempts in flight; 0 is DefaultWorkers.
	Workers int
	// Timeout is the longest wait for one attempt's answer; 0 is
	// DefaultTimeout. Once answers have been seen the wait adapts to the
	// measured round trip (like TCP's RTO), never below MinTimeout.
	Timeout    time.Duration
	MinTimeout time.Duration
	// Retries is how many more attempts a port with no answer gets before
	// it is called filtered; a RST or an open port needs one.
	Retries int
	// Now is the clock for round-trip measurement; nil is time.Now.
	Now func() time.Time
	// SYN asks for a half-open scan over a raw socket (root or
	// CAP_NET_RAW; syn_linux.go) instead of connects; Dial is then unused.
	SYN bool
	// OnOpen, when set, is called once for each port found open, as soon
	// as it is found (from the scan's goroutines: it must not block long),
	// so what answers there can be examined while the scan goes on.
	OnOpen func(netip.AddrPort)
}

// HostPorts is the scan of one address: the state of every scanned port.
type HostPorts struct {
	Addr   netip.Addr
	states map[uint16]State
	ports  []uint16
}

// State returns the port's state (Unscanned when it was not in the scan).
func (h *HostPorts) State(p uint16) State { return h.states[p] }

// Ports lists the ports in state s, ascending.
func (h *HostPorts) Ports(s State) []uint16 {
	var out []uint16
	for _, p := range h.ports {
		if h.states[p] == s {
			out = append(out, p)
		}
	}
	return out
}

// Count is how many ports are in state s.
func (h *HostPorts) Count(s State) int {
	n := 0
	for _, p := range h.ports {
		if h.states[p] == s {
			n++
		}
	}
	return n
}

// ScanStats says what a scan cost.
type ScanStats struct {
	// Method is "connect" or "syn".
	Method   string        `json:"method"`
	Attempts int64         `json:"attempts"`
	Retries  int64         `json:"retries"`
	SRTT     time.Duration `json:"srtt_ns"`
	Pace     PaceStats     `json:"pace"`
	Took     time.Duration `json:"took_ns"`
}

// ScanTCP scans every port on every address. It returns when all are
// done or ctx ends (the ports left are Unscanned, and the error says so).
func (s *Scanner) ScanTCP(ctx context.Context, addrs []netip.Addr, ports []uint16) ([]*HostPorts, ScanStats, error) {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	dial := s.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	workers := s.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	rate := s.Rate
	if rate <= 0 {
		rate = DefaultRate
		if OnLink(addrs) {
			rate = DefaultLinkRate
		}
	}
	maxTO := s.Timeout
	if maxTO <= 0 {
		maxTO = DefaultTimeout
	}
	minTO := s.MinTimeout
	if minTO <= 0 {
		minTO = DefaultMinTimeout
	}
	minTO = min(minTO, maxTO)
	retries := max(s.Retries, 0)

	out := make([]*HostPorts, len(addrs))
	for i, a := range addrs {
		out[i] = &HostPorts{Addr: a, states: make(map[uint16]State, len(ports)), ports: ports}
	}
	if s.SYN || (s.Dial == nil && nativeConnect) {
		scan := s.scanNative
		if s.SYN {
			scan = s.scanSYN
		}
		stats, err := scan(ctx, out, ports, workers, rate, minTO, maxTO, retries, now)
		stats.Method = "connect"
		if s.SYN {
			stats.Method = "syn"
		}
		if errors.Is(err, ErrNoRawSocket) {
			return out, stats, err
		}
		stats.Took = now().Sub(start)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return out, stats, errors.New("the scan stopped before every port was tried: " + err.Error())
		}
		return out, stats, nil
	}
	type job struct {
		host int
		port uint16
	}
	jobs := make(chan job)
	var (
		mu    sync.Mutex
		stats ScanStats
		rtt   = newRTT(maxTO)
	)
	lim := newPacer(rate, max(workers/8, 1), now, rtt.srttValue)
	// Timing probes, as nmap sends them: now and then a port known to
	// answer is dialled again, so the wait follows the round trip as it is
	// now, not as it was in the first burst (on a host that drops
	// everything else, the first few answers are the only ones).
	var (
		known    atomic.Pointer[netip.AddrPort]
		attempts atomic.Int64
	)
	timing := func() {
		ap := known.Load()
		if ap == nil || lim.wait(ctx) != nil {
			return
		}
		atomic.AddInt64(&stats.Attempts, 1)
		t0 := now()
		if _, answered, _ := connectOnce(ctx, dial, *ap, maxTO); answered {
			rtt.sample(now().Sub(t0))
		} else if ctx.Err() == nil {
			// A port that answered before is silent now: loss.
			lim.dropped(t0)
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if attempts.Add(1)%timingEvery == 0 {
					timing()
				}
				st := Filtered
				var sent time.Time
				for try := 0; try <= retries; try++ {
					if lim.wait(ctx) != nil {
						st = Unscanned
						break
					}
					atomic.AddInt64(&stats.Attempts, 1)
					if try > 0 {
						atomic.AddInt64(&stats.Retries, 1)
					}
					// Each retry waits twice as long (RFC 6298 backoff): a
					// late answer on a loaded machine gets a second, longer
					// chance before the port is called filtered.
					to := min(rtt.timeout(minTO)<<try, maxTO)
					t0 := now()
					if try == 0 {
						sent = t0
					}
					var answered, final bool
					st, answered, final = connectOnce(ctx, dial, netip.AddrPortFrom(out[j.host].Addr, j.port), to)
					if answered {
						if try > 0 {
							// Silent first, answering now: the first
							// SYN or its answer was lost.
							lim.dropped(sent)
						}
						rtt.sample(now().Sub(t0))
						ap := netip.AddrPortFrom(out[j.host].Addr, j.port)
						known.Store(&ap)
					}
					if final || ctx.Err() != nil {
						break
					}
				}
				if ctx.Err() != nil && st == Filtered {
					st = Unscanned
				}
				if st == Open && s.OnOpen != nil {
					s.OnOpen(netip.AddrPortFrom(out[j.host].Addr, j.port))
				}
				mu.Lock()
				out[j.host].states[j.port] = st
				mu.Unlock()
			}
		})
	}
	// Interleave addresses so each sees the same pace.
feed:
	for _, p := range ports {
		for h := range addrs {
			select {
			case jobs <- job{h, p}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	s.verify(ctx, dial, out, lim, maxTO, retries, &stats)
	stats.Method = "connect"
	stats.SRTT = rtt.srttValue()
	stats.Pace = lim.statsNow()
	stats.Took = now().Sub(start)
	if err := ctx.Err(); err != nil {
		return out, stats, errors.New("the scan stopped before every port was tried: " + err.Error())
	}
	return out, stats, nil
}

// scanNative is ScanTCP on the native engine (scan_linux.go): the same
// pace, waits, retries, timing probes and verification pass, without a
// goroutine per attempt.
func (s *Scanner) scanNative(ctx context.Context, out []*HostPorts, ports []uint16, workers int, rate float64, minTO, maxTO time.Duration, retries int, now func() time.Time) (ScanStats, error) {
	var stats ScanStats
	e := s.newEngineRun(out, ports, workers, rate, minTO, maxTO, retries, now, &stats)
	work, rtt, lim := e.work, e.rtt, e.lim
	// One loop per core, each with its share of the ports (interleaved)
	// and of the in-flight bound, under the one pace: the kernel's work
	// for an attempt (the handshake, the target's answer on a local
	// link) is done on the core that sent it.
	shards := min(max(runtime.GOMAXPROCS(0), 1), maxShards, max(workers, 1))
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for i := range shards {
		sh := *e
		sh.work = nil
		for j := i; j < len(work); j += shards {
			sh.work = append(sh.work, work[j])
		}
		sh.workers = max(workers/shards, 1)
		wg.Go(func() { errs[i] = sh.run(ctx) })
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil && ctx.Err() == nil {
		err = verifyPass(ctx, e, out, workers, retries, maxTO, func(v *engineRun) error { return v.run(ctx) })
	}
	stats.SRTT = rtt.srttValue()
	stats.Pace = lim.statsNow()
	return stats, err
}

// newEngineRun is what the native connect scan and the SYN scan share:
// every (address, port) attempt, addresses interleaved so each sees the
// same pace; the round-trip estimate and the pace under rate; and where
// each port's verdict goes.
func (s *Scanner) newEngineRun(out []*HostPorts, ports []uint16, workers int, rate float64, minTO, maxTO time.Duration, retries int, now func() time.Time, stats *ScanStats) *engineRun {
	addrs := make([]netip.Addr, len(out))
	for i, h := range out {
		addrs[i] = h.Addr
	}
	rtt := newRTT(maxTO)
	lim := newPacerFeedback(rate, max(workers/8, 1), now, rtt.srttValue, func() time.Duration { return rtt.timeout(minTO) })
	work := make([]attempt, 0, len(ports)*len(addrs))
	for _, p := range ports {
		for h := range addrs {
			work = append(work, attempt{host: h, port: p})
		}
	}
	var mu sync.Mutex // the connect scan runs a loop per core
	done := func(a attempt, st State) {
		mu.Lock()
		out[a.host].states[a.port] = st
		mu.Unlock()
		if st == Open && s.OnOpen != nil {
			s.OnOpen(netip.AddrPortFrom(addrs[a.host], a.port))
		}
	}
	return &engineRun{
		addrs: addrs, work: work, workers: workers, retries: retries, maxTry: new(atomic.Int32), lim: lim, rtt: rtt, now: now, stats: stats,
		timing: true, drops: true, done: done,
		// Each retry waits twice as long (RFC 6298 backoff).
		timeout: func(try int) time.Duration { return min(rtt.timeout(minTO)<<try, maxTO) },
	}
}

// adaptiveRetries bounds the tries a lossy host earns its ports (nmap
// -T4's max-retries is 6).
const adaptiveRetries = 6

// verifyPass is verify for the native scans: the few silent ports of a
// host that answers, tried again with the longest wait; an answer
// overrides, silence leaves them filtered.
func verifyPass(ctx context.Context, e *engineRun, out []*HostPorts, workers, retries int, maxTO time.Duration, run func(*engineRun) error) error {
	var todo []attempt
	for h, hp := range out {
		f := hp.Ports(Filtered)
		if len(f) == 0 || len(f) > verifyMax || len(f) > len(hp.ports)/2 {
			continue
		}
		for _, p := range f {
			todo = append(todo, attempt{host: h, port: p, try: 1})
		}
	}
	if len(todo) == 0 || ctx.Err() != nil {
		return nil
	}
	v := *e
	v.work, v.workers, v.timing, v.drops = todo, min(len(todo), workers, 256), false, false
	v.retries = retries + 1 // try counts from 1 here: every try is a retry
	v.maxTry = new(atomic.Int32)
	v.timeout = func(int) time.Duration { return maxTO }
	v.done = func(a attempt, st State) {
		if st != Filtered {
			e.done(a, st)
		}
	}
	return run(&v)
}

// maxShards bounds the native scan's loops.
const maxShards = 4

// verifyMax bounds the ports a verification pass tries again.
const verifyMax = 4096

// verify tries each filtered port again with the longest wait, when the
// host answers on most ports and only a few were silent: on a loaded
// machine a RST can reach the scanner after the adaptive wait (the
// goroutine, not the packet, is late), and one slow answer must not turn
// a closed port into a filtered one. A host that drops nearly everything
// (the protected case) has too many silent ports to need it.
func (s *Scanner) verify(ctx context.Context, dial DialFunc, hosts []*HostPorts, lim *pacer, maxTO time.Duration, retries int, stats *ScanStats) {
	type job struct {
		h *HostPorts
		p uint16
	}
	var todo []job
	for _, h := range hosts {
		f := h.Ports(Filtered)
		if len(f) == 0 || len(f) > verifyMax || len(f) > len(h.ports)/2 {
			continue
		}
		for _, p := range f {
			todo = append(todo, job{h, p})
		}
	}
	if len(todo) == 0 || ctx.Err() != nil {
		return
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	jobs := make(chan job)
	for range min(len(todo), max(s.Workers, 1), 256) {
		wg.Go(func() {
			for j := range jobs {
				for try := 0; try <= retries; try++ {
					if lim.wait(ctx) != nil {
						break
					}
					atomic.AddInt64(&stats.Attempts, 1)
					atomic.AddInt64(&stats.Retries, 1)
					st, _, final := connectOnce(ctx, dial, netip.AddrPortFrom(j.h.Addr, j.p), maxTO)
					if final {
						if st == Open && s.OnOpen != nil {
							s.OnOpen(netip.AddrPortFrom(j.h.Addr, j.p))
						}
						mu.Lock()
						j.h.states[j.p] = st
						mu.Unlock()
						break
					}
				}
			}
		})
	}
	for _, j := range todo {
		select {
		case jobs <- j:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

// timingEvery is how many ports pass between two timing probes.
const timingEvery = 256

// connectOnce tries one TCP handshake. answered is whether the host
// itself answered (SYN-ACK or RST), which times a round trip; final is
// whether any answer came (no retry needed).
func connectOnce(ctx context.Context, dial DialFunc, ap netip.AddrPort, timeout time.Duration) (st State, answered, final bool) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dial(cctx, "tcp", ap.String())
	if err == nil {
		// Linger 0: a RST instead of FIN, no TIME_WAIT on either side.
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		return Open, true, true
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Closed, true, true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		// An ICMP unreachable (a reject rule, or a local firewall): nmap
		// calls this filtered too. Not a retry case: it is an answer.
		return Filtered, false, true
	}
	return Filtered, false, false
}

// rttEstimator keeps a smoothed round trip and its variation (RFC 6298)
// over answered attempts.
type rttEstimator struct {
	mu         sync.Mutex
	srtt, rvar time.Duration
	seen       bool
	max        time.Duration
}

func newRTT(maxTO time.Duration) *rttEstimator { return &rttEstimator{max: maxTO} }

func (r *rttEstimator) sample(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen {
		r.srtt, r.rvar, r.seen = d, d/2, true
		return
	}
	diff := r.srtt - d
	if diff < 0 {
		diff = -diff
	}
	r.rvar = (3*r.rvar + diff) / 4
	r.srtt = (7*r.srtt + d) / 8
}

// timeout is the wait for one attempt: the longest until a round trip is
// known, then srtt + 4×rttvar, doubled for headroom on a loaded machine,
// within [minTO, max].
func (r *rttEstimator) timeout(minTO time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen {
		return r.max
	}
	return min(max(2*(r.srtt+4*r.rvar), minTO), r.max)
}

func (r *rttEstimator) srttValue() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srtt
}

// RangeList writes ports as "1-21,23,25-79".
func RangeList(ports []uint16) string {
	var b strings.Builder
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(ports[i])))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(ports[j])))
		}
		i = j + 1
	}
	return b.String()
}

// Connect is one TCP connect to ap, as the scan makes it: Open, Closed (a
// RST), or Filtered (an ICMP unreachable, or no answer within timeout).
// moat apply's self-probe asks it of each address it can reach.
func Connect(ctx context.Context, dial DialFunc, ap netip.AddrPort, timeout time.Duration) State {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	st, _, _ := connectOnce(ctx, dial, ap, timeout)
	return st
}
