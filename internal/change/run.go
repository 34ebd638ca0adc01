package change

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moat-sh/moat/internal/term"
)

// RunOptions drive Run: moat apply's whole flow once the layers are
// planned.
type RunOptions struct {
	Steps []*Step
	// Window is the confirm window: MinWindow..MaxWindow (CheckWindow).
	Window time.Duration
	// Yes confirms at once once the self-probe passed (automation).
	Yes bool
	// Session is the applying session's SSH_CONNECTION, for the record.
	Session string
	// ConfirmPorts and ConfirmVia: see Options.
	ConfirmPorts []uint16
	ConfirmVia   []netip.Prefix
	Config       string
	// ConfigEdit: see Options.
	ConfigEdit *ConfigEdit
	// Moat is the absolute path of the moat binary (the timer runs it).
	Moat string
	// SystemdPID1: systemd runs the live host, so the timer is a
	// transient systemd timer and a boot guard is installed.
	SystemdPID1 bool
	// Probe is the self-probe after the steps; nil skips it.
	Probe *ProbePlan
	// Hint is how the operator opens the new connection ("ssh -p 2222").
	Hint     string
	Handlers Handlers
	Log      *slog.Logger
	Notify   func(Notice)
	// Out gets the progress lines the operator reads.
	Out io.Writer
	// AfterStep: see Options.
	AfterStep func(layer string)
}

// ProbePlan is the self-probe's plan: where a new login must find sshd.
type ProbePlan struct {
	Targets []Target
	User    string
	// PerTarget is each target's budget (5 s when 0).
	PerTarget time.Duration
	// Serving, when set, reports whether an sshd serves the root at all
	// (a fixture root may have none); false skips the probe.
	Serving func(ctx context.Context) bool
}

// CheckWindow refuses a confirm window outside min..MaxWindow (min is
// MinWindow but for tests).
func CheckWindow(d, min time.Duration) error {
	if d < min || d > MaxWindow {
		return fmt.Errorf("--confirm %s is out of range: the confirm window must be between %s and %s (a new login takes more than a few seconds, and a typo must not leave a lockout in place for days)", d, fmtDur(min), fmtDur(MaxWindow))
	}
	return nil
}

func fmtDur(d time.Duration) string {
	switch {
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d%time.Second == 0:
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	return d.String()
}

// ChooseTimer picks the rollback timer: a transient systemd timer where
// systemd is PID 1 on the live system, a detached watchdog elsewhere
// (containers, fixture roots, lab namespaces).
func ChooseTimer(exe, root string, systemdPID1 bool) Timer {
	if root == "" || root == "/" {
		if systemdPID1 {
			if _, err := exec.LookPath("systemd-run"); err == nil {
				return SystemdTimer{Moat: exe}
			}
		}
	}
	argv := []string{exe, "change", "watchdog"}
	if root != "" {
		abs, _ := filepath.Abs(root)
		argv = append(argv, "--root", abs)
	}
	return WatchdogTimer{Argv: argv}
}

// Run applies steps as one change and sees it through: it arms the timer
// (installing the boot guard first where systemd runs), ignores SIGHUP
// while the steps run (the change must not depend on the terminal; the
// timer rolls back should this process die anyway), self-probes, then
// either confirms at once (Yes) or waits for moat confirm, rolling back
// on Ctrl-C. It returns the change in its final state; a rollback is a
// *RolledBackError, another pending change a *PendingError.
func (s *Store) Run(ctx context.Context, opt RunOptions) (*Manifest, error) {
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	ctx = term.WithOutput(ctx, out) // slow steps show progress (internal/term)
	if !slices.ContainsFunc(opt.Steps, func(s *Step) bool { return !s.Empty() }) {
		return nil, nil
	}
	if err := s.RefusePending(); err != nil {
		return nil, err
	}
	timer := ChooseTimer(opt.Moat, s.Root, opt.SystemdPID1)
	if _, sd := timer.(SystemdTimer); sd {
		if err := InstallBootGuard(s.Root, opt.Moat); err != nil {
			return nil, fmt.Errorf("%w (nothing was changed)", err)
		}
	}
	for _, st := range opt.Steps {
		for _, line := range st.Summary {
			fmt.Fprintf(out, "%s: %s\n", st.Layer, line)
		}
	}
	// A dropped connection hangs up the terminal: the steps go on, and
	// the timer ends the change if nobody confirms.
	// (Caught and dropped rather than signal.Ignore'd: Reset restores
	// the default, death by SIGHUP, only after Notify.)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	start := time.Now()
	m, err := s.Apply(ctx, opt.Steps, Options{
		Window: opt.Window, Session: opt.Session, ConfirmPorts: opt.ConfirmPorts, ConfirmVia: opt.ConfirmVia,
		Config: opt.Config, ConfigEdit: opt.ConfigEdit, Timer: timer, Handlers: opt.Handlers, Log: opt.Log, Notify: opt.Notify,
		AfterStep: opt.AfterStep, Probe: opt.Probe.run(out, s.Root),
	})
	signal.Stop(hup)
	signal.Reset(syscall.SIGHUP)
	if err != nil {
		return nil, err
	}
	rb := RollbackOptions{Handlers: opt.Handlers, Log: opt.Log, Notify: opt.Notify}
	if opt.Yes {
		m, err = s.Confirm(ctx, m.ID, ConfirmOptions{Unattended: true, Handlers: opt.Handlers, Log: opt.Log, Notify: opt.Notify})
		if err != nil {
			return m, err
		}
		fmt.Fprintf(out, "change %s applied and confirmed (--yes, self-probe passed)\n", m.ID)
		return m, nil
	}
	hint := opt.Hint
	if hint == "" {
		hint = "ssh"
	}
	fmt.Fprintf(out, "change %s applied in %s, waiting for confirm (%s)\n", m.ID, time.Since(start).Round(time.Millisecond), m.Timer)
	fmt.Fprintf(out, "From a NEW ssh connection opened from now on (%s …; not an open tab, not a reused ControlMaster connection) run within %s:\n    sudo moat confirm %s\nOtherwise everything is rolled back at %s. Undo now: sudo moat rollback %s\n",
		hint, m.Window, m.ID, m.Deadline.Format(time.TimeOnly), m.ID)

	// Waiting here is only for the operator's eyes: the timer rolls back
	// whether or not this process lives. Ctrl-C rolls back at once.
	wctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	waiting := waitProgress(out, m.Deadline)
	id := m.ID
	m, err = s.Wait(wctx, id, rb)
	if wctx.Err() != nil && ctx.Err() == nil {
		m, err = s.Rollback(ctx, id, "interrupted (Ctrl-C) while waiting for confirm", rb)
	}
	result := "ended"
	if m != nil {
		result = string(m.State)
	}
	waiting(strings.ReplaceAll(result, "-", " "))
	if err != nil && m == nil {
		return nil, err
	}
	switch m.State {
	case Confirmed:
		fmt.Fprintf(out, "change %s confirmed\n", m.ID)
		return m, nil
	case RolledBack:
		return m, &RolledBackError{ID: m.ID, Reason: m.Reason, Errors: m.Errors}
	}
	if err == nil {
		err = errors.New("not final")
	}
	return m, fmt.Errorf("change %s is %s: %w", m.ID, m.State, err)
}

// run is the probe Apply calls, printing each target's result.
func (p *ProbePlan) run(out io.Writer, root string) func(context.Context) error {
	if p == nil {
		return nil
	}
	return func(ctx context.Context) error {
		if p.Serving != nil && !p.Serving(ctx) {
			fmt.Fprintf(out, "self-probe: skipped, no sshd serves %s\n", root)
			return nil
		}
		results, err := SelfProbe(ctx, nil, p.Targets, p.User, p.PerTarget)
		for _, r := range results {
			status := "ok"
			if r.Err != nil {
				status = r.Err.Error()
			}
			fmt.Fprintf(out, "self-probe %s: %s (%s)\n", r.Target, status, r.Took.Round(time.Millisecond))
		}
		return err
	}
}

// waitProgress shows the confirm window going by (internal/term): on a
// terminal one line rewritten every second with the time left before
// the rollback, elsewhere a line when the wait starts and one when it
// ends. The returned func ends it with the change's outcome.
func waitProgress(out io.Writer, deadline time.Time) func(result string) {
	p := term.Start(out, "waiting for confirm")
	left := func() {
		if d := time.Until(deadline); d > 0 {
			p.Update("rollback in " + d.Round(time.Second).String())
		} else {
			p.Update("rolling back")
		}
	}
	left()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				left()
			}
		}
	}()
	return func(result string) {
		close(stop)
		<-done
		p.Done(result)
	}
}
