package daemon

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/tailscale"
	"github.com/moat-sh/moat/internal/tailscale/tailscaletest"
)

// TestTailscaleAlerts: a fake tailscaled (recorded local API answers)
// with the node key 8 days from expiry and two Funnels: moat run's
// monitor alerts once for each, critical for the key when SSH is
// VPN-only and for the Funnel to an undeclared datastore port; a second
// check alerts nothing new; key expiry disabled and Funnel off clear
// the conditions.
func TestTailscaleAlerts(t *testing.T) {
	var mu sync.Mutex
	var events []alert.Event
	cfg := config.Default()
	cfg.SSH.Exposure = schema.ExposureVPN
	cfg.Firewall.Public = []schema.PortSpec{{Proto: "tcp", From: 3000, To: 3000}}
	d := &Daemon{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	d.mon = newMonitor(&monitor{notify: func(e alert.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	serve := func(status, serveCfg string) *tailscale.Client {
		sock := tailscaletest.Serve(t, tailscaletest.Answers{
			"/localapi/v0/status":       tailscaletest.Fixture(status),
			"/localapi/v0/serve-config": tailscaletest.Fixture(serveCfg)})
		return &tailscale.Client{Socket: sock, CLI: "-"}
	}
	ctx := context.Background()
	c := serve("status-expiry-near.json", "serve-funnel.json")
	d.checkTailscale(ctx, c, now)
	d.checkTailscale(ctx, c, now.Add(time.Minute))
	mu.Lock()
	got := map[string]alert.Event{}
	for _, e := range events {
		got[e.Title] = e
	}
	n := len(events)
	mu.Unlock()
	key := got["Tailscale node key of vps.tail1234.ts.net expires in 8 days"]
	if key.Kind != alert.KindTailscale || key.Severity != alert.Critical || !strings.Contains(key.Text, "ssh.exposure is vpn") {
		t.Errorf("key expiry alert: %+v\nall: %v", key, got)
	}
	pg := got["Tailscale Funnel publishes tcp 127.0.0.1:5432 at https://vps.tail1234.ts.net:10000/"]
	app := got["Tailscale Funnel publishes proxy http://127.0.0.1:3000 at https://vps.tail1234.ts.net:443/"]
	if pg.Severity != alert.Critical || app.Severity != alert.Warning || app.Fields["declared"] != "true" {
		t.Errorf("funnel alerts: %+v / %+v\nall: %v", pg, app, got)
	}
	// The key, two targets on :443 (the app and the files) and :10000.
	if n != 4 {
		t.Errorf("%d alerts, want 4 (the second check must alert nothing new): %v", n, got)
	}
	if conds := d.mon.conditions(); len(conds) != 4 {
		t.Errorf("conditions: %+v", conds)
	}
	// Expiry disabled, Funnel off: every condition clears.
	d.checkTailscale(ctx, serve("status-expiry-disabled.json", "serve-none.json"), now.Add(2*time.Minute))
	if conds := d.mon.conditions(); len(conds) != 0 {
		t.Errorf("conditions after the fix: %+v", conds)
	}
}
