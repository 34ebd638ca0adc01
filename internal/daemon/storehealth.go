package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/firewall"
)

// condStore is the ban store's condition kind; its alerts go out as disk
// events (the routes operators already have for a full disk).
const condStore = "store"

// checkStore raises the ban store's conditions: decisions kept in memory
// because the disk refused them (critical: the next crash loses them from
// the record, though the kernel still enforces them), and a damaged store
// that Open replaced (a warning for this run).
func (d *Daemon) checkStore(now time.Time) {
	if d.mon == nil {
		return
	}
	path := filepath.Join(d.o.StateDir, "moat.db")
	h := d.store.Health()
	level := 0
	if h.Unsaved > 0 {
		level = 2
	}
	d.mon.set(condStore, path, level, now, func() alert.Event {
		return alert.Event{Kind: alert.KindDisk, Severity: alert.Critical, Time: now,
			Title: fmt.Sprintf("Ban store %s cannot be written: %d decisions kept in memory", path, h.Unsaved),
			Text: fmt.Sprintf("Writing the ban store fails (%s) since %s. Every ban is enforced in the kernel and retried; "+
				"free space on the state directory's filesystem or make it writable.", h.Err, h.Since.Format(time.RFC3339)),
		}
	})
	recovered := 0
	if h.Recovered != "" {
		recovered = 1
	}
	d.mon.set(condStore, path+" (recovered)", recovered, now, func() alert.Event {
		return alert.Event{Kind: alert.KindDisk, Severity: alert.Warning, Time: now,
			Title: "Ban store was damaged and rebuilt from the kernel sets", Text: h.Recovered}
	})
}

// ensureBanSets makes sure the kernel's ban sets exist before the guard
// decides anything: created in firewall.mode bans-only, reported loudly
// (and in moat status) otherwise.
func (d *Daemon) ensureBanSets(ctx context.Context, cfg *config.Config) {
	spec := firewall.SpecFrom(cfg.Firewall)
	spec.Source = cfg.File
	spec.VPN = cfg.VPN
	spec.Blocklists = cfg.Guard.IsEnabled() && len(cfg.Guard.Blocklists) > 0
	spec.Admin = adminPrefixes(cfg)
	spec.Geo.Mode = "" // geo ranges are resolved by moat apply firewall
	created, err := firewall.EnsureBanSets(ctx, &spec)
	switch {
	case err != nil:
		d.log.Error("bans will be stored but not enforced", "err", err)
	case created:
		d.log.Info("firewall.mode bans-only: created table inet moat with the ban sets and their drop rules; every other rule stays yours")
	}
}
