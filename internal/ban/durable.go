package ban

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// A store whose disk fails (full, read-only, gone) must not stop the
// guard: the kernel already holds the decision, and the store is only its
// record. Decisions then live in memory (pendingState), every later call
// queues behind them so their order holds, and retryLoop writes them with
// backoff once the disk allows. Health reports it for `moat status`.

// Tombstone kinds: why a prefix's ban ended.
const (
	tombUnban  = "unban"
	tombExpire = "expire"
)

// pending is the latest unwritten word on one prefix.
type pending struct {
	ban    Ban    // when kind is ""
	kind   string // "" (a ban to write), tombUnban or tombExpire
	at     time.Time
	extend bool // ban: the row exists; only move its expiry
	seq    uint64
}

type pendingState struct {
	m       map[netip.Prefix]pending
	history []Ban // new offences to record, in order
	seq     uint64
	err     error // the last write error
	since   time.Time
	retries int
}

// Health is the store's state for `moat status` and alerts.
type Health struct {
	// Unsaved counts decisions (bans, unbans, expiries) kept in memory
	// because writing them failed; the kernel holds the bans already.
	Unsaved int `json:"unsaved"`
	// Err is the last write error while Unsaved > 0.
	Err string `json:"error,omitempty"`
	// Since is when writes started failing.
	Since time.Time `json:"since,omitzero"`
	// Retries counts the attempts to write them so far.
	Retries int `json:"retries,omitempty"`
	// Recovered says what Open did with a damaged database.
	Recovered string `json:"recovered,omitempty"`
}

// Health returns the store's write health.
func (s *Store) Health() Health {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := Health{Unsaved: len(s.pend.m), Recovered: s.recovered}
	if len(s.pend.m)+len(s.pend.history) > 0 && s.pend.err != nil {
		h.Err, h.Since, h.Retries = s.pend.err.Error(), s.pend.since, s.pend.retries
	}
	return h
}

// isStorageError reports whether a write failed for the disk's or the
// database's sake, rather than the caller's (a cancelled context, a
// closed store).
func isStorageError(err error) bool {
	return err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func (s *Store) pendingLen() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.pend.m) + len(s.pend.history)
}

// failed records a write error and wakes the retry loop.
func (s *Store) failed(err error) {
	s.mu.Lock()
	if s.pend.err == nil || len(s.pend.m)+len(s.pend.history) == 0 {
		s.pend.since = s.now()
	}
	s.pend.err = err
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Store) queue(p netip.Prefix, e pending) {
	if s.pend.m == nil {
		s.pend.m = map[netip.Prefix]pending{}
	}
	s.pend.seq++
	e.seq = s.pend.seq
	if old, ok := s.pend.m[p]; ok && e.kind == "" && old.kind == "" && !old.extend {
		e.extend = false // the row was never written: still an insert
	}
	s.pend.m[p] = e
}

// banInMemory is Ban without the database: the same decisions, from the
// memory mirror, queued for writing.
func (s *Store) banInMemory(bans []Ban) []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var changes []Change
	for _, b := range bans {
		exp := msToNano(timeToMs(b.Expires))
		old, ok := s.active.get(b.Prefix)
		switch {
		case !ok || (old != 0 && old <= now.UnixNano()):
			if b.Offence <= 0 {
				b.Offence = int(s.history[keyOf(b.Prefix)]) + 1
			}
			s.history[keyOf(b.Prefix)]++
			s.pend.history = append(s.pend.history, b)
			s.active.set(b.Prefix, exp)
			delete(s.tombs, b.Prefix)
			s.queue(b.Prefix, pending{ban: b, at: now})
			changes = append(changes, Change{Ban: b})
		case old != 0 && (exp == 0 || exp > old):
			s.active.set(b.Prefix, exp)
			s.queue(b.Prefix, pending{ban: b, at: now, extend: true})
			changes = append(changes, Change{Ban: b, Extended: true})
		}
	}
	s.kickRetry()
	return changes
}

func (s *Store) kickRetry() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// unbanInMemory is Unban without the database.
func (s *Store) unbanInMemory(p netip.Prefix, kind string) []Ban {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var removed []Ban
	for _, q := range s.active.overlapping(p) {
		exp, _ := s.active.get(q)
		b := Ban{Prefix: q}
		if pe, ok := s.pend.m[q]; ok && pe.kind == "" {
			b = pe.ban
		} else if exp != 0 {
			b.Expires = time.Unix(0, exp)
		}
		s.active.delete(q)
		s.tombs[q] = struct{}{}
		s.queue(q, pending{kind: kind, at: now})
		removed = append(removed, b)
	}
	s.kickRetry()
	return removed
}

// expireInMemory is Expire without the database.
func (s *Store) expireInMemory(now time.Time) []Ban {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed []Ban
	ended := map[netip.Prefix]int64{}
	for q, exp := range s.active.all() {
		if exp != 0 && exp <= now.UnixNano() {
			ended[q] = exp
		}
	}
	for q, exp := range ended {
		b := Ban{Prefix: q, Expires: time.Unix(0, exp)}
		if pe, ok := s.pend.m[q]; ok && pe.kind == "" {
			b = pe.ban
		}
		s.active.delete(q)
		s.tombs[q] = struct{}{}
		s.queue(q, pending{kind: tombExpire, at: now})
		removed = append(removed, b)
	}
	s.kickRetry()
	return removed
}

// overlayPending applies the unwritten decisions to bans read from the
// database.
func (s *Store) overlayPending(bans []Ban) []Ban {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.pend.m) == 0 {
		return bans
	}
	now := s.now()
	seen := map[netip.Prefix]bool{}
	out := bans[:0]
	for _, b := range bans {
		pe, ok := s.pend.m[b.Prefix]
		switch {
		case !ok:
			out = append(out, b)
		case pe.kind != "":
			// unbanned or expired meanwhile
		case pe.extend:
			b.Jail, b.Reason, b.Origin, b.Expires, b.Failures = pe.ban.Jail, pe.ban.Reason, pe.ban.Origin, pe.ban.Expires, pe.ban.Failures
			out = append(out, b)
		default:
			out = append(out, pe.ban)
		}
		seen[b.Prefix] = true
	}
	for p, pe := range s.pend.m {
		if seen[p] || pe.kind != "" {
			continue
		}
		if _, ok := pe.ban.Remaining(now); ok {
			out = append(out, pe.ban)
		}
	}
	slices.SortFunc(out, func(a, b Ban) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Prefix.String(), b.Prefix.String()))
	})
	return out
}

// flush writes the decisions kept in memory in one transaction.
func (s *Store) flush() error {
	s.mu.RLock()
	snap := make(map[netip.Prefix]pending, len(s.pend.m))
	for p, e := range s.pend.m {
		snap[p] = e
	}
	hist := slices.Clone(s.pend.history)
	s.mu.RUnlock()
	if len(snap) == 0 && len(hist) == 0 {
		return nil
	}
	o := &op{run: func(ctx context.Context) error {
		for p, e := range snap {
			key := p.String()
			switch e.kind {
			case "":
				b := e.ban
				args := []any{key, b.Jail, b.Reason, string(b.Origin), timeToMs(b.Created), timeToMs(b.Expires), b.Failures, b.Offence}
				if e.extend {
					res, err := s.stmts.extend.ExecContext(ctx, b.Jail, b.Reason, string(b.Origin), timeToMs(b.Expires), b.Failures, key)
					if err != nil {
						return err
					}
					if n, _ := res.RowsAffected(); n > 0 {
						continue
					}
				}
				if _, err := s.stmts.put.ExecContext(ctx, args...); err != nil {
					return err
				}
				if _, err := s.stmts.untomb.ExecContext(ctx, key); err != nil {
					return err
				}
			default:
				if _, err := s.w.ExecContext(ctx, `DELETE FROM bans WHERE prefix = ?`, key); err != nil {
					return err
				}
				if _, err := s.stmts.tomb.ExecContext(ctx, key, e.at.UnixMilli(), e.kind); err != nil {
					return err
				}
			}
		}
		for _, b := range hist {
			if _, err := s.stmts.record.ExecContext(ctx, b.Prefix.String(), b.Jail, b.Reason, string(b.Origin),
				timeToMs(b.Created), timeToMs(b.Expires), b.Failures, b.Offence); err != nil {
				return err
			}
		}
		return nil
	}}
	o.apply = func() {
		// Runs under s.mu: drop what was written, unless a newer word on
		// the same prefix came meanwhile.
		for p, e := range snap {
			if cur, ok := s.pend.m[p]; ok && cur.seq == e.seq {
				delete(s.pend.m, p)
			}
		}
		s.pend.history = s.pend.history[len(hist):]
		if len(s.pend.m)+len(s.pend.history) == 0 {
			s.pend.err, s.pend.retries, s.pend.history = nil, 0, nil
		}
	}
	if err := s.do(context.Background(), o); err != nil {
		return fmt.Errorf("write %d decisions kept in memory: %w", len(snap)+len(hist), err)
	}
	return nil
}

// retryLoop writes the decisions kept in memory, with backoff, until the
// store closes.
func (s *Store) retryLoop() {
	for {
		select {
		case <-s.quit:
			return
		case <-s.kick:
		}
		wait := s.retryMin
		for s.pendingLen() > 0 {
			t := time.NewTimer(wait)
			select {
			case <-s.quit:
				t.Stop()
				return
			case <-t.C:
			}
			err := s.flush()
			if err == nil {
				break
			}
			s.mu.Lock()
			s.pend.err = err
			s.pend.retries++
			s.mu.Unlock()
			wait = min(2*wait, s.retryMax)
		}
	}
}

// Tombstoned reports whether p's ban was lifted or ended (so a kernel
// element for it is a leftover, not a ban to adopt).
func (s *Store) Tombstoned(p netip.Prefix) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.tombs[p]
	return ok
}

// ForgetTombstones drops the tombstones of prefixes the kernel no longer
// holds: they have done their work.
func (s *Store) ForgetTombstones(ctx context.Context, inKernel func(netip.Prefix) bool) error {
	s.mu.RLock()
	var gone []netip.Prefix
	for p := range s.tombs {
		if !inKernel(p) {
			gone = append(gone, p)
		}
	}
	s.mu.RUnlock()
	if len(gone) == 0 || s.pendingLen() > 0 {
		return nil
	}
	o := &op{run: func(ctx context.Context) error {
		for _, p := range gone {
			if _, err := s.stmts.untomb.ExecContext(ctx, p.String()); err != nil {
				return err
			}
		}
		return nil
	}, apply: func() {
		for _, p := range gone {
			delete(s.tombs, p)
		}
	}}
	if err := s.do(ctx, o); err != nil {
		return fmt.Errorf("forget tombstones: %w", err)
	}
	return nil
}

// plan returns, from memory, the bans of a batch that would change the
// store (new, or ending later than the one in force), one per prefix with
// the latest expiry: what the kernel must get before the store is written.
func (s *Store) plan(bans []Ban, now time.Time) []Ban {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type want struct {
		b   Ban
		exp int64
	}
	order := []netip.Prefix{}
	m := map[netip.Prefix]want{}
	for _, b := range bans {
		p, ok := CanonicalPrefix(b.Prefix)
		if !ok {
			continue
		}
		b.Prefix = p
		exp := msToNano(timeToMs(b.Expires))
		cur, seen := m[p]
		if !seen {
			old, ok := s.active.get(p)
			if ok && (old == 0 || old > now.UnixNano()) {
				cur = want{exp: old}
			} else {
				cur = want{exp: -1} // nothing in force
			}
		}
		later := cur.exp == -1 || (cur.exp != 0 && (exp == 0 || exp > cur.exp))
		if later {
			m[p] = want{b: b, exp: exp}
			if !seen {
				order = append(order, p)
			}
		} else if !seen {
			m[p] = cur
			order = append(order, p)
		}
	}
	var out []Ban
	for _, p := range order {
		if w := m[p]; w.b.Prefix.IsValid() {
			out = append(out, w.b)
		}
	}
	return out
}
