package daemon

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/moat-sh/moat/internal/alert"
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
