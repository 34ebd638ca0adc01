package daemon

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/fleet"
)

// TestFleetLevels: a quorum lost for 30 s is critical, a shorter loss
// (an election) is not; lag past max_lag warns.
func TestFleetLevels(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	healthy := fleet.Status{Stream: &fleet.StreamStatus{Quorum: true}}
	lost := fleet.Status{StreamError: "no quorum"}
	since, q, lag := fleetLevels(lost, time.Time{}, t0, 10)
	if since != t0 || q != 0 || lag != 0 {
		t.Fatalf("first loss: %v %d %d", since, q, lag)
	}
	if _, q, _ = fleetLevels(lost, since, t0.Add(29*time.Second), 10); q != 0 {
		t.Fatal("critical before 30s")
	}
	if _, q, _ = fleetLevels(lost, since, t0.Add(30*time.Second), 10); q != 2 {
		t.Fatal("not critical after 30s")
	}
	if since, q, _ = fleetLevels(healthy, since, t0.Add(31*time.Second), 10); !since.IsZero() || q != 0 {
		t.Fatal("quorum back, condition stays")
	}
	healthy.Lag = 11
	if _, _, lag = fleetLevels(healthy, time.Time{}, t0, 10); lag != 1 {
		t.Fatal("lag past max_lag not raised")
	}
	// The events the monitor sends.
	if e := (alert.Fleet{Fleet: "prod", Problem: "quorum"}).Event(); e.Severity != alert.Critical || e.Kind != alert.KindFleet {
		t.Fatalf("quorum event %+v", e)
	}
	if e := (alert.Fleet{Fleet: "prod", Problem: "lag"}).Event(); e.Severity != alert.Warning {
		t.Fatalf("lag event %+v", e)
	}
}

// TestShareKey: only this host's own bans are published; the fleet's and
// the kernel's never go back out.
func TestShareKey(t *testing.T) {
	for _, c := range []struct {
		b    ban.Ban
		want string
	}{
		{ban.Ban{Jail: "sshd", Origin: ban.OriginAuto}, "sshd"},
		{ban.Ban{Origin: ban.OriginManual}, "manual"},
		{ban.Ban{Jail: "sshd", Origin: ban.FleetOrigin("web-2")}, ""},
		{ban.Ban{Origin: ban.OriginKernel}, ""},
	} {
		if got := shareKey(c.b); got != c.want {
			t.Errorf("%+v: %q, want %q", c.b, got, c.want)
		}
	}
}

// TestStatusTextRefusals: moat status says when the fleet's outbox is
// not durable, and keeps a list's last refusal and its reason after the
// list was taken again.
func TestStatusTextRefusals(t *testing.T) {
	var b bytes.Buffer
	(&FleetSummary{Fleet: "prod", Origin: "web-1", Ready: true, OutboxError: "fleet outbox /var/lib/moat/fleet/outbox.jsonl: no space left on device"}).writeText(&b)
	if !strings.Contains(b.String(), "OUTBOX NOT DURABLE") || !strings.Contains(b.String(), "no space left") {
		t.Errorf("fleet status text:\n%s", b.String())
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	b.Reset()
	writeBlocklists(&b, &blocklist.Status{Lists: []blocklist.ListStatus{{Name: "drop", Loaded: true, Entries: 3,
		LastRefusal: "list drop refused, nothing of it applied: line 3: not a network", LastRefusalReason: blocklist.RefusalParse, LastRefusalAt: now.Add(-2 * time.Hour)}}}, now)
	if !strings.Contains(b.String(), "last update refused 2h") || !strings.Contains(b.String(), "(parse)") || !strings.Contains(b.String(), "line 3") {
		t.Errorf("blocklist status text:\n%s", b.String())
	}
}
