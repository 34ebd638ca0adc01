package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/logwatch"
)

// pipeline is one jail's data path as `moat run` runs it: a source
// (followed logs, or the gateway's typed failures) feeding a guard.Unit
// (filter → jail engine, the code `moat jail replay` and `moat filter
// test` run too), whose decisions go to the ban queue. One goroutine runs
// it; the filter keeps per-connection state and is not shared.
type pipeline struct {
	name   string
	source logwatch.Source // nil when feed is set
	feed   *guard.Feed     // the gateway's failures, typed
	where  string          // for status: "journal: _COMM=sshd …" or the paths
	unit   *guard.Unit
	eng    *jail.Engine
	enf    *ban.Enforcer
	queue  *banQueue // nil: enforce synchronously (tests)
	notify func(alert.Event)
	logins *loginBook
	log    *slog.Logger

	bans []ban.Ban // scratch
}

func (p *pipeline) filt() filter.Filter { return p.unit.Filter }

func (p *pipeline) run(ctx context.Context) error {
	if p.feed != nil {
		return p.feed.Run(ctx, func(fs []filter.Failure) error {
			p.enforce(ctx, p.unit.Failures(fs))
			return nil
		})
	}
	return p.source.Run(ctx, func(batch []logwatch.Line) error {
		return p.handle(ctx, batch)
	})
}

// handle processes one batch. Its position is saved once it returns nil,
// so a batch that decided bans returns only once the queue has put them
// in the kernel set and the store: a crash never loses a decision whose
// lines were marked read. Waiting also lets the queue's goroutine run at
// once instead of after the position is saved. Batches without decisions,
// nearly all of them, do not wait.
func (p *pipeline) handle(ctx context.Context, batch []logwatch.Line) error {
	p.enforce(ctx, p.unit.Lines(batch))
	return nil
}

func (p *pipeline) enforce(ctx context.Context, decs []jail.Decision) {
	if len(decs) == 0 {
		return
	}
	p.bans = p.bans[:0]
	for _, d := range decs {
		p.bans = append(p.bans, ban.Ban{
			Prefix: d.Prefix, Jail: d.Jail, Origin: ban.OriginAuto,
			Reason:  fmt.Sprintf("%d failures", d.Failures),
			Created: d.At, Expires: d.Until(),
			Failures: d.Failures, Offence: d.Offence,
		})
	}
	if p.queue != nil {
		select {
		case <-p.queue.push(p.bans):
		case <-ctx.Done():
		}
		return
	}
	if _, err := p.enf.Apply(ctx, p.bans); err != nil {
		p.log.Warn("enforce bans", "jail", p.name, "bans", len(p.bans), "err", err)
	}
}

func (p *pipeline) loginSeen(s filter.Success) {
	if p.notify == nil {
		return
	}
	first := p.logins.first(s.User, s.Addr)
	p.notify(alert.Login{
		Service: "ssh", User: s.User, Addr: s.Addr.String(), Method: s.Method,
		Fingerprint: s.KeyFingerprint, NewSource: first, Time: s.Time,
	}.Event())
}

// jailStatus is what `moat jail status` shows per jail.
type jailStatus struct {
	Name           string     `json:"name"`
	Filter         string     `json:"filter"`
	Mode           string     `json:"mode"`
	Source         string     `json:"source"`
	Lines          uint64     `json:"lines"`
	Matched        uint64     `json:"failures_matched"`
	Unattributable uint64     `json:"unattributable"`
	MaxRetry       int        `json:"maxretry"`
	FindTime       string     `json:"findtime"`
	BanTime        string     `json:"bantime"`
	Stats          jail.Stats `json:"stats"`
}

func (p *pipeline) status() jailStatus {
	c := p.eng.Config()
	n := p.unit.Counters()
	return jailStatus{
		Name: p.name, Filter: p.filt().Name(), Mode: p.filt().Mode(), Source: p.where,
		Lines: n.Lines, Matched: n.Failures, Unattributable: n.Unattributable,
		MaxRetry: c.MaxRetry, FindTime: c.FindTime.String(), BanTime: c.BanTime.String(),
		Stats: p.eng.Stats(),
	}
}

// loginBook remembers which sources each user logged in from, to flag a
// login from a new one. Bounded: past the cap it forgets everything, which
// at worst flags a known source as new once.
type loginBook struct {
	mu   sync.Mutex
	seen map[string]bool
}

const maxLoginBook = 10000

func (b *loginBook) first(user string, addr netip.Addr) bool {
	key := user + " " + addr.String()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil || len(b.seen) >= maxLoginBook {
		b.seen = map[string]bool{}
	}
	if b.seen[key] {
		return false
	}
	b.seen[key] = true
	return true
}

// banQueue carries the jails' decisions to the enforcer: a jail pushes
// and waits for its decisions to be applied; one goroutine takes
// everything pending from every jail at once and applies it as one batch
// (one netlink transaction, one store write), so a burst costs a few
// batches, not one round trip per ban.
//
// Until the enforcer has written a decision to the store, the queue
// answers for it (Contains): the jails ask the store and the queue whether
// a source is banned, so a source's failures that follow its decision in
// the same burst count as failures while banned, as they would have with
// the store written on the jail's path, and decide nothing again.
type banQueue struct {
	enf *ban.Enforcer
	log *slog.Logger

	mu      sync.Mutex
	pending []ban.Ban
	waiters []chan struct{} // closed once pending has been applied
	wake    chan struct{}
	dropped atomic.Uint64
	// unstored counts the queue's decisions per prefix until the store
	// has them; bits lists the prefix lengths in it.
	unstored map[netip.Prefix]int
	bits     map[int]int
	// inFlight is len(unstored), read without the lock: the jails ask
	// for every failure, and almost always nothing is in flight.
	inFlight atomic.Int64
}

// maxQueued bounds the decisions waiting for the enforcer; past it new
// ones are dropped and counted (the sources fail again and are decided
// again), so a stuck enforcer cannot grow memory without bound.
const maxQueued = 1 << 20

func newBanQueue(enf *ban.Enforcer, log *slog.Logger) *banQueue {
	return &banQueue{enf: enf, log: log, wake: make(chan struct{}, 1), unstored: map[netip.Prefix]int{}, bits: map[int]int{}}
}

// Contains reports whether a is in a decision not yet in the store.
func (q *banQueue) Contains(a netip.Addr) bool {
	if q.inFlight.Load() == 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for bits := range q.bits {
		if bits > a.BitLen() {
			continue
		}
		if p, err := a.Prefix(bits); err == nil && q.unstored[p] > 0 {
			return true
		}
	}
	return false
}

func (q *banQueue) track(bans []ban.Ban, delta int) {
	for _, b := range bans {
		p := b.Prefix.Masked()
		q.unstored[p] += delta
		q.bits[p.Bits()] += delta
		if q.unstored[p] <= 0 {
			delete(q.unstored, p)
		}
		if q.bits[p.Bits()] <= 0 {
			delete(q.bits, p.Bits())
		}
	}
	q.inFlight.Store(int64(len(q.unstored)))
}

// push queues bans; the channel it returns is closed once they have been
// applied (or dropped, past maxQueued).
func (q *banQueue) push(bans []ban.Ban) <-chan struct{} {
	done := make(chan struct{})
	q.mu.Lock()
	q.waiters = append(q.waiters, done)
	room := maxQueued - len(q.pending)
	if room < len(bans) {
		q.dropped.Add(uint64(len(bans) - max(room, 0)))
		bans = bans[:max(room, 0)]
	}
	q.pending = append(q.pending, bans...)
	q.track(bans, 1)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return done
}

// run applies what is pending until ctx ends, then what is left.
func (q *banQueue) run(ctx context.Context) error {
	var batch []ban.Ban
	for {
		select {
		case <-ctx.Done():
			q.drain(context.WithoutCancel(ctx), batch)
			return nil
		case <-q.wake:
		}
		batch = q.drain(ctx, batch)
	}
}

func (q *banQueue) drain(ctx context.Context, batch []ban.Ban) []ban.Ban {
	for {
		q.mu.Lock()
		batch, q.pending = q.pending, batch[:0]
		waiters := q.waiters
		q.waiters = nil
		q.mu.Unlock()
		if len(batch) > 0 {
			if _, err := q.enf.Apply(ctx, batch); err != nil {
				q.log.Warn("enforce bans", "bans", len(batch), "err", err)
			}
			q.mu.Lock()
			q.track(batch, -1)
			q.mu.Unlock()
			clear(batch)
		}
		for _, w := range waiters {
			close(w)
		}
		if len(batch) == 0 {
			return batch
		}
	}
}

// gatewayReporter hands the gateway's failures to the gateway jail as
// typed failures: the same unit as log lines, without a log round-trip.
type gatewayReporter struct{ feed *guard.Feed }

func (r gatewayReporter) Report(f gateway.Failure) {
	r.feed.Push(filter.GatewayFailure(f.Addr, f.Time, filter.Kind(f.Kind), f.Detail))
}
