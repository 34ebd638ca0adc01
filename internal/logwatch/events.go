package logwatch

import (
	"context"
	"sync/atomic"
	"time"
)

// maxEventBatch bounds one batch of events.
const maxEventBatch = 256

// Events is a source fed in-process (by the gateway): Push never blocks;
// when the buffer is full the event is dropped and counted. Events have
// no position: they are not replayed after a restart.
type Events struct {
	name    string
	maxLine int
	ch      chan Line
	dropped atomic.Uint64
}

// NewEvents returns an Events source named name that buffers up to
// capacity events (at least 1).
func NewEvents(name string, capacity int) *Events {
	return &Events{name: name, maxLine: DefaultMaxLine, ch: make(chan Line, max(capacity, 1))}
}

// Push queues a copy of text, cut at DefaultMaxLine, with fields, which
// the source owns from now on. It reports false when the event was
// dropped because the buffer is full.
func (e *Events) Push(text []byte, fields map[string]string) bool {
	l := Line{Source: e.name, Time: time.Now(), Fields: fields}
	if len(text) > e.maxLine {
		text, l.Truncated = text[:e.maxLine], true
	}
	l.Text = append([]byte(nil), text...)
	select {
	case e.ch <- l:
		return true
	default:
		e.dropped.Add(1)
		return false
	}
}

// Dropped returns how many events were dropped so far.
func (e *Events) Dropped() uint64 { return e.dropped.Load() }

// Run delivers pushed events until ctx is cancelled; what is still
// buffered then is not delivered.
func (e *Events) Run(ctx context.Context, h Handler) error {
	batch := make([]Line, 0, maxEventBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-e.ch:
			batch = append(batch, l)
		}
	more:
		for len(batch) < maxEventBatch {
			select {
			case l := <-e.ch:
				batch = append(batch, l)
			default:
				break more
			}
		}
		if err := h(batch); err != nil {
			return err
		}
		clear(batch)
		batch = batch[:0]
	}
}
