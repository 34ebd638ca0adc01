package alert

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// A Sender delivers one event to one receiver, once: no queue, no retry.
// The Dispatcher adds those around it.
type Sender interface {
	Send(ctx context.Context, e Event) (Reply, error)
}

// Reply is what a receiver answered to one delivery.
type Reply struct {
	Proto string // "HTTP" or "SMTP"
	Code  int    // HTTP status or SMTP reply code; 0 when nothing came back
	Text  string // body excerpt or SMTP reply text, one line
}

func (r Reply) String() string {
	if r.Code == 0 {
		return "no answer"
	}
	if r.Text == "" {
		return fmt.Sprintf("%s %d", r.Proto, r.Code)
	}
	return fmt.Sprintf("%s %d: %s", r.Proto, r.Code, r.Text)
}

// sendError is a failed delivery the receiver answered: the answer, and
// whether trying again may help.
type sendError struct {
	reply      Reply
	permanent  bool
	retryAfter time.Duration // the receiver's Retry-After, 0 when absent
	err        error
}

func (e *sendError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.reply.String()
}

func (e *sendError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying: a configuration mistake or a
// refusal by the receiver.
func permanent(err error) error { return &sendError{permanent: true, err: err} }

// Retry is the retry policy of a notifier: exponential backoff with
// jitter on timeouts, network errors, 5xx and 429 (honouring Retry-After);
// no retry on other 4xx or SMTP 5xx.
type Retry struct {
	Attempts int           // tries per event, the first included; default 5
	Base     time.Duration // first backoff, doubling per try; default 1s
	Max      time.Duration // backoff cap; default 1m
	// MaxWait caps a Retry-After the receiver asks for; a longer wait
	// fails the event instead. Default 5m.
	MaxWait time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.Base <= 0 {
		r.Base = time.Second
	}
	if r.Max <= 0 {
		r.Max = time.Minute
	}
	if r.MaxWait <= 0 {
		r.MaxWait = 5 * time.Minute
	}
	return r
}

// next returns how long to wait before try attempt+1 after attempt
// failed with err, and false when the event should be given up.
func (r Retry) next(attempt int, err error) (time.Duration, error) {
	var se *sendError
	if errors.As(err, &se) {
		if se.permanent {
			return 0, err
		}
		if se.retryAfter > r.MaxWait {
			return 0, fmt.Errorf("%w (the receiver asks to wait %s, more than %s)", err, se.retryAfter, r.MaxWait)
		}
	}
	if attempt >= r.Attempts {
		return 0, fmt.Errorf("%w (gave up after %d tries)", err, attempt)
	}
	if se != nil && se.retryAfter > 0 {
		return se.retryAfter, nil
	}
	return r.backoff(attempt), nil
}

// backoff is Base·2^(attempt-1), capped at Max, with "equal jitter": a
// random point in its upper half, so retries of many notifiers spread out
// yet never come sooner than half the nominal delay.
func (r Retry) backoff(attempt int) time.Duration {
	d := r.Max
	if shift := attempt - 1; shift < 30 && r.Base<<shift > 0 && r.Base<<shift < r.Max {
		d = r.Base << shift
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits d or until ctx ends, reporting whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
