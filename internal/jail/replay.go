package jail

import (
	"iter"
	"net/netip"
	"time"
)

// ReplayResult is what a replay of failures would have done.
type ReplayResult struct {
	// Bans are the decisions in the order they were made.
	Bans []Decision
	// Stats are the jail's counters at the end; WhileBanned counts the
	// failures of sources banned at the time, which the kernel would have
	// dropped before they reached the log.
	Stats Stats
}

// Replay runs failures through a fresh engine for jail name by their own
// timestamps and returns each ban it would have made. A source banned
// during the replay fails to no effect until its ban ends, and a source
// banned again gets the incremental bantime, as a live run would (on top
// of opts.History, if set). opts.Banned is replaced.
func Replay(name string, cfg Jail, opts Options, failures iter.Seq[Event]) (ReplayResult, error) {
	r, err := NewReplayer(name, cfg, opts)
	if err != nil {
		return ReplayResult{}, err
	}
	var one [1]Event
	for ev := range failures {
		one[0] = ev
		r.ObserveAll(one[:], nil)
	}
	return r.Result(), nil
}

// Replayer is an engine that keeps its own ban list and history, dated by
// the failures it is fed: what `moat jail replay` runs where `moat run`
// runs an Engine backed by the ban store.
type Replayer struct {
	e    *Engine
	r    *replayState
	bans []Decision
}

// NewReplayer builds a replay engine; opts.Banned is replaced, and
// opts.History, if set, is the history before the replay.
func NewReplayer(name string, cfg Jail, opts Options) (*Replayer, error) {
	r := &replayState{base: opts.History, until: map[netip.Prefix]time.Time{}, count: map[netip.Prefix]int{}}
	opts.History, opts.Banned = r, r
	e, err := New(name, cfg, opts)
	if err != nil {
		return nil, err
	}
	r.widen = e.widen
	return &Replayer{e: e, r: r}, nil
}

// ObserveAll counts failures in order, each at its own time, and appends
// the decisions they trigger to dst.
func (p *Replayer) ObserveAll(evs []Event, dst []Decision) []Decision {
	for _, ev := range evs {
		if !ev.Time.IsZero() {
			p.r.now = ev.Time
		}
		d, ok := p.e.Observe(ev.Addr, ev.Time, ev.Attempts)
		if !ok {
			continue
		}
		p.r.until[d.Prefix] = d.Until()
		p.r.count[d.Prefix]++
		p.bans = append(p.bans, d)
		dst = append(dst, d)
	}
	return dst
}

// Result is the bans so far and the engine's counters.
func (p *Replayer) Result() ReplayResult {
	return ReplayResult{Bans: append([]Decision(nil), p.bans...), Stats: p.e.Stats()}
}

// replayState is a replay's ban list and history.
type replayState struct {
	base  History
	widen func(netip.Addr) netip.Prefix
	now   time.Time
	until map[netip.Prefix]time.Time
	count map[netip.Prefix]int
}

func (r *replayState) PreviousBans(p netip.Prefix) int {
	n := r.count[p]
	if r.base != nil {
		n += r.base.PreviousBans(p)
	}
	return n
}

// Contains reports whether a is banned at the time of the failure being
// replayed, by its widened prefix or alone.
func (r *replayState) Contains(a netip.Addr) bool {
	for _, p := range [2]netip.Prefix{r.widen(a), netip.PrefixFrom(a, a.BitLen())} {
		if u, ok := r.until[p]; ok && (u.IsZero() || r.now.Before(u)) {
			return true
		}
	}
	return false
}
