package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/host"
)

// fakeChanges writes a change store's files under a fixture root, as moat
// apply, confirm and rollback leave them.
type fakeChanges struct {
	t   *testing.T
	dir string
}

func (f *fakeChanges) manifest(id string, state change.State, reason string, deadline time.Time) {
	f.t.Helper()
	b, _ := json.Marshal(change.Manifest{ID: id, State: state, Reason: reason, Deadline: deadline,
		Layers: []string{"ssh", "firewall"}, Summary: []string{"sshd: PasswordAuthentication no", "firewall: 3 rules"}})
	os.MkdirAll(filepath.Join(f.dir, id), 0o700)
	if err := os.WriteFile(filepath.Join(f.dir, id, "change.json"), b, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeChanges) pending(id string) {
	p := filepath.Join(f.dir, "pending")
	if id == "" {
		os.Remove(p)
		return
	}
	os.WriteFile(p, []byte(id+"\n"), 0o600)
}

func (f *fakeChanges) rolledBack(id, reason string, at time.Time) {
	f.rollbackNote(id, reason, at, "")
}

func (f *fakeChanges) rollbackNote(id, reason string, at time.Time, state change.State) {
	b, _ := json.Marshal(change.RollbackNote{ID: id, Time: at, Reason: reason, State: state})
	os.WriteFile(filepath.Join(f.dir, "last-rollback"), b, 0o600)
}

func TestMonitorChanges(t *testing.T) {
	root := t.TempDir()
	fc := &fakeChanges{t: t, dir: filepath.Join(root, change.StateDir)}
	os.MkdirAll(fc.dir, 0o700)
	rec := &recorder{}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// A rollback at boot, two minutes before moat started: worth telling.
	fc.manifest("20250301T115800Z-000001", change.RolledBack, "no confirm before the reboot", now)
	fc.rolledBack("20250301T115800Z-000001", "no confirm before the reboot", now.Add(-2*time.Minute))
	m := newMonitor(&monitor{host: host.New(root), notify: rec.notify, now: func() time.Time { return now },
		changes: change.NewStore(root)})

	a, b, c := "20250301T120100Z-0a0b0c", "20250301T121000Z-0d0e0f", "20250301T122000Z-111111"
	steps := []struct {
		name  string
		setup func()
		want  []string
	}{
		{"at start", func() {}, []string{"change critical: Change 20250301T115800Z-000001 rolled back"}},
		{"quiet", func() {}, nil},
		{"applied", func() { fc.manifest(a, change.Waiting, "", now.Add(2*time.Minute)); fc.pending(a) },
			[]string{"change info: Change 20250301T120100Z-0a0b0c applied"}},
		{"still waiting", func() {}, nil},
		{"marker gone while confirming", func() { fc.manifest(a, change.Confirming, "", now); fc.pending("") }, nil},
		{"confirmed", func() { fc.manifest(a, change.Confirmed, "", now) },
			[]string{"change info: Change 20250301T120100Z-0a0b0c confirmed"}},
		{"applied again", func() { fc.manifest(b, change.Waiting, "", now.Add(2*time.Minute)); fc.pending(b) },
			[]string{"change info: Change 20250301T121000Z-0d0e0f applied"}},
		{"rolled back by its timer", func() {
			fc.manifest(b, change.RolledBack, "not confirmed within 2m0s", now)
			fc.rolledBack(b, "not confirmed within 2m0s", now)
			fc.pending("")
		}, []string{"change critical: Change 20250301T121000Z-0d0e0f rolled back"}},
		{"once", func() {}, nil},
		// A rollback that could not restore everything stays pending and is
		// retried: its failure and the retry that finishes it are told apart.
		{"applied a third", func() { fc.manifest(c, change.Waiting, "", now.Add(2*time.Minute)); fc.pending(c) },
			[]string{"change info: Change 20250301T122000Z-111111 applied"}},
		{"rollback failed", func() {
			fc.manifest(c, change.RollbackFailed, "not confirmed; ROLLBACK INCOMPLETE", now)
			fc.rollbackNote(c, "not confirmed; ROLLBACK INCOMPLETE", now, change.RollbackFailed)
		}, []string{"change critical: Change 20250301T122000Z-111111: ROLLBACK INCOMPLETE"}},
		{"still failing", func() {}, nil},
		{"retry finished", func() {
			fc.manifest(c, change.RolledBack, "not confirmed", now)
			fc.rollbackNote(c, "not confirmed", now.Add(time.Minute), change.RolledBack)
			fc.pending("")
		}, []string{"change critical: Change 20250301T122000Z-111111 rolled back"}},
	}
	for _, s := range steps {
		s.setup()
		m.checkChanges(now)
		if s.name == "applied" && len(rec.events) == 1 && rec.events[0].Fields["confirm_by"] == "" {
			t.Errorf("applied alert without its deadline: %+v", rec.events[0])
		}
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: alerts\n got %q\nwant %q", s.name, got, s.want)
		}
	}

	fc.manifest(a, change.Waiting, "", now.Add(90*time.Second))
	fc.pending(a)
	p, note := pendingChange(change.NewStore(root))
	if p == nil || p.ID != a || !p.ConfirmBy.Equal(now.Add(90*time.Second)) || p.Summary != "sshd: PasswordAuthentication no; firewall: 3 rules" {
		t.Errorf("pendingChange = %+v", p)
	}
	if note == nil || note.ID != c {
		t.Errorf("last rollback = %+v", note)
	}
}
