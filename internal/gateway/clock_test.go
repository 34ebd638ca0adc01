package gateway

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeClock is a monotonic clock that moves only when a test says so:
// rate limits and auth budgets then depend on arithmetic, not on how fast
// the machine runs the test.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(int64(time.Hour)) // not 0: 0 means "never" in places
	return c
}

func (c *fakeClock) now() int64 { return c.ns.Load() }

func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// startEnvClock is startEnv with the gateway's clock replaced by clk
// before it serves.
func startEnvClock(t testing.TB, a *app, cfg Config, deps Deps, clk *fakeClock) *env {
	t.Helper()
	e := &env{t: t, app: a, fails: newFailures(), reg: prometheus.NewRegistry()}
	if deps.Failures == nil {
		deps.Failures = e.fails
	}
	if deps.Metrics == nil {
		deps.Metrics = e.reg
	}
	g, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	g.now = clk.now
	e.g = g
	runEnv(t, e)
	e.client = e.newClient(false)
	return e
}

// pending returns a failure already reported, without waiting: the
// gateway reports on the request path, before it answers, so a failure
// the request caused is there when its answer is.
func (f *failures) pending() (Failure, bool) {
	select {
	case x := <-f.ch:
		return x, true
	default:
		return Failure{}, false
	}
}
