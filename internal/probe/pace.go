package probe

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Pacing, the way nmap's congestion control does it in spirit: start
// polite, grow while the target keeps answering and nothing is lost, halve
// on loss. Loss is what the scan can tell apart from a firewall's silence:
// a port that answered only on a retry (its first SYN or the answer was
// dropped: a rate limit, a full queue, ICMP rate-limiting) and a timing
// probe to a port known to answer that got no answer. Silence from a port
// that never answers is the firewall's policy, not congestion, and changes
// nothing. The ceiling is a hard bound; the pace never goes above it.
const (
	// initialRate is the first pace, whatever the ceiling.
	initialRate = 1000.0
	// floorRate is the slowest pace backing off can reach.
	floorRate = 50.0
	// minEpoch bounds how often the pace changes: at most once per
	// epoch, an epoch being two round trips but no less than this.
	minEpoch = 2 * time.Millisecond
	// burstSpan is how much of the pace may go at once.
	burstSpan = 2 * time.Millisecond
)

// pacer is a token bucket whose rate the scan's answers steer.
type pacer struct {
	mu       sync.Mutex
	now      func() time.Time
	srtt     func() time.Duration
	feedback func() time.Duration
	ceiling  float64
	rate     float64
	burst    int
	next     time.Time

	slowStart   bool
	lastBackoff time.Time
	epochStart  time.Time
	sent        int
	drops       int
	stats       PaceStats
}

// PaceStats says how the pace went.
type PaceStats struct {
	Ceiling  float64 `json:"ceiling_per_s"`
	Peak     float64 `json:"peak_per_s"`
	Final    float64 `json:"final_per_s"`
	Backoffs int     `json:"backoffs"`
	Drops    int     `json:"drops"`
}

func newPacer(ceiling float64, burst int, now func() time.Time, srtt func() time.Duration) *pacer {
	return newPacerFeedback(ceiling, burst, now, srtt, nil)
}

// newPacerFeedback is newPacer with the delay after which a loss is
// learnt (the wait before a retry): once a loss has been seen the pace
// grows at most once per that delay, so it cannot outrun its own
// evidence.
func newPacerFeedback(ceiling float64, burst int, now func() time.Time, srtt, feedback func() time.Duration) *pacer {
	r := min(initialRate, ceiling)
	p := &pacer{now: now, srtt: srtt, feedback: feedback, ceiling: ceiling, rate: r, burst: max(burst, 1), slowStart: true, epochStart: now()}
	p.stats.Ceiling, p.stats.Peak = ceiling, r
	return p
}

// dropped records one sign of loss: the attempt sent at sent was lost.
// Loss is learnt a timeout late, so one backoff answers every loss of the
// attempts sent before it (nmap's rule too): only an attempt sent after
// the last backoff can cause another.
func (p *pacer) dropped(sent time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Drops++
	if sent.Before(p.lastBackoff) {
		return
	}
	p.drops++
}

// adjust ends an epoch when one has passed: halve on loss (and leave slow
// start), else grow — double in slow start, an eighth after — but only
// when the epoch used at least half its pace (a pace never tried is no
// evidence the target keeps up with it, RFC 7661's rule for TCP).
func (p *pacer) adjust(now time.Time) {
	epoch := minEpoch
	if p.srtt != nil {
		if rt := p.srtt(); rt > 0 {
			epoch = max(epoch, 2*rt)
		} else if p.feedback != nil {
			// No answer yet: nothing says the target keeps up, so the
			// pace waits a whole wait (the longest, until a round trip
			// is known) before it grows.
			epoch = max(epoch, p.feedback())
		}
	}
	if !p.slowStart && p.feedback != nil {
		epoch = max(epoch, p.feedback())
	}
	el := now.Sub(p.epochStart)
	if el < epoch {
		return
	}
	switch {
	case p.drops > 0:
		p.rate = max(p.rate/2, min(floorRate, p.ceiling))
		p.slowStart = false
		p.stats.Backoffs++
		p.lastBackoff = now
	case float64(p.sent) >= p.rate*el.Seconds()/2:
		if p.slowStart {
			p.rate *= 2
		} else {
			p.rate += p.rate / 8
		}
		p.rate = min(p.rate, p.ceiling)
	}
	p.stats.Peak = max(p.stats.Peak, p.rate)
	p.epochStart, p.sent, p.drops = now, 0, 0
}

// reserve takes the next token and returns how long until it is due.
func (p *pacer) reserve() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.adjust(now)
	interval := time.Duration(float64(time.Second) / p.rate)
	// The burst is at least burstSpan of the pace: a loop that sleeps in
	// whole milliseconds (epoll_wait) must not cap the pace at burst per
	// millisecond.
	burst := max(p.burst, int(p.rate*burstSpan.Seconds()))
	if floor := now.Add(-time.Duration(burst) * interval); p.next.Before(floor) {
		p.next = floor
	}
	at := p.next
	p.next = p.next.Add(interval)
	p.sent++
	return at.Sub(now)
}

// wait takes a token, sleeping until one is there.
func (p *pacer) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := p.reserve()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pacer) statsNow() PaceStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Final = p.rate
	return s
}

// OnLink reports whether every address is the machine's own or on a
// network one of its interfaces is directly connected to: no router, no
// one else's link, between the scanner and the target.
func OnLink(addrs []netip.Addr) bool {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	var nets []netip.Prefix
	for _, a := range ifAddrs {
		if n, ok := a.(*net.IPNet); ok {
			ip, ok := netip.AddrFromSlice(n.IP)
			ones, _ := n.Mask.Size()
			if ok {
				nets = append(nets, netip.PrefixFrom(ip.Unmap(), ones).Masked())
			}
		}
	}
	for _, a := range addrs {
		a = a.Unmap()
		if a.IsLoopback() {
			continue
		}
		if !slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(a) }) {
			return false
		}
	}
	return len(addrs) > 0
}
