package change

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

// DefaultWindow is how long a change waits for confirm.
const DefaultWindow = 120 * time.Second

// Window bounds: shorter cannot be confirmed by hand, longer leaves a
// lockout (a typo away: 720h) in place for too long.
const (
	MinWindow = 30 * time.Second
	MaxWindow = 30 * time.Minute
)

// stepBudgets bound how long each layer's step may take before the timer
// rolls the change back anyway. The deadline armed before the first step
// is now + the budgets of the layers planned + the window; it moves to
// (steps done + window) as soon as they are. Installing
// unattended-upgrades has a 10-minute timeout of its own, swap creation
// falls back to dd.
var stepBudgets = map[string]time.Duration{
	"sshd":     time.Minute,
	"admin":    2 * time.Minute,
	"updates":  11 * time.Minute,
	"swap":     6 * time.Minute,
	"sysctl":   time.Minute,
	"firewall": time.Minute,
}

// probeBudget bounds the self-probe, which runs after the steps.
const probeBudget = 30 * time.Second

// StepsBudget is how long the steps of layers may take.
func StepsBudget(layers []string) time.Duration {
	d := probeBudget
	for _, l := range layers {
		b, ok := stepBudgets[l]
		if !ok {
			b = 2 * time.Minute
		}
		d += b
	}
	return d
}

// lockWait bounds how long a state transition waits for another to end.
// Steps hold the lock while they run, and the slowest (installing
// unattended-upgrades) is bounded by its own timeout below this.
const lockWait = 15 * time.Minute

// Options drive Apply.
type Options struct {
	// Window is the confirm window (DefaultWindow when 0).
	Window time.Duration
	// Session is SSH_CONNECTION of the applying session, "" if none.
	Session string
	// ConfirmPorts, when set, are the sshd ports a confirming session
	// must arrive on (the new port after a move).
	ConfirmPorts []uint16
	// ConfirmVia, when set, are the addresses a confirming session must
	// come from or arrive on (the VPN after SSH becomes VPN-only).
	ConfirmVia []netip.Prefix
	// AfterStep, when set, is called after each step ran (tests hold the
	// apply there to kill it at a step boundary).
	AfterStep func(layer string)
	// Config names the config file, for the record.
	Config string
	// ConfigEdit, when set, is a quick edit of the config, written once
	// the timer is armed and rolled back with the change (config.go).
	ConfigEdit *ConfigEdit
	// Timer arms the rollback. Required.
	Timer Timer
	// Handlers run undo actions when a step fails.
	Handlers Handlers
	// Probe checks, after every step ran, that sshd still takes new
	// connections; an error rolls the change back. Nil skips it.
	Probe func(ctx context.Context) error
	Log   *slog.Logger
	// Notify is told of every state change (the alert hook).
	Notify func(Notice)
}

// Notice is a change's state change, for alerts.
type Notice struct {
	ID    string
	State State
	Text  string
}

// PendingError refuses a new change while another waits for confirm.
type PendingError struct {
	ID      string
	State   State
	Applier int
}

func (e *PendingError) Error() string {
	if e.State == RollbackFailed || e.State == RollingBack {
		return fmt.Sprintf("change %s is being rolled back and its rollback is not finished: run moat rollback %s (it retries and lists what is left) first", e.ID, e.ID)
	}
	if e.State == Applying {
		return fmt.Sprintf("change %s is being applied by moat apply (pid %d): wait for it to wait for confirm, then confirm or roll it back (moat rollback %s)", e.ID, e.Applier, e.ID)
	}
	return fmt.Sprintf("change %s is waiting for confirm: run moat confirm %s (from a new ssh connection) or moat rollback %s first", e.ID, e.ID, e.ID)
}

// RefusePending returns a *PendingError while a change is applying or
// waiting for confirm: one change at a time, whatever writes. Commands
// that write what a change manages (moat apply firewall) call it first.
func (s *Store) RefusePending() error {
	id, err := s.Pending()
	if err != nil || id == "" {
		return err
	}
	m, err := s.Load(id)
	if err != nil {
		return &PendingError{ID: id}
	}
	if m.State.Final() {
		return nil
	}
	return &PendingError{ID: id, State: m.State, Applier: m.Applier}
}

// RolledBackError reports a change that failed and was rolled back.
type RolledBackError struct {
	ID     string
	Reason string
	// Errors are what went wrong while rolling back, if anything.
	Errors []string
}

func (e *RolledBackError) Error() string {
	s := fmt.Sprintf("change %s rolled back: %s", e.ID, e.Reason)
	if len(e.Errors) > 0 {
		s += fmt.Sprintf(" (rollback incomplete: %v)", e.Errors)
	}
	return s
}

// Apply runs steps as one transaction: it snapshots everything they
// declare, arms the rollback timer, runs them, probes, and returns the
// change waiting for confirm. A step or probe that fails rolls the whole
// change back and returns a *RolledBackError. Errors before the timer is
// armed leave the host untouched.
func (s *Store) Apply(ctx context.Context, steps []*Step, opt Options) (*Manifest, error) {
	if opt.Timer == nil {
		return nil, errors.New("change: no rollback timer")
	}
	if opt.Window <= 0 {
		opt.Window = DefaultWindow
	}
	log := opt.logger()
	if id, err := s.Pending(); err != nil {
		return nil, err
	} else if id != "" {
		if m, err := s.Load(id); err == nil && !m.State.Final() {
			return nil, &PendingError{ID: id, State: m.State, Applier: m.Applier}
		}
	}
	m, err := s.begin(steps, opt)
	if err != nil {
		return nil, err
	}
	log.Info("change snapshotted", "id", m.ID, "paths", len(m.Entries))

	info, err := opt.Timer.Arm(ctx, s, m)
	if err != nil {
		// Nothing changed yet: close the change as rolled back with
		// nothing to restore.
		m.State, m.Reason = RolledBack, "could not arm the rollback timer: "+err.Error()
		m.event(time.Now(), "%s", m.Reason)
		s.save(m)
		s.setPending("")
		return nil, fmt.Errorf("arm the rollback timer: %w (nothing was changed)", err)
	}
	unlock, err := s.lock(m.ID, lockWait)
	if err != nil {
		return nil, err
	}
	if cur, err := s.Load(m.ID); err == nil {
		m = cur
	}
	m.Timer = info
	m.event(time.Now(), "rollback timer armed: %s", info)
	err = s.save(m)
	unlock()
	if err != nil {
		return nil, s.fail(ctx, m.ID, "record the timer: "+err.Error(), opt)
	}
	opt.notify(m.ID, Applying, "applying "+joinLayers(m.Layers))

	if opt.ConfigEdit != nil {
		if err := s.writeConfig(m.ID, opt.ConfigEdit); err != nil {
			var rb *RolledBackError
			if errors.As(err, &rb) {
				return nil, err
			}
			return nil, s.fail(ctx, m.ID, err.Error(), opt)
		}
		if opt.AfterStep != nil {
			opt.AfterStep("config")
		}
	}
	for _, st := range steps {
		if st.Empty() {
			continue
		}
		if err := s.runStep(ctx, m.ID, st, opt); err != nil {
			var rb *RolledBackError
			if errors.As(err, &rb) {
				return nil, err
			}
			return nil, s.fail(ctx, m.ID, fmt.Sprintf("%s: %v", st.Layer, err), opt)
		}
		log.Info("change step applied", "id", m.ID, "layer", st.Layer)
		if opt.AfterStep != nil {
			opt.AfterStep(st.Layer)
		}
	}
	if m, err = s.activate(m.ID); err != nil {
		var rb *RolledBackError
		if errors.As(err, &rb) {
			return nil, err
		}
		return nil, s.fail(ctx, m.ID, err.Error(), opt)
	}
	if opt.AfterStep != nil {
		opt.AfterStep("activated")
	}
	if opt.Probe != nil {
		if err := opt.Probe(ctx); err != nil {
			return nil, s.fail(ctx, m.ID, "self-probe: "+err.Error(), opt)
		}
	}
	unlock, err = s.lock(m.ID, lockWait)
	if err != nil {
		return nil, s.fail(ctx, m.ID, err.Error(), opt)
	}
	defer unlock()
	if m, err = s.Load(m.ID); err != nil {
		return nil, err
	}
	if m.State != Applying {
		return nil, &RolledBackError{ID: m.ID, Reason: m.Reason, Errors: m.Errors}
	}
	now := time.Now()
	if err := stamp(m, now); err != nil {
		unlock()
		return nil, s.fail(ctx, m.ID, err.Error(), opt)
	}
	m.State = Waiting
	m.event(now, "applied and probed; only SSH connections accepted from now on can confirm, until %s", m.Deadline.Format(time.RFC3339))
	if err := s.save(m); err != nil {
		return nil, err
	}
	opt.notify(m.ID, Waiting, "waiting for confirm")
	return m, nil
}

// applying locks change id and loads it, refusing (and unlocking) when
// it is no longer applying: a timer or another moat rolled it back
// meanwhile. On success the caller holds the lock until unlock. The
// manifest is never nil, so that errors can name the change.
func (s *Store) applying(id string) (m *Manifest, unlock func(), err error) {
	unlock, err = s.lock(id, lockWait)
	if err != nil {
		return &Manifest{ID: id}, nil, err
	}
	m, err = s.Load(id)
	if err != nil {
		unlock()
		return &Manifest{ID: id}, nil, err
	}
	if m.State != Applying {
		unlock()
		return m, nil, &RolledBackError{ID: id, Reason: m.Reason, Errors: m.Errors}
	}
	return m, unlock, nil
}

// activate records that every step ran: the deadline moves to now +
// window.
func (s *Store) activate(id string) (*Manifest, error) {
	m, unlock, err := s.applying(id)
	if err != nil {
		return m, err
	}
	defer unlock()
	now := time.Now()
	m.Deadline = now.Add(m.Window)
	m.event(now, "every step ran; rollback at %s unless confirmed", m.Deadline.Format(time.RFC3339))
	return m, s.save(m)
}

// stamp records the moment a confirming connection must postdate: after
// the steps and the self-probe, so that sshd's re-execution on reload is
// over (the probe reached it) before the clock starts. It returns once
// the clock tick of the stamp is over, so that every connection accepted
// after the change is seen waiting starts in a later tick: the rule
// (start > stamp) then refuses only connections older than "waiting".
func stamp(m *Manifest, now time.Time) error {
	ticks, err := host.BootTicks()
	if err != nil {
		return fmt.Errorf("read the boot clock: %w", err)
	}
	m.Activated, m.ActivatedTicks, m.BootID = now, ticks, host.New("").BootID()
	for range 100 {
		if t, err := host.BootTicks(); err != nil || t > ticks {
			break
		}
		time.Sleep(time.Second / host.ClockTicks / 4)
	}
	return nil
}

// begin creates the change directory, snapshots every declared path and
// stores the Final files. The host is not touched.
func (s *Store) begin(steps []*Step, opt Options) (*Manifest, error) {
	now := time.Now()
	m := &Manifest{
		ID: newID(now), Created: now, Root: s.Root, Config: opt.Config, Session: opt.Session,
		ConfirmPorts: opt.ConfirmPorts, ConfirmVia: opt.ConfirmVia, State: Applying, Window: opt.Window,
		Applier: os.Getpid(),
	}
	m.ApplierStart, _ = host.New("").ProcStart(m.Applier)
	var layers []string
	for _, st := range steps {
		if !st.Empty() {
			layers = append(layers, st.Layer)
		}
	}
	m.Deadline = now.Add(StepsBudget(layers) + opt.Window)
	dir := s.changeDir(m.ID)
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", s.dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	seen := map[string]bool{}
	n := 0
	for _, st := range steps {
		if st.Empty() {
			continue
		}
		m.Layers = append(m.Layers, st.Layer)
		for _, line := range st.Summary {
			m.Summary = append(m.Summary, st.Layer+": "+line)
		}
		var paths []declared
		for _, d := range st.paths() {
			if err := validPath(d.path); err != nil {
				return nil, s.abandon(m, fmt.Errorf("%s: %w", st.Layer, err))
			}
			// Parents that do not exist yet are created by the writes:
			// declare them too, so a rollback removes them.
			paths = append(paths, s.missingParents(d.path)...)
			paths = append(paths, d)
		}
		for _, d := range paths {
			if seen[d.path] {
				continue
			}
			seen[d.path] = true
			n++
			snap := filepath.Join("files", fmt.Sprintf("%04d", n))
			e, err := capture(s.Root, d, filepath.Join(dir, snap))
			if err != nil {
				return nil, s.abandon(m, fmt.Errorf("%s: %w", st.Layer, err))
			}
			if e.Kind == "file" {
				e.Snap = snap
			}
			m.Entries = append(m.Entries, e)
		}
		for _, f := range st.Final {
			n++
			snap := filepath.Join("final", fmt.Sprintf("%04d", n))
			if err := writeAtomic(filepath.Join(dir, snap), f.Data, 0o600, 0, 0, time.Time{}); err != nil {
				return nil, s.abandon(m, err)
			}
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			m.Final = append(m.Final, FinalFile{Path: f.Path, Mode: unixMode(mode), Owner: f.Owner, Group: f.Group, Snap: snap})
		}
		m.Confirm = append(m.Confirm, st.Confirm...)
	}
	if err := s.recordConfig(m, opt.ConfigEdit); err != nil {
		return nil, s.abandon(m, err)
	}
	m.event(now, "snapshotted %d paths for %s", len(m.Entries), joinLayers(m.Layers))
	if err := s.save(m); err != nil {
		return nil, s.abandon(m, err)
	}
	if err := s.setPending(m.ID); err != nil {
		return nil, s.abandon(m, err)
	}
	return m, nil
}

// missingParents lists the ancestors of p that do not exist under the
// root, outermost first.
func (s *Store) missingParents(p string) []declared {
	var out []declared
	for dir := filepath.Dir(p); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(HostPath(s.Root, dir)); err == nil {
			break
		}
		out = append(out, declared{path: dir, dir: true})
	}
	slices.Reverse(out)
	return out
}

// abandon removes a change that never armed its timer: nothing changed.
func (s *Store) abandon(m *Manifest, err error) error {
	os.RemoveAll(s.changeDir(m.ID))
	return err
}

// runStep records the step's undo actions, then runs it, holding the
// change's lock so that a timer firing meanwhile waits for the step to
// end rather than restoring under it.
func (s *Store) runStep(ctx context.Context, id string, st *Step, opt Options) error {
	m, unlock, err := s.applying(id)
	if err != nil {
		return err
	}
	defer unlock()
	m.Undo = append(m.Undo, st.Undo...)
	m.event(time.Now(), "applying %s", st.Layer)
	if err := s.save(m); err != nil {
		return err
	}
	w := newWriter(s.Root, m, st)
	if st.Apply != nil {
		err = st.Apply(ctx, w)
	} else {
		err = w.WriteAll(st.Files)
	}
	// What the step left is what a rollback reverts (revert.go).
	rerr := s.recordAfter(m, st)
	if serr := s.save(m); rerr == nil {
		rerr = serr
	}
	if err == nil {
		err = rerr
	}
	return err
}

// fail rolls the change back after a failed step or probe.
func (s *Store) fail(ctx context.Context, id, reason string, opt Options) error {
	opt.logger().Error("change failed, rolling back", "id", id, "reason", reason)
	m, err := s.Rollback(ctx, id, reason, RollbackOptions{Handlers: opt.Handlers, Log: opt.Log, Notify: opt.Notify})
	if err != nil && m == nil {
		return fmt.Errorf("change %s failed (%s) and its rollback failed: %w", id, reason, err)
	}
	return &RolledBackError{ID: id, Reason: m.Reason, Errors: m.Errors}
}

func (o Options) logger() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

func (o Options) notify(id string, st State, text string) {
	if o.Notify != nil {
		o.Notify(Notice{ID: id, State: st, Text: text})
	}
}

func joinLayers(l []string) string {
	if len(l) == 0 {
		return "nothing"
	}
	s := l[0]
	for _, x := range l[1:] {
		s += ", " + x
	}
	return s
}

// Writer is what a step's Apply writes through: only paths the step
// declared, so that everything written has a snapshot.
type Writer struct {
	root     string
	files    map[string]File
	dirs     map[string]Dir
	declared map[string]bool
}

func newWriter(root string, m *Manifest, st *Step) *Writer {
	w := &Writer{root: root, files: map[string]File{}, dirs: map[string]Dir{}, declared: map[string]bool{}}
	for _, e := range m.Entries {
		w.declared[e.Path] = true
	}
	for _, f := range st.Files {
		w.files[f.Path] = f
	}
	for _, d := range st.Dirs {
		w.dirs[d.Path] = d
	}
	return w
}

// Env is the step's environment.
func (w *Writer) Env() Env { return Env{Root: w.root} }

// Write writes f, which must be one of the step's Files.
func (w *Writer) Write(f File) error {
	if _, ok := w.files[f.Path]; !ok || !w.declared[f.Path] {
		return fmt.Errorf("write %s: not declared by the step (no snapshot)", f.Path)
	}
	return WriteFile(w.root, f)
}

// WriteAll writes files in order.
func (w *Writer) WriteAll(files []File) error {
	for _, f := range files {
		if err := w.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// Mkdir creates one of the step's Dirs.
func (w *Writer) Mkdir(d Dir) error {
	if _, ok := w.dirs[d.Path]; !ok || !w.declared[d.Path] {
		return fmt.Errorf("mkdir %s: not declared by the step (no snapshot)", d.Path)
	}
	return Mkdir(w.root, d)
}
