// Package guard is the guard's data path as one unit: log lines (or the
// failures the gateway hands over typed) through a filter and a jail
// engine to decisions. `moat run` feeds a unit from followed sources and
// hands its decisions to the ban enforcer; `moat jail replay` feeds one a
// file and a replay engine; `moat filter test` a file and no engine. They
// share the line reading, the filter's options, the jails' defaults, the
// ignore list and the IPv6 prefix, so a replay predicts the daemon.
package guard

import (
	"context"
	"sync/atomic"

	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/logwatch"
)

// Engine counts failures and decides: *jail.Engine (moat run, backed by
// the ban store) or *jail.Replayer (moat jail replay).
type Engine interface {
	ObserveAll(evs []jail.Event, dst []jail.Decision) []jail.Decision
}

// Unit is one jail's path from lines to decisions. One goroutine runs it:
// the filter keeps per-connection state.
type Unit struct {
	Name   string
	Filter filter.Filter
	// Engine decides; nil runs the filter alone.
	Engine Engine
	// Observe, if set, sees each line and what the filter read in it.
	Observe func(l *logwatch.Line, r *filter.Result)
	// Success, if set, receives the logins the filter reports (sshd).
	Success func(filter.Success)

	lines, failures, unattributable atomic.Uint64

	// per-batch scratch, reused so a steady stream allocates nothing
	res  filter.Result
	evs  []jail.Event
	decs []jail.Decision
}

// Lines reads a batch of log lines and returns the decisions they
// trigger, valid until the next call.
func (u *Unit) Lines(batch []logwatch.Line) []jail.Decision {
	u.evs = u.evs[:0]
	for i := range batch {
		l := &batch[i]
		e := filter.EntryFromFields(l.Text, l.Time, l.Fields)
		e.Truncated = l.Truncated
		u.res.Reset()
		u.Filter.Process(e, &u.res)
		if u.Observe != nil {
			u.Observe(l, &u.res)
		}
		u.collect(u.res.Failures)
		if u.Success != nil {
			for _, s := range u.res.Successes {
				u.Success(s)
			}
		}
	}
	u.lines.Add(uint64(len(batch)))
	return u.decide()
}

// Failures takes failures that come typed, without a log line (the
// gateway's), and returns the decisions they trigger, valid until the
// next call.
func (u *Unit) Failures(fs []filter.Failure) []jail.Decision {
	u.evs = u.evs[:0]
	u.collect(fs)
	return u.decide()
}

func (u *Unit) collect(fs []filter.Failure) {
	for _, f := range fs {
		if !f.Attributable() {
			u.unattributable.Add(1)
		}
		// Unattributable failures go to the engine too, which counts
		// them and bans nothing.
		u.evs = append(u.evs, jail.Event{Addr: f.Addr, Time: f.Time, Attempts: f.Attempts})
	}
	u.failures.Add(uint64(len(fs)))
}

func (u *Unit) decide() []jail.Decision {
	u.decs = u.decs[:0]
	if u.Engine == nil || len(u.evs) == 0 {
		return u.decs
	}
	u.decs = u.Engine.ObserveAll(u.evs, u.decs)
	return u.decs
}

// Counters are a unit's totals so far.
type Counters struct {
	Lines          uint64 `json:"lines"`
	Failures       uint64 `json:"failures_matched"`
	Unattributable uint64 `json:"unattributable"`
}

// Counters returns the totals; safe to call from any goroutine.
func (u *Unit) Counters() Counters {
	return Counters{Lines: u.lines.Load(), Failures: u.failures.Load(), Unattributable: u.unattributable.Load()}
}

// Feed carries failures handed over in process (by the gateway) to a
// unit's goroutine: Push never blocks; when the buffer is full the
// failure is dropped and counted.
type Feed struct {
	ch      chan filter.Failure
	dropped atomic.Uint64
}

// maxFeedBatch bounds one batch of fed failures.
const maxFeedBatch = 256

// NewFeed returns a feed that buffers up to capacity failures.
func NewFeed(capacity int) *Feed { return &Feed{ch: make(chan filter.Failure, max(capacity, 1))} }

// Push queues f; false when it was dropped.
func (f *Feed) Push(fl filter.Failure) bool {
	select {
	case f.ch <- fl:
		return true
	default:
		f.dropped.Add(1)
		return false
	}
}

// Dropped returns how many failures were dropped so far.
func (f *Feed) Dropped() uint64 { return f.dropped.Load() }

// Run hands batches of pushed failures to h until ctx ends.
func (f *Feed) Run(ctx context.Context, h func([]filter.Failure) error) error {
	batch := make([]filter.Failure, 0, maxFeedBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case fl := <-f.ch:
			batch = append(batch, fl)
		}
	more:
		for len(batch) < maxFeedBatch {
			select {
			case fl := <-f.ch:
				batch = append(batch, fl)
			default:
				break more
			}
		}
		if err := h(batch); err != nil {
			return err
		}
		batch = batch[:0]
	}
}
