package daemon

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/schema"
	"github.com/moat-sh/moat/internal/tailscale"
)

// Tailscale watching: tailscaled's state is read every tailscaleEvery
// (cheap: three small requests on a Unix socket) and turned into the
// monitors' conditions, which alert once when they start or worsen and
// show in moat status: the node key within 14 days of its expiry, and
// every Funnel that is on.
const (
	tailscaleEvery    = 10 * time.Minute
	tailscaleKeyWarn  = 14 * 24 * time.Hour
	tailscaleKeyCrit  = 3 * 24 * time.Hour
	condTailscaleKey  = "key expiry"
	condTailscaleFunl = "funnel "
)

func (d *Daemon) watchTailscale(ctx context.Context) error {
	every := tailscaleEvery
	if d.o.CheckEvery > 0 && d.o.CheckEvery < every {
		every = d.o.CheckEvery
	}
	c := &tailscale.Client{Socket: d.o.tailscaleSocket}
	if d.o.tailscaleSocket != "" {
		c.CLI = "-"
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		d.checkTailscale(ctx, c, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (d *Daemon) checkTailscale(ctx context.Context, c *tailscale.Client, now time.Time) {
	st, err := c.Read(ctx)
	seen := map[string]bool{}
	defer d.mon.sweep(alert.KindTailscale, seen, now)
	if err != nil {
		if !errors.Is(err, tailscale.ErrAbsent) {
			d.log.Debug("tailscaled not read", "err", err)
		}
		return
	}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	if exp, disabled, ok := st.KeyExpiry(); ok && !disabled && st.Running() {
		seen[condTailscaleKey] = true
		vpnOnly := cfg.SSH.Exposure == schema.ExposureVPN
		level := 0
		switch left := exp.Sub(now); {
		case left < tailscaleKeyCrit || (vpnOnly && left < tailscaleKeyWarn):
			level = 2
		case left < tailscaleKeyWarn:
			level = 1
		}
		node := st.DNSName()
		d.mon.set(alert.KindTailscale, condTailscaleKey, level, now, func() alert.Event {
			return alert.TailscaleExpiry{Node: node, Expiry: exp, VPNOnlySSH: vpnOnly, Time: now}.Event()
		})
	}
	for _, f := range st.Funnels() {
		for _, tg := range f.Targets {
			url := "https://" + f.HostPort + tg.Mount
			key := condTailscaleFunl + url
			seen[key] = true
			declared := tg.Local.IsValid() && declaredPublic(cfg, tg.Local.Port())
			level := 2
			if declared || !tg.Local.IsValid() {
				level = 1
			}
			target := tg.Kind + " " + tg.To
			d.mon.set(alert.KindTailscale, key, level, now, func() alert.Event {
				return alert.TailscaleFunnel{URL: url, Target: target, Declared: declared, Time: now}.Event()
			})
		}
	}
}

func declaredPublic(cfg *config.Config, port uint16) bool {
	return slices.ContainsFunc(cfg.Firewall.Public, func(p schema.PortSpec) bool { return p.Contains("tcp", port) })
}
