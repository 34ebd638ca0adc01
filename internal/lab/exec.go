package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	runTimeout  = 2 * time.Minute // MustRun's bound on one command
	stopGrace   = 3 * time.Second // SIGTERM to SIGKILL
	pipeGrace   = 5 * time.Second // for grandchildren holding Run's output pipe
	outputShown = 16 << 10        // bytes of a Proc's output logged on failure
)

// command runs name inside h through `ip netns exec`, which also bind-mounts
// /etc/netns/<ns>/* over /etc (how test users exist only inside h). The
// process leads its own group so it can be killed with its children.
func (h *Host) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if p, err := lookTool(name); err == nil {
		name = p
	}
	cmd := exec.CommandContext(ctx, ipPath(), append([]string{"netns", "exec", h.ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = pipeGrace
	return cmd
}

// Run runs a command inside h and returns its combined output. The error
// carries the output too.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := h.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s on host %s: %w: %s", cmdline(name, args), h.name, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// MustRun is Run that fails t on error, bounded by two minutes. (Not by
// t.Context: that ends before cleanups, where MustRun is useful too.)
func (h *Host) MustRun(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	out, err := h.Run(ctx, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Proc is a background process inside a host, stopped when its test ends.
// Its stdout and stderr go to a log file, shown when the test fails.
type Proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid once done is closed
	stop    sync.Once
}

// Start starts a command inside h in the background. It is stopped (its
// whole process group) when t ends, and if t failed its output is logged.
func (h *Host) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return h.start(t, nil, name, args...)
}

// start is Start with stderr sent to a file of the caller's, if not nil.
func (h *Host) start(t testing.TB, stderr *os.File, name string, args ...string) *Proc {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), filepath.Base(name)+"-*.log")
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	defer f.Close() // the child has its own copy
	// Not CommandContext's kill: Stop is gentler and also reaches children.
	cmd := h.command(context.Background(), name, args...)
	cmd.Stdout, cmd.Stderr = f, f // a file, not a pipe: Wait never blocks on grandchildren
	if stderr != nil {
		cmd.Stderr = stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("lab: start %s on host %s: %v", cmdline(name, args), h.name, err)
	}
	p := &Proc{name: cmdline(name, args), cmd: cmd, logPath: f.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	t.Cleanup(func() {
		p.Stop()
		if out := p.Output(); t.Failed() && out != "" {
			t.Logf("lab: output of %s on host %s:\n%s", p.name, h.name, tail(out, outputShown))
		}
	})
	return p
}

// Pid is the process's id (in the root pid namespace, as everywhere here).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns what exec.Cmd.Wait did.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM to the process group, SIGKILL after a grace period,
// and waits for the process to exit. It is safe to call more than once.
func (p *Proc) Stop() {
	p.stop.Do(func() {
		pid := p.cmd.Process.Pid
		select {
		case <-p.done:
		default:
			killGroup(pid, unix.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopGrace):
			}
		}
		// Also after the leader exited: children may remain in its group.
		killGroup(pid, unix.SIGKILL)
		<-p.done
	})
}

// LogPath is the file holding the process's output.
func (p *Proc) LogPath() string { return p.logPath }

// Output returns what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(output unavailable: %v)", err)
	}
	return string(b)
}

func killGroup(pgid int, sig unix.Signal) error {
	err := unix.Kill(-pgid, sig)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

func cmdline(name string, args []string) string {
	return strings.Join(append([]string{name}, args...), " ")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
