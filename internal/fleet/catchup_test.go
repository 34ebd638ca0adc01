package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is the members' clock: advanced by the test, never read
// from the wall.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestCatchUpAfterOutage: h2 is down while h0 decides 1,000 bans and
// lifts 100 of them; then 35 minutes pass (on the fleet's clock) and
// some of the bans have ended. h2 comes back and, from the stream,
// ends with exactly the bans still in force, each with its own expiry
// (so its remaining time), none of the lifted ones and none of the
// ended ones (refused as expired).
func TestCatchUpAfterOutage(t *testing.T) {
	cfgs := testFleet(t, 3)
	dir := t.TempDir()
	clk := &fakeClock{}
	t0 := time.Now().Truncate(time.Millisecond)
	clk.ns.Store(t0.UnixNano())
	ms := make([]*member, 3)
	for i, c := range cfgs {
		ms[i] = startMemberOpts(t, c, filepath.Join(dir, c.Host), memberOpts{now: clk.now})
	}
	defer func() {
		for _, m := range ms {
			m.stop()
		}
	}()
	for _, m := range ms {
		waitFor(t, 30*time.Second, m.cfg.Host+" ready", m.client.Ready)
	}
	h0, h1 := ms[0], ms[1]
	ms[2].stop() // its durable consumer stays in the stream

	// 1,000 bans of 10 to 100 minutes; every tenth lifted.
	var all []Decision
	for i := range 1000 {
		d := Decision{Op: OpBan, Prefix: netip.MustParsePrefix(fmt.Sprintf("198.18.%d.%d/32", i/250, 1+i%250)), Jail: "sshd",
			Origin: "h0", Created: t0, Expires: t0.Add(time.Duration(i%10+1) * 10 * time.Minute)}
		all = append(all, d)
	}
	h0.client.Publish(all...)
	var lifted []Decision
	for i := 0; i < 1000; i += 10 {
		u := all[i]
		u.Op = OpUnban
		lifted = append(lifted, u)
	}
	waitFor(t, 60*time.Second, "h1 applies the 1,000", func() bool { return h1.count() == 1000 })
	h0.client.Publish(lifted...)
	waitFor(t, 60*time.Second, "h1 applies the 100 unbans", func() bool { return h1.count() == 900 })

	// 35 minutes on: the bans of 20 and 30 minutes have ended (those of
	// 10 were lifted).
	clk.advance(35 * time.Minute)
	want := map[netip.Prefix]Decision{}
	ended := 0
	for i, d := range all {
		switch {
		case i%10 == 0: // lifted
		case !d.Expires.After(clk.now()):
			ended++
		default:
			want[d.Prefix] = d
		}
	}
	if len(want) != 700 || ended != 200 {
		t.Fatalf("test arithmetic: %d in force, %d ended", len(want), ended)
	}

	ms[2] = startMemberOpts(t, cfgs[2], filepath.Join(dir, cfgs[2].Host), memberOpts{now: clk.now})
	h2 := ms[2]
	waitFor(t, 60*time.Second, "h2 consumes the stream", func() bool {
		st := h2.client.Status(context.Background(), h2.node)
		return h2.client.Ready() && st.Stream != nil && st.Lag == 0 && h2.count() >= len(want)
	})
	h2.mu.Lock()
	defer h2.mu.Unlock()
	if len(h2.applied) != len(want) {
		t.Errorf("h2 holds %d bans, want %d", len(h2.applied), len(want))
	}
	for p, d := range want {
		got, ok := h2.applied[p]
		if !ok {
			t.Errorf("h2 lacks %s", p)
			continue
		}
		if !got.Expires.Equal(d.Expires) {
			t.Errorf("%s expires %s on h2, %s on h0", p, got.Expires, d.Expires)
		}
	}
	// The ended bans and the ended bans' tombstones (a lifted ban's
	// tombstone of 10 minutes) were refused as expired; the
	// others' tombstones were the latest for their prefix: no ban.
	if n := counterValue(t, h2.metrics.Unverified.WithLabelValues(ReasonExpired)); n == 0 {
		t.Errorf("no decision refused as expired")
	}
	if n := counterValue(t, h2.metrics.Unverified.WithLabelValues(ReasonStale)); n != 0 {
		t.Errorf("%v decisions refused as stale during a plain catch-up", n)
	}
}
