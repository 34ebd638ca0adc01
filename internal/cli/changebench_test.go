package cli

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/lab"
)

// BenchmarkPlan is `moat plan` over every host layer of the fixture host
// (firewall off: it needs a live table): sshd -T for the current and the
// candidate configuration of every user and source, ssh -Q, apt, swap and
// sysctl facts. Target: ≤ 1 s.
func BenchmarkPlan(b *testing.B) {
	lab.RequireTool(b, "sshd")
	root, cfg := changeFixture(b)
	b.Setenv("SSH_CONNECTION", "198.51.100.7 40000 203.0.113.10 22")
	for b.Loop() {
		if code := Main([]string{"plan", "-c", cfg, "--root", root}, nil, io.Discard, io.Discard); code != ExitOK {
			b.Fatalf("exit %d", code)
		}
	}
}

// BenchmarkApplyToWaiting is `moat apply` from its start to "waiting for
// confirm": plan, snapshots, the watchdog started and ready, every layer
// applied (useradd, sshd -t and -T checks, apt-config, a 16 MiB swapfile,
// sysctls), the probe. Each change is rolled back outside the timing.
// Target: ≤ 2 s.
func BenchmarkApplyToWaiting(b *testing.B) {
	lab.RequireRoot(b)
	lab.RequireTool(b, "sshd", "useradd", "fallocate", "mkswap")
	b.Setenv(envAsMoat, "1")
	b.Setenv("SSH_CONNECTION", "198.51.100.7 40000 203.0.113.10 22")
	root, cfg := changeFixture(b)
	exe, _ := os.Executable()
	e := &env{stdout: io.Discard, stderr: io.Discard, log: newLogger(io.Discard)}
	ctx := context.Background()
	store := change.NewStore(root)
	for b.Loop() {
		f := newFlags(e, "apply", "").withRoot()
		f.config, f.root = cfg, root
		tx, _, ok := planAll(ctx, e, f, false)
		if !ok || len(tx.refusals) > 0 {
			b.Fatalf("plan: %v", tx.refusals)
		}
		m, err := store.Apply(ctx, tx.steps, change.Options{Window: change.DefaultWindow, Session: tx.session,
			Timer: change.ChooseTimer(exe, root, false), Handlers: changeHandlers(e)})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := store.Rollback(ctx, m.ID, "benchmark", change.RollbackOptions{Handlers: changeHandlers(e)}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
