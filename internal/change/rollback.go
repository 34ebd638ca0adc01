package change

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	// RetryEvery is the first wait before the watchdog retries a
	// rollback that failed; it doubles up to a minute (2s when 0).
	RetryEvery time.Duration
}

// Rollback undoes change id's own edits and runs its undo actions,
// whatever its state, unless it is rolled back already. Each path is
// reverted against what it holds now (see revert): others' edits made
// since stay. A confirmed change may be rolled back only while it is the
// latest: an older one would overwrite what came after it. Failures do
// not stop the rollback: a path that fails leaves the change in
// RollbackFailed (still pending), to be retried, and is returned in a
// *RollbackFailedError with the manifest.
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

// RollbackFailedError is a rollback that left paths it could not
// restore; the change stays in RollbackFailed.
type RollbackFailedError struct {
	ID     string
	Failed []string // "path: error", and undo actions that failed
}

func (e *RollbackFailedError) Error() string {
	return fmt.Sprintf("change %s: rollback incomplete, %d failed (%s); it stays %s and is retried by its watchdog, or run moat rollback %s again",
		e.ID, len(e.Failed), strings.Join(e.Failed, "; "), RollbackFailed, e.ID)
}

func (s *Store) rollbackLocked(ctx context.Context, m *Manifest, reason string, opt RollbackOptions) error {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	retry := m.State == RollbackFailed || m.State == RollingBack
	if m.From == "" || !retry {
		m.From = m.State
	}
	if !retry || m.Reason == "" {
		m.Reason = reason
	}
	m.State = RollingBack
	m.Attempts++
	if retry {
		m.event(time.Now(), "rolling back again (attempt %d): %s", m.Attempts, reason)
	} else {
		m.event(time.Now(), "rolling back: %s", reason)
	}
	if err := s.save(m); err != nil {
		log.Error("record rollback start", "id", m.ID, "err", err)
	}
	env := Env{Root: s.Root, Boot: opt.Boot}
	var failed []string
	runUndo := func(early bool) {
		for _, a := range slices.Backward(m.Undo) {
			if a.Early != early {
				continue
			}
			h := opt.Handlers[a.Kind]
			if h == nil {
				failed = append(failed, fmt.Sprintf("undo %s: no handler", a.Kind))
				continue
			}
			if err := h(ctx, env, a.Data); err != nil {
				failed = append(failed, fmt.Sprintf("undo %s: %v", a.Kind, err))
			}
		}
	}
	runUndo(true)
	out := make([]PathOutcome, len(m.Entries))
	// The account databases merge under lckpwdf's lock; the lock file
	// itself (useradd may have created it) is reverted after.
	unlockPw := func() {}
	if slices.ContainsFunc(m.Entries, func(e Entry) bool { return accountDB(e.Path) != "" }) {
		var err error
		if unlockPw, err = lockAccounts(s.Root); err != nil {
			log.Warn("rollback without the account databases' lock", "id", m.ID, "err", err)
		}
	}
	lockIdx := -1
	for i := range slices.Backward(m.Entries) {
		if m.Entries[i].Path == pwdLock {
			lockIdx = i
			continue
		}
		out[i] = s.revert(m, i)
	}
	unlockPw()
	if lockIdx >= 0 {
		out[lockIdx] = s.revert(m, lockIdx)
	}
	if m.ConfigEdit != nil {
		out = append(out, s.revertConfig(m))
	}
	for _, o := range out {
		if o.Result == Failed {
			failed = append(failed, o.Path+": "+o.Error)
		}
	}
	runUndo(false)
	m.Outcome = out
	now := time.Now()
	m.Errors = failed
	noteReason := m.Reason
	if m.ConfigEdit != nil {
		noteReason += configNote(out[len(out)-1])
	}
	if len(failed) == 0 {
		m.State = RolledBack
		m.event(now, "rolled back: %s", outcomeSummary(out))
	} else {
		m.State = RollbackFailed
		m.event(now, "rollback incomplete: %d failed (%s); retried by the watchdog or moat rollback", len(failed), strings.Join(failed, "; "))
		noteReason = fmt.Sprintf("%s; ROLLBACK INCOMPLETE: %d failed, retrying (moat rollback %s)", m.Reason, len(failed), m.ID)
	}
	if len(m.Events) > maxEvents {
		m.Events = append(m.Events[:1], m.Events[len(m.Events)-maxEvents+1:]...)
	}
	var errs []error
	if err := s.save(m); err != nil {
		errs = append(errs, err)
	}
	// The note is what moat status shows and the daemon alerts on: written
	// on the first failure and on the end, not on every retry that fails
	// the same way (the watchdog retries for hours). Before the pending
	// marker goes, so whoever sees it gone finds the note.
	if m.State == RolledBack || !retry {
		if err := s.noteRollback(RollbackNote{ID: m.ID, Time: now, Reason: noteReason, Errors: m.Errors, State: m.State}); err != nil {
			errs = append(errs, err)
		}
	}
	if m.State == RolledBack {
		if id, _ := s.Pending(); id == m.ID {
			if err := s.setPending(""); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if m.State == RolledBack && !opt.FromTimer && m.From != Confirmed {
		disarm(ctx, m.Timer, m.ID)
	}
	if m.State == RolledBack {
		log.Warn("change rolled back", "id", m.ID, "reason", m.Reason, "outcome", outcomeSummary(out))
	} else {
		log.Error("change rollback incomplete", "id", m.ID, "reason", m.Reason, "failed", len(failed))
	}
	if opt.Notify != nil && (m.State == RolledBack || !retry) {
		opt.Notify(Notice{ID: m.ID, State: m.State, Text: noteReason})
	}
	if len(failed) > 0 {
		errs = append([]error{&RollbackFailedError{ID: m.ID, Failed: failed}}, errs...)
	}
	return errors.Join(errs...)
}

// maxEvents bounds a change's history: a rollback retried for hours must
// not grow its manifest without end.
const maxEvents = 200

// outcomeSummary counts a rollback's outcomes: "every path restored byte
// for byte" only when that is what happened.
func outcomeSummary(out []PathOutcome) string {
	count := map[string]int{}
	for _, o := range out {
		count[o.Result]++
	}
	if count[Restored]+count[Untouched] == len(out) {
		if count[Restored] == 0 {
			return fmt.Sprintf("nothing to restore (%d paths as they were)", len(out))
		}
		return fmt.Sprintf("every path moat changed restored byte for byte (%d restored, %d it had not changed)", count[Restored], count[Untouched])
	}
	var parts []string
	for _, k := range []string{Restored, Merged, Kept, Failed, Untouched} {
		if count[k] == 0 {
			continue
		}
		what := map[string]string{
			Restored:  "restored byte for byte",
			Merged:    "merged (moat's edits reverted, others' kept)",
			Kept:      "kept as they are now",
			Failed:    "failed",
			Untouched: "not changed by moat",
		}[k]
		parts = append(parts, fmt.Sprintf("%d %s", count[k], what))
	}
	return strings.Join(parts, ", ")
}

// Report says what the last rollback of m did, for moat rollback and
// moat change show: a summary line, then each path that was not simply
// restored, with what was kept and why.
func (m *Manifest) Report() string {
	var b strings.Builder
	switch m.State {
	case RolledBack:
		fmt.Fprintf(&b, "change %s rolled back (%s): %s\n", m.ID, m.Reason, outcomeSummary(m.Outcome))
	case RollbackFailed:
		fmt.Fprintf(&b, "change %s: rollback INCOMPLETE (state %s, attempt %d): %s\n", m.ID, m.State, m.Attempts, outcomeSummary(m.Outcome))
		fmt.Fprintf(&b, "  its watchdog retries; fix what failed and run moat rollback %s again\n", m.ID)
	default:
		fmt.Fprintf(&b, "change %s is %s\n", m.ID, m.State)
	}
	for _, o := range m.Outcome {
		// A plain restore needs no line; one that dropped or kept
		// someone's edit does.
		if (o.Result == Restored || o.Result == Untouched) &&
			!slices.ContainsFunc(o.Notes, func(n Note) bool { return n.Kind != "reverted" }) {
			continue
		}
		fmt.Fprintf(&b, "  %-8s %s", o.Result, o.Path)
		if o.Error != "" {
			fmt.Fprintf(&b, ": %s", o.Error)
		}
		b.WriteByte('\n')
		for _, n := range o.Notes {
			fmt.Fprintf(&b, "           %s: %s\n", n.Kind, n.Text)
		}
		if o.Aside != "" {
			fmt.Fprintf(&b, "           the version before the change is in %s\n", o.Aside)
		}
	}
	for _, e := range m.Errors {
		if strings.HasPrefix(e, "undo ") {
			fmt.Fprintf(&b, "  failed   %s\n", e)
		}
	}
	return b.String()
}

// Watch waits for change id's deadline and rolls it back unless it was
// confirmed meanwhile: the body of the watchdog process and of the
// systemd timer's service. It returns once the change is final. The
// deadline is read again on every turn, since Apply moves it when it
// starts waiting; the wait is bounded by the deadline plus maxOverrun.
func (s *Store) Watch(ctx context.Context, id string, opt RollbackOptions) (*Manifest, error) {
	const poll = 200 * time.Millisecond
	const maxOverrun = time.Hour
	const maxBackoff = time.Minute
	const retryFor = 24 * time.Hour
	start := time.Now()
	backoff := opt.RetryEvery
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	var lastTry time.Time
	for {
		m, err := s.Load(id)
		if err != nil {
			return nil, err
		}
		if m.State.Final() {
			return m, nil
		}
		now := time.Now()
		if m.State == RollbackFailed {
			// Retried with backoff for as long as retryFor: the operator
			// may make /etc writable again, or fix what was refused.
			if now.Sub(start) > retryFor {
				return m, fmt.Errorf("change %s: rollback still incomplete after %s of retries: run moat rollback %s", id, retryFor, id)
			}
			if now.Sub(lastTry) >= backoff {
				m, _ = s.Rollback(ctx, id, "retry", opt)
				lastTry, backoff = time.Now(), min(backoff*2, maxBackoff)
				if m != nil && m.State.Final() {
					return m, nil
				}
			}
			select {
			case <-ctx.Done():
				return m, ctx.Err()
			case <-time.After(poll):
			}
			continue
		}
		if m.ApplierDead() {
			m, err := s.Rollback(ctx, id, m.applierDied(), opt)
			if m != nil && m.State == RollbackFailed {
				lastTry = time.Now()
				continue
			}
			return m, err
		}
		if !now.Before(m.Deadline) || now.Sub(start) > m.Window+maxOverrun {
			reason := fmt.Sprintf("no confirm within %s", m.Window)
			if m.State == Applying {
				reason = "apply did not finish before its deadline " + m.Deadline.Format(time.TimeOnly)
			}
			m, err := s.Rollback(ctx, id, reason, opt)
			if m != nil && m.State == RollbackFailed {
				lastTry = time.Now()
				continue
			}
			return m, err
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
		if m.State.Final() || m.State == RollbackFailed {
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
