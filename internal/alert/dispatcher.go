package alert

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// Dispatcher routes events to notifiers. Notify never blocks: it routes
// the event, digests automatic bans, applies quiet hours and queues the
// event on each chosen notifier's bounded queue; Run delivers them, with
// retries, until its context ends.
type Dispatcher struct {
	opts    Options
	metrics *metrics
	wake    chan struct{} // capacity 1: a digest window opened

	mu      sync.Mutex
	routes  []*route
	workers map[string]*worker
	running *runState // nil unless Run is running
}

type runState struct {
	ctx      context.Context // the workers' context, ended after draining
	cancel   context.CancelFunc
	drain    chan struct{} // closed when Run's context ends
	stopping bool
}

// New builds a Dispatcher for c. Events notified before Run starts wait
// in the queues.
func New(c Config, o Options) (*Dispatcher, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register alert metrics: %w", err)
	}
	d := &Dispatcher{opts: o, metrics: m, wake: make(chan struct{}, 1), workers: map[string]*worker{}}
	if err := d.Reload(c); err != nil {
		return nil, err
	}
	return d, nil
}

// Reload swaps in a new configuration, running or not. Notifiers whose
// settings did not change keep their queue and goroutine; changed ones
// hand their queue and counters to the replacement; removed ones are
// discarded with their queue and metric series.
// A route unchanged at the same position keeps its open digest; other
// open digests go out now.
func (d *Dispatcher) Reload(c Config) error {
	commit, err := d.Prepare(c)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Prepare does the part of Reload that can fail (validation, routes, new
// notifiers' senders) and changes nothing; commit applies it and cannot
// fail. A caller reloading several parts at once prepares them all before
// committing any. Prepares must not overlap, and each is committed or
// dropped before the next.
func (d *Dispatcher) Prepare(c Config) (commit func(), err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	routes, err := compileRoutes(c)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	current := d.workers
	d.mu.Unlock()
	workers := make(map[string]*worker, len(c.Notifiers))
	for _, name := range sortedKeys(c.Notifiers) {
		n := c.Notifiers[name]
		if old := current[name]; old != nil && reflect.DeepEqual(old.cfg, n) {
			workers[name] = old
			continue
		}
		s, err := newSender(n, &d.opts)
		if err != nil {
			return nil, fmt.Errorf("notifier %s: %w", name, err)
		}
		workers[name] = newWorker(name, n, s, &d.opts, d.metrics)
	}
	return func() { d.commit(routes, workers) }, nil
}

func (d *Dispatcher) commit(routes []*route, workers map[string]*worker) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, old := range d.workers {
		nw, kept := workers[name]
		if nw == old {
			continue
		}
		q := old.take()
		old.retire()
		if kept {
			nw.stats = old.stats
			for _, e := range q {
				nw.enqueue(e)
			}
		} else {
			d.metrics.forget(name)
		}
	}
	now := d.opts.Now()
	for i, r := range d.routes {
		if r.digest == nil || !r.digest.pending() {
			continue
		}
		if i < len(routes) && routes[i].digest != nil && reflect.DeepEqual(r.cfg, routes[i].cfg) {
			routes[i].digest.carry(r.digest)
			continue
		}
		d.deliver(workers, r.notifiers, d.stamp(r.digest.take(now), now))
	}
	d.routes, d.workers = routes, workers
	if d.running != nil && !d.running.stopping {
		for _, w := range workers {
			if w.cancel == nil {
				d.start(w)
			}
		}
	}
	d.poke()
}

// Notify routes e and queues it for delivery without blocking. It fills
// e's ID, Time and Host when empty, and cleans its text.
func (d *Dispatcher) Notify(e Event) {
	now := d.opts.Now()
	e = d.stamp(e, now)
	kind := e.Kind
	if !slices.Contains(Events, kind) {
		kind = "other" // label values stay bounded whatever callers send
	}
	d.metrics.events.WithLabelValues(kind).Inc()

	d.mu.Lock()
	defer d.mu.Unlock()
	var targets []string
	for _, r := range d.routes {
		if !r.matches(e) {
			continue
		}
		if r.digest != nil && digested(e) {
			if r.digest.add(e, now) {
				d.poke()
			}
			continue
		}
		if e.Severity < Critical && r.quiet.active(now.In(d.opts.Location)) {
			d.metrics.suppressed.WithLabelValues("quiet_hours").Inc()
			continue
		}
		targets = append(targets, r.notifiers...)
	}
	slices.Sort(targets)
	d.deliver(d.workers, slices.Compact(targets), e)
}

func (d *Dispatcher) stamp(e Event, now time.Time) Event {
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	if e.Host == "" {
		e.Host = d.opts.Host
	}
	return e.normalize()
}

// deliver queues e on each named notifier.
func (d *Dispatcher) deliver(workers map[string]*worker, names []string, e Event) {
	for _, n := range names {
		if w := workers[n]; w != nil {
			w.enqueue(e)
		}
	}
}

// poke wakes Run to recompute its digest timer.
func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers queued events and closes digest windows until ctx ends.
// Then it closes open digest windows, keeps delivering what is queued
// for up to Options.DrainTimeout (so "moat stopped" still goes out), and
// returns. It returns an error only when already running.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running != nil {
		d.mu.Unlock()
		return errors.New("alert dispatcher already running")
	}
	wctx, cancel := context.WithCancel(context.Background())
	d.running = &runState{ctx: wctx, cancel: cancel, drain: make(chan struct{})}
	for _, w := range d.workers {
		d.start(w)
	}
	d.mu.Unlock()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next := d.flushDue(d.opts.Now()); next > 0 {
			timer.Reset(next)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			d.shutdown()
			return nil
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// start runs w's goroutine; d.mu is held.
func (d *Dispatcher) start(w *worker) {
	ctx, cancel := context.WithCancel(d.running.ctx)
	w.cancel, w.done = cancel, make(chan struct{})
	go w.run(ctx, d.running.drain)
}

// flushDue sends the digests due at now and returns how long until the
// next one is due, 0 when none is open. A digest due in quiet hours waits
// for their end, and then covers the whole quiet spell.
func (d *Dispatcher) flushDue(now time.Time) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	var next time.Duration
	for _, r := range d.routes {
		g := r.digest
		if g == nil || !g.pending() {
			continue
		}
		if !now.Before(g.due) {
			local := now.In(d.opts.Location)
			if g.severity >= Critical || !r.quiet.active(local) {
				d.deliver(d.workers, r.notifiers, d.stamp(g.take(now), now))
				continue
			}
			g.due = r.quiet.end(local)
		}
		if wait := g.due.Sub(now); next == 0 || wait < next {
			next = wait
		}
	}
	return next
}

func (d *Dispatcher) shutdown() {
	d.mu.Lock()
	now := d.opts.Now()
	for _, r := range d.routes {
		if r.digest == nil || !r.digest.pending() {
			continue
		}
		e := d.stamp(r.digest.take(now), now)
		if e.Severity < Critical && r.quiet.active(now.In(d.opts.Location)) {
			d.metrics.suppressed.WithLabelValues("quiet_hours").Inc()
			continue
		}
		d.deliver(d.workers, r.notifiers, e)
	}
	rs := d.running
	rs.stopping = true
	close(rs.drain)
	var started []*worker
	for _, w := range d.workers {
		if w.cancel != nil {
			started = append(started, w)
		}
	}
	d.mu.Unlock()

	done := make(chan struct{})
	go func() {
		for _, w := range started {
			<-w.done
		}
		close(done)
	}()
	grace := time.NewTimer(d.opts.DrainTimeout)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	}
	rs.cancel()
	<-done

	d.mu.Lock()
	for _, w := range d.workers {
		w.cancel, w.done = nil, nil
	}
	d.running = nil
	d.mu.Unlock()
}

// Health reports every notifier's counters and last error, by name.
func (d *Dispatcher) Health() []NotifierHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]NotifierHealth, 0, len(d.workers))
	for _, name := range sortedKeys(d.workers) {
		out = append(out, d.workers[name].snapshot())
	}
	return out
}

// TestResult is one notifier's answer to a test alert.
type TestResult struct {
	Notifier string
	Type     string
	Reply    Reply
	Err      error
	Took     time.Duration
}

// Test sends a test event to the named notifiers (all when none are
// named) at once, in parallel, bypassing routes, queues and retries: one
// try each within Options.Timeout, so the answer is the receiver's own.
func (d *Dispatcher) Test(ctx context.Context, names ...string) ([]TestResult, error) {
	d.mu.Lock()
	if len(d.workers) == 0 {
		d.mu.Unlock()
		return nil, errors.New("no notifiers configured: add one under alerts.notifiers in moat.yaml")
	}
	if len(names) == 0 {
		names = sortedKeys(d.workers)
	}
	ws := make([]*worker, len(names))
	for i, n := range names {
		if ws[i] = d.workers[n]; ws[i] == nil {
			d.mu.Unlock()
			return nil, fmt.Errorf("unknown notifier %q: configured are %s", n, strings.Join(sortedKeys(d.workers), ", "))
		}
	}
	d.mu.Unlock()

	res := make([]TestResult, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			e := d.stamp(TestEvent(w.name), d.opts.Now())
			start := time.Now()
			r, err := w.try(ctx, e)
			res[i] = TestResult{Notifier: w.name, Type: w.typ, Reply: r, Err: err, Took: time.Since(start)}
		})
	}
	wg.Wait()
	return res, nil
}
