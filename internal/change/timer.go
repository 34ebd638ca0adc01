package change

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Timer arms a change's rollback in a process that outlives the caller
// and its SSH session.
type Timer interface {
	Arm(ctx context.Context, s *Store, m *Manifest) (TimerInfo, error)
}

// TimerInfo is how an armed timer can be found again.
type TimerInfo struct {
	Kind string `json:"kind"`           // "systemd" or "watchdog"
	Unit string `json:"unit,omitempty"` // systemd: the transient timer unit
	PID  int    `json:"pid,omitempty"`  // watchdog: its process
}

func (t TimerInfo) String() string {
	switch t.Kind {
	case "systemd":
		return "systemd timer " + t.Unit
	case "watchdog":
		return "watchdog process " + strconv.Itoa(t.PID)
	}
	return "none"
}

// SystemdTimer arms a transient systemd timer (systemd-run --on-active)
// that runs `moat change rollback --timer ID` in its own unit: outside
// every login session, so neither a dropped connection nor logind's
// KillUserProcesses reaches it.
type SystemdTimer struct {
	// Moat is the absolute path of the moat binary.
	Moat string
}

// UnitName is the transient unit of change id.
func UnitName(id string) string { return "moat-rollback-" + id }

// Argv returns the systemd-run command line that arms change m.
func (t SystemdTimer) Argv(m *Manifest) []string {
	// The timer fires when the window would end had the steps taken no
	// time. The real deadline is never earlier (the window starts once
	// the steps are done), and the service waits for it (Watch).
	secs := int(m.Window.Seconds() + 0.999)
	return []string{
		"systemd-run", "--quiet",
		"--unit=" + UnitName(m.ID),
		"--description=moat: roll back change " + m.ID + " unless confirmed",
		"--on-active=" + strconv.Itoa(secs) + "s",
		"--timer-property=AccuracySec=100ms",
		"--property=TimeoutStartSec=infinity",
		"--", t.Moat, "change", "rollback", "--timer", m.ID,
	}
}

// Arm runs systemd-run.
func (t SystemdTimer) Arm(ctx context.Context, s *Store, m *Manifest) (TimerInfo, error) {
	argv := t.Argv(m)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return TimerInfo{}, fmt.Errorf("systemd-run: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return TimerInfo{Kind: "systemd", Unit: UnitName(m.ID) + ".timer"}, nil
}

// WatchdogTimer starts a detached watchdog process: Argv plus the change
// ID, in a new session and process group (setsid), stdio on /dev/null.
// It survives its parent, the SSH session's hangup, and signals to the
// session's process group. Arm returns once the watchdog has read the
// change and said so.
type WatchdogTimer struct {
	// Argv is the command before the ID, e.g.
	// [/usr/local/bin/moat change watchdog --root DIR].
	Argv []string
	// Env is the watchdog's environment; nil inherits ours.
	Env []string
}

// readyFile is what a watchdog writes (its PID) once it watches.
const readyFile = "watchdog"

// Arm starts the watchdog and waits (3 s at most) for it to be ready.
func (t WatchdogTimer) Arm(ctx context.Context, s *Store, m *Manifest) (TimerInfo, error) {
	if len(t.Argv) == 0 {
		return TimerInfo{}, errors.New("watchdog: no command")
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return TimerInfo{}, err
	}
	defer null.Close()
	cmd := exec.Command(t.Argv[0], append(t.Argv[1:], m.ID)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.Env = t.Env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return TimerInfo{}, fmt.Errorf("start watchdog: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it should it die early; harmless later
	ready := filepath.Join(s.changeDir(m.ID), readyFile)
	deadline := time.After(3 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
			return TimerInfo{Kind: "watchdog", PID: pid}, nil
		}
		select {
		case err := <-exited:
			return TimerInfo{}, fmt.Errorf("watchdog exited at once: %v", err)
		case <-deadline:
			cmd.Process.Kill()
			return TimerInfo{}, errors.New("watchdog did not start within 3s")
		case <-ctx.Done():
			cmd.Process.Kill()
			return TimerInfo{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// RunWatchdog is the body of `moat change watchdog ID`: it declares itself
// ready, ignores the signals a dying session sends (SIGHUP, SIGINT,
// SIGTERM: only a final state ends it early), and watches the change
// until it is confirmed or rolled back.
func (s *Store) RunWatchdog(ctx context.Context, id string, opt RollbackOptions) (*Manifest, error) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	if _, err := s.Load(id); err != nil {
		return nil, err
	}
	pid := strconv.Itoa(os.Getpid())
	if err := writeAtomic(filepath.Join(s.changeDir(id), readyFile), []byte(pid+"\n"), 0o600, 0, 0, time.Time{}); err != nil {
		return nil, err
	}
	opt.FromTimer = true
	return s.Watch(ctx, id, opt)
}

// disarm stops the timer of change id, best effort: a watchdog stops by
// itself once the change is final, and a systemd timer's service would
// find it final too.
func disarm(ctx context.Context, t TimerInfo, id string) {
	switch t.Kind {
	case "systemd":
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		exec.CommandContext(ctx, "systemctl", "stop", t.Unit).Run()
	case "watchdog":
		// It polls the manifest every 200ms; wait (bounded, generously:
		// a loaded host schedules it late) for it to go, so that
		// "disarmed" means gone.
		for range 250 {
			if !timerAlive(t, id) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// timerAlive reports whether the watchdog of change id still runs.
func timerAlive(t TimerInfo, id string) bool {
	switch t.Kind {
	case "watchdog":
		return watchdogAlive(t.PID, id)
	case "systemd":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", t.Unit).Run() == nil
	}
	return false
}

// WatchdogAlive reports whether pid is a live (not zombie) watchdog of
// change id: PIDs are reused, so the command line must name the change.
func watchdogAlive(pid int, id string) bool {
	if pid <= 0 {
		return false
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) && st[i+2] == 'Z' {
		return false
	}
	cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmd, []byte(id))
}

// WatchdogAlive reports whether the watchdog recorded for change m runs.
func WatchdogAlive(m *Manifest) bool {
	return m.Timer.Kind == "watchdog" && watchdogAlive(m.Timer.PID, m.ID)
}
