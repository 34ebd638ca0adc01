package change

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"
)

// RollbackOptions drive Rollback.
type RollbackOptions struct {
	Handlers Handlers
	// Boot: rolling back at boot, before services start.
	Boot bool
	// FromTimer: the timer itself rolls back, so there is none to disarm.
	FromTimer bool
	Log       *slog.Logger
	Notify    func(Notice)
}

// Rollback restores every snapshot of change id byte for byte and runs its
// undo actions, whatever its state, unless it is rolled back already. A
// confirmed change may be rolled back only while it is the latest: an
// older one would overwrite what came after it. Failures do not stop the
// rollback; they are recorded in the manifest and returned joined, with
// the manifest.
func (s *Store) Rollback(ctx context.Context, id, reason string, opt RollbackOptions) (*Manifest, error) {
	unlock, err := s.lock(id, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := s.Load(id)
	if err != nil {
		return nil, err
	}
	if m.State == RolledBack {
		return m, nil
	}
	if m.State == Confirmed {
		if later, err := s.laterInEffect(id); err != nil {
			return m, err
		} else if later != "" {
			return m, fmt.Errorf("change %s was confirmed and %s, still in effect, came after it: roll that one back first", id, later)
		}
	}
	return m, s.rollbackLocked(ctx, m, reason, opt)
}

func (s *Store) rollbackLocked(ctx context.Context, m *Manifest, reason string, opt RollbackOptions) error {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wasConfirmed := m.State == Confirmed
	m.State, m.Reason = RollingBack, reason
	m.event(time.Now(), "rolling back: %s", reason)
	if err := s.save(m); err != nil {
		log.Error("record rollback start", "id", m.ID, "err", err)
	}
	env := Env{Root: s.Root, Boot: opt.Boot}
	var errs []error
	runUndo := func(early bool) {
		for _, a := range slices.Backward(m.Undo) {
			if a.Early != early {
				continue
			}
			h := opt.Handlers[a.Kind]
			if h == nil {
				errs = append(errs, fmt.Errorf("undo %s: no handler", a.Kind))
				continue
			}
			if err := h(ctx, env, a.Data); err != nil {
				errs = append(errs, fmt.Errorf("undo %s: %w", a.Kind, err))
			}
		}
	}
	runUndo(true)
	dir := s.changeDir(m.ID)
	for _, e := range slices.Backward(m.Entries) {
		if err := restore(s.Root, e, filepath.Join(dir, e.Snap)); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", e.Path, err))
		}
	}
	runUndo(false)
	// Check what the restore promised: every path as it was.
	for _, e := range m.Entries {
		if err := matches(s.Root, e, filepath.Join(dir, e.Snap)); err != nil {
			errs = append(errs, fmt.Errorf("after restore: %w", err))
		}
	}
	now := time.Now()
	m.State = RolledBack
	for _, err := range errs {
		m.Errors = append(m.Errors, err.Error())
	}
	if len(errs) == 0 {
		m.event(now, "rolled back: every path restored byte for byte")
	} else {
		m.event(now, "rolled back with %d errors", len(errs))
	}
	if err := s.save(m); err != nil {
		errs = append(errs, err)
	}
	if id, _ := s.Pending(); id == m.ID {
		if err := s.setPending(""); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.noteRollback(RollbackNote{ID: m.ID, Time: now, Reason: reason, Errors: m.Errors}); err != nil {
		errs = append(errs, err)
	}
	if !opt.FromTimer && !wasConfirmed {
		disarm(ctx, m.Timer, m.ID)
	}
	log.Warn("change rolled back", "id", m.ID, "reason", reason, "errors", len(m.Errors))
	if opt.Notify != nil {
		opt.Notify(Notice{ID: m.ID, State: RolledBack, Text: reason})
	}
	return errors.Join(errs...)
}

// Watch waits for change id's deadline and rolls it back unless it was
// confirmed meanwhile: the body of the watchdog process and of the
// systemd timer's service. It returns once the change is final. The
// deadline is read again on every turn, since Apply moves it when it
// starts waiting; the wait is bounded by the deadline plus maxOverrun.
func (s *Store) Watch(ctx context.Context, id string, opt RollbackOptions) (*Manifest, error) {
	const poll = 200 * time.Millisecond
	const maxOverrun = time.Hour
	start := time.Now()
	for {
		m, err := s.Load(id)
		if err != nil {
			return nil, err
		}
		if m.State.Final() {
			return m, nil
		}
		now := time.Now()
		if m.ApplierDead() {
			return s.Rollback(ctx, id, m.applierDied(), opt)
		}
		if !now.Before(m.Deadline) || now.Sub(start) > m.Window+maxOverrun {
			reason := fmt.Sprintf("no confirm within %s", m.Window)
			if m.State == Applying {
				reason = "apply did not finish before its deadline " + m.Deadline.Format(time.TimeOnly)
			}
			return s.Rollback(ctx, id, reason, opt)
		}
		wait := min(poll, m.Deadline.Sub(now))
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// Wait blocks until change id is confirmed or rolled back and returns it.
// Should the timer not fire (it was killed), Wait rolls the change back
// itself a little after the deadline.
func (s *Store) Wait(ctx context.Context, id string, opt RollbackOptions) (*Manifest, error) {
	const poll = 100 * time.Millisecond
	const grace = 5 * time.Second
	for {
		m, err := s.Load(id)
		if err != nil {
			return nil, err
		}
		if m.State.Final() {
			return m, nil
		}
		if time.Now().After(m.Deadline.Add(grace)) && m.State == Waiting {
			return s.Rollback(ctx, id, fmt.Sprintf("no confirm within %s (the rollback timer did not fire)", m.Window), opt)
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// RecoverExpired rolls back a pending change whose deadline passed long
// enough ago that its timer cannot be alive: the host rebooted without a
// boot guard, or the watchdog was killed. It returns the change rolled
// back, or nil.
func (s *Store) RecoverExpired(ctx context.Context, opt RollbackOptions) (*Manifest, error) {
	const grace = 30 * time.Second
	id, err := s.Pending()
	if err != nil || id == "" {
		return nil, err
	}
	m, err := s.Load(id)
	if err != nil {
		return nil, err
	}
	if m.State.Final() {
		return nil, s.setPending("")
	}
	if m.ApplierDead() {
		return s.Rollback(ctx, id, m.applierDied(), opt)
	}
	if time.Now().Before(m.Deadline.Add(grace)) || timerAlive(m.Timer, m.ID) {
		return nil, nil
	}
	return s.Rollback(ctx, id, fmt.Sprintf("no confirm within %s; found expired later (the timer was gone: reboot or killed)", m.Window), opt)
}
