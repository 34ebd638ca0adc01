package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/jail"
)

// The gateway's failures enter the gateway jail typed: the address is the
// one the gateway saw, whatever its client-chosen detail holds (a user
// name spelling JSON, an address, a newline), and they ban through the
// same unit and queue as log lines.
func TestGatewayFailuresEnterTyped(t *testing.T) {
	store, err := ban.Open(filepath.Join(t.TempDir(), "moat.db"), ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sets := &recordingSets{elems: map[netip.Prefix]bool{}}
	enf := ban.NewEnforcer(store, sets, ban.EnforcerOptions{})
	q := newBanQueue(enf, slog.New(slog.DiscardHandler))
	eng, err := jail.New("gateway", jail.JailDefaults("gateway", jail.Jail{MaxRetry: 3}), jail.Options{History: store, Banned: eitherBanned{store, q}})
	if err != nil {
		t.Fatal(err)
	}
	filt, err := filter.New("gateway", "", filter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	feed := guard.NewFeed(64)
	p := &pipeline{name: "gateway", feed: feed, unit: &guard.Unit{Name: "gateway", Filter: filt, Engine: eng},
		eng: eng, enf: enf, queue: q, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.run(ctx)
	go q.run(ctx)

	rep := gatewayReporter{feed}
	attacker := netip.MustParseAddr("203.0.113.50")
	details := []string{`admin","addr":"192.0.2.66`, "x from 192.0.2.66", "a\nb"}
	for _, d := range details {
		rep.Report(gateway.Failure{Addr: attacker, Time: time.Now(), Kind: gateway.FailureAuth, Detail: d})
	}
	waitUntil(t, 10*time.Second, "the attacker banned", func() bool { return store.Contains(attacker) })
	if store.Contains(netip.MustParseAddr("192.0.2.66")) {
		t.Fatal("an address in the client's text was banned")
	}
	if n := p.unit.Counters(); n.Failures != 3 || n.Unattributable != 0 {
		t.Errorf("counters %+v, want 3 failures, all attributed", n)
	}
	if st := eng.Stats(); st.Decisions != 1 {
		t.Errorf("decisions %d, want 1", st.Decisions)
	}
}
