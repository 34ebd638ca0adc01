package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
)

// TestMonitorChangeAlertSaysWhatBecameOfMoatYAML: a quick edit rolled
// back by its timer is alerted with the rollback's note, which says what
// became of moat.yaml (restored, or kept with the version before beside
// it), not only the manifest's reason.
func TestMonitorChangeAlertSaysWhatBecameOfMoatYAML(t *testing.T) {
	root := t.TempDir()
	fc := &fakeChanges{t: t, dir: filepath.Join(root, change.StateDir)}
	os.MkdirAll(fc.dir, 0o700)
	rec := &recorder{}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	m := newMonitor(&monitor{host: host.New(root), notify: rec.notify, now: func() time.Time { return now },
		changes: change.NewStore(root)})
	m.checkChanges(now)
	id := "20250301T120100Z-0a0b0c"
	fc.manifest(id, change.Waiting, "", now.Add(2*time.Minute))
	fc.pending(id)
	m.checkChanges(now)
	rec.take()
	const kept = "no confirm within 2m0s; /etc/moat/moat.yaml was edited since the quick edit: yours is kept (the quick edit is still in it), the version before the edit is in /etc/moat/moat.yaml.rolled-back-" + "20250301T120100Z-0a0b0c"
	fc.manifest(id, change.RolledBack, "no confirm within 2m0s", now)
	fc.rolledBack(id, kept, now)
	fc.pending("")
	m.checkChanges(now)
	if len(rec.events) != 1 || !strings.Contains(rec.events[0].Text, "moat.yaml.rolled-back-") {
		t.Fatalf("alerts %+v", rec.events)
	}
}
