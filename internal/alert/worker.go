package alert

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NotifierHealth is one notifier's record for moat status.
type NotifierHealth struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Sent        uint64    `json:"sent"`
	Failed      uint64    `json:"failed"`
	Dropped     uint64    `json:"dropped"`
	Retries     uint64    `json:"retries"`
	Queued      int       `json:"queued"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// worker owns one notifier: a bounded queue in front of its Sender and
// the goroutine that drains it with retries. enqueue never blocks.
type worker struct {
	name, typ string
	cfg       Notifier // to tell on reload whether it changed
	send      Sender
	retry     Retry
	timeout   time.Duration
	now       func() time.Time
	log       *slog.Logger

	sent, failed, dropped, retries prometheus.Counter
	queued                         prometheus.Gauge
	duration                       prometheus.Observer

	signal chan struct{} // capacity 1: "the queue is not empty"

	mu     sync.Mutex
	q      []Event // oldest first
	limit  int
	cancel context.CancelFunc // stops run; nil until started
	done   chan struct{}      // closed when run returns
	quit   chan struct{}      // closed by retire

	// stats outlive the worker: a reload that changes the notifier hands
	// them to the replacement, and a try still in flight counts there.
	stats *stats
}

type stats struct {
	mu sync.Mutex
	h  NotifierHealth
}

func (s *stats) update(f func(h *NotifierHealth)) {
	s.mu.Lock()
	f(&s.h)
	s.mu.Unlock()
}

func newWorker(name string, cfg Notifier, s Sender, o *Options, m *metrics) *worker {
	return &worker{
		name: name, typ: cfg.Type, cfg: cfg, send: s, retry: o.Retry, timeout: o.Timeout, now: o.Now, log: o.Logger,
		sent: m.sent.WithLabelValues(name), failed: m.failed.WithLabelValues(name),
		dropped: m.dropped.WithLabelValues(name), retries: m.retries.WithLabelValues(name),
		queued: m.queued.WithLabelValues(name), duration: m.duration.WithLabelValues(name),
		signal: make(chan struct{}, 1),
		quit:   make(chan struct{}),
		limit:  o.QueueSize,
		stats:  &stats{h: NotifierHealth{Name: name}},
	}
}

// enqueue adds e without ever blocking. When the queue is full, the
// oldest of the least severe queued events makes room, unless e itself is
// less severe than all of them, in which case e is dropped: a flood of
// info events cannot push out a critical one. Either way one drop is
// counted.
func (w *worker) enqueue(e Event) {
	w.mu.Lock()
	if len(w.q) >= w.limit {
		victim := 0
		for i := 1; i < len(w.q) && w.q[victim].Severity > Info; i++ {
			if w.q[i].Severity < w.q[victim].Severity {
				victim = i
			}
		}
		w.countDropped(1)
		if w.q[victim].Severity > e.Severity {
			w.mu.Unlock()
			return
		}
		if victim == 0 { // the common case: no copying
			w.q[0] = Event{}
			w.q = w.q[1:]
		} else {
			copy(w.q[victim:], w.q[victim+1:])
			w.q[len(w.q)-1] = Event{}
			w.q = w.q[:len(w.q)-1]
		}
	}
	w.q = append(w.q, e)
	w.queued.Set(float64(len(w.q)))
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *worker) pop() (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.q) == 0 {
		return Event{}, false
	}
	e := w.q[0]
	w.q[0] = Event{}
	w.q = w.q[1:]
	w.queued.Set(float64(len(w.q)))
	return e, true
}

// take empties the queue, for a replacement worker after a reload.
func (w *worker) take() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.q
	w.q = nil
	w.queued.Set(0)
	return q
}

// run delivers queued events until ctx ends, or until drain is closed
// and the queue is empty. Events still queued when ctx ends count as
// dropped.
func (w *worker) run(ctx context.Context, drain <-chan struct{}) {
	defer close(w.done)
	for {
		if ctx.Err() != nil {
			if n := len(w.take()); n > 0 {
				w.countDropped(n)
			}
			return
		}
		if e, ok := w.pop(); ok {
			w.deliver(ctx, e)
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.signal:
		case <-w.quit:
			return
		case <-drain:
			if w.len() == 0 {
				return
			}
		}
	}
}

func (w *worker) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.q)
}

// deliver tries e until it is sent, refused, out of tries, or ctx ends.
func (w *worker) deliver(ctx context.Context, e Event) {
	for attempt := 1; ; attempt++ {
		_, err := w.try(ctx, e)
		if err == nil {
			now := w.now()
			w.stats.update(func(h *NotifierHealth) { h.Sent++; h.LastSuccess = now })
			w.sent.Inc()
			return
		}
		if ctx.Err() != nil {
			w.countDropped(1)
			return
		}
		wait, final := w.retry.next(attempt, err)
		if final != nil {
			w.fail(e, final)
			return
		}
		now := w.now()
		w.stats.update(func(h *NotifierHealth) { h.Retries++; h.LastError, h.LastErrorAt = err.Error(), now })
		w.retries.Inc()
		if !sleep(ctx, wait) {
			w.countDropped(1)
			return
		}
	}
}

// try is one delivery attempt within the per-try timeout.
func (w *worker) try(ctx context.Context, e Event) (Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	start := time.Now()
	r, err := w.send.Send(ctx, e)
	w.duration.Observe(time.Since(start).Seconds())
	return r, err
}

func (w *worker) fail(e Event, err error) {
	now := w.now()
	w.stats.update(func(h *NotifierHealth) { h.Failed++; h.LastError, h.LastErrorAt = err.Error(), now })
	w.failed.Inc()
	w.log.Warn("alert not delivered", "notifier", w.name, "type", w.typ, "kind", e.Kind, "event", e.ID, "err", err)
}

func (w *worker) countDropped(n int) {
	w.stats.update(func(h *NotifierHealth) { h.Dropped += uint64(n) })
	w.dropped.Add(float64(n))
}

func (w *worker) snapshot() NotifierHealth {
	w.stats.mu.Lock()
	h := w.stats.h
	w.stats.mu.Unlock()
	h.Type, h.Queued = w.typ, w.len()
	return h
}

// retire ends w's goroutine once the delivery in flight, if any, is
// done; the caller has taken the queue.
func (w *worker) retire() { close(w.quit) }
