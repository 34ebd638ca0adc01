package daemon

import (
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/change"
)

// DefaultChangeEvery is how often the monitors look at the change store:
// a change's confirm window is two minutes, so its alerts cannot wait for
// the host checks' minute.
const DefaultChangeEvery = 5 * time.Second

// recentRollback is how old a rollback found at start may be and still
// alert: one done at boot, before moat run started.
const recentRollback = 10 * time.Minute

// changeWatch follows the change store (written by moat apply, confirm,
// rollback and their timers, all processes other than the daemon) and
// alerts when a change is applied, confirmed or rolled back.
type changeWatch struct {
	started  bool
	pending  string // the change waiting for confirm at the last look
	open     string // a change seen pending whose end is not seen yet
	rollback string // the last rollback note seen, as ID and time
	alerted  string // the last change whose end was alerted
}

// checkChanges looks at the change store once.
func (m *monitor) checkChanges(now time.Time) {
	if m.changes == nil {
		return
	}
	w := &m.changeWatch
	id, err := m.changes.Pending()
	if err != nil {
		m.log.Debug("monitor: pending change", "err", err)
		return
	}
	note, err := m.changes.LastRollback()
	if err != nil {
		m.log.Debug("monitor: last rollback", "err", err)
	}
	noteKey := ""
	if note != nil {
		// The state is part of the key: a failed rollback and the retry
		// that finishes it are two events.
		noteKey = note.ID + " " + note.Time.String() + " " + string(note.State)
	}
	if !w.started {
		// What was there before moat started is history, except a rollback
		// just done (at boot, by moat-change-guard).
		w.started, w.pending, w.open, w.rollback = true, id, id, noteKey
		if note != nil && now.Sub(note.Time) < recentRollback {
			m.changeEnded(note.ID, noteState(note), note.Reason, now)
		}
		return
	}
	if w.open != "" && w.open != id {
		// No longer pending: alert its end once its manifest says how it
		// ended (the marker goes before the last state is written).
		if man, err := m.changes.Load(w.open); err != nil || man.State.Final() {
			if err == nil {
				// The rollback's note says more (what became of a quick
				// edit's moat.yaml); it is written before the marker goes.
				reason := man.Reason
				if note != nil && note.ID == man.ID {
					reason = note.Reason
				}
				m.changeEnded(man.ID, man.State, reason, now)
			}
			w.open = ""
		}
	}
	if id != "" && id != w.pending {
		if man, err := m.changes.Load(id); err == nil {
			m.notify(alert.Change{ID: id, Action: alert.ChangeApplied, Summary: strings.Join(man.Summary, "; "),
				ConfirmBy: man.Deadline, Time: now}.Event())
		}
		w.open = id
	}
	if noteKey != w.rollback && note != nil {
		// A rollback the pending marker did not show (applied and rolled
		// back between two looks), or a retry that finished one.
		m.changeEnded(note.ID, noteState(note), note.Reason, now)
	}
	w.pending, w.rollback = id, noteKey
}

// changeEnded alerts a change's end, once.
func (m *monitor) changeEnded(id string, state change.State, reason string, now time.Time) {
	var action string
	switch state {
	case change.Confirmed:
		action = alert.ChangeConfirmed
	case change.RolledBack:
		action = alert.ChangeRolledBack
	case change.RollbackFailed:
		action = alert.ChangeRollbackFailed
	default:
		return // still moving: the next look sees where it ends
	}
	key := id + " " + action
	if m.changeWatch.alerted == key {
		return
	}
	m.changeWatch.alerted = key
	c := alert.Change{ID: id, Action: action, Reason: reason, Time: now}
	if man, err := m.changes.Load(id); err == nil {
		c.Summary = strings.Join(man.Summary, "; ")
	}
	m.notify(c.Event())
}

// noteState is how the rollback a note records ended; notes written before
// the state was recorded are of finished rollbacks.
func noteState(n *change.RollbackNote) change.State {
	if n.State == "" {
		return change.RolledBack
	}
	return n.State
}

// pendingChange reads the change waiting for confirm, for moat status.
func pendingChange(s *change.Store) (*PendingChange, *change.RollbackNote) {
	var p *PendingChange
	if id, err := s.Pending(); err == nil && id != "" {
		p = &PendingChange{ID: id}
		if man, err := s.Load(id); err == nil {
			p.Summary, p.ConfirmBy, p.State = strings.Join(man.Summary, "; "), man.Deadline, string(man.State)
		}
	}
	note, _ := s.LastRollback()
	return p, note
}
