package change

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moat-sh/moat/internal/host"
)

// StateDir is where changes are kept, under the root.
const StateDir = "/var/lib/moat/changes"

// State is where a change is in its life.
type State string

// States, in order. Confirmed and RolledBack are final.
const (
	Applying    State = "applying"     // snapshots taken, timer armed, steps running
	Waiting     State = "waiting"      // applied and probed; waiting for confirm
	Confirming  State = "confirming"   // writing the final files
	Confirmed   State = "confirmed"    // permanent
	RollingBack State = "rolling-back" // restoring
	RolledBack  State = "rolled-back"  // restored (see Manifest.Reason)
	// RollbackFailed: a rollback left paths it could not restore (see
	// Manifest.Outcome). Not final: the watchdog, moat rollback and the
	// boot guard retry it, and it stays pending, so no other change
	// starts on a half-restored host.
	RollbackFailed State = "rollback-failed"
)

// Final reports whether s is an end state.
func (s State) Final() bool { return s == Confirmed || s == RolledBack }

// Manifest is a change as recorded in its directory: enough for another
// process to confirm or roll it back.
type Manifest struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Root    string    `json:"root,omitempty"`
	Config  string    `json:"config,omitempty"`
	// Session is SSH_CONNECTION of the applying session; confirm must
	// come from another.
	Session string `json:"session,omitempty"`
	// ConfirmPorts, when set, are the sshd ports a confirming session
	// must have come in on (after a port move: the new port).
	ConfirmPorts []uint16 `json:"confirm_ports,omitempty"`
	// ConfirmVia, when set, are where a confirming connection must come
	// from or arrive on (the VPN, once SSH is VPN-only).
	ConfirmVia []netip.Prefix `json:"confirm_via,omitempty"`
	// Applier is the moat apply process and its start (clock ticks since
	// boot, which tells it from a later process with the same PID): should
	// it die before the change waits for confirm, the change is rolled
	// back at once rather than when the steps' budget runs out.
	Applier      int    `json:"applier,omitempty"`
	ApplierStart uint64 `json:"applier_start,omitempty"`
	// Activated is when the steps had all run; a confirming connection
	// must have been accepted after it. ActivatedTicks is the same
	// instant in clock ticks since boot (the clock of /proc/PID/stat's
	// start times), BootID the boot it belongs to.
	Activated      time.Time `json:"activated,omitzero"`
	ActivatedTicks uint64    `json:"activated_ticks,omitempty"`
	BootID         string    `json:"boot_id,omitempty"`
	Layers         []string  `json:"layers"`
	Summary        []string  `json:"summary,omitempty"`
	State          State     `json:"state"`
	// Window is the confirm window; Deadline when it ends.
	Window   time.Duration `json:"window"`
	Deadline time.Time     `json:"deadline"`
	Timer    TimerInfo     `json:"timer"`
	Entries  []Entry       `json:"entries"`
	Final    []FinalFile   `json:"final,omitempty"`
	// ConfigEdit is moat.yaml's edit by a quick edit, rolled back with
	// the rest (config.go).
	ConfigEdit *ConfigRecord `json:"config_edit,omitempty"`
	// Undo holds the undo actions of the steps that started, in order.
	Undo    []Action `json:"undo,omitempty"`
	Confirm []Action `json:"confirm,omitempty"`
	// Reason says why it was rolled back; Errors what went wrong doing it.
	Reason string   `json:"reason,omitempty"`
	Errors []string `json:"errors,omitempty"`
	Events []Event  `json:"events,omitempty"`
	// From is the state the change was in when its first rollback began
	// (a confirmed change has no timer left to disarm).
	From State `json:"rolled_back_from,omitempty"`
	// Attempts counts rollback attempts; Outcome is what the last one did,
	// path by path.
	Attempts int           `json:"rollback_attempts,omitempty"`
	Outcome  []PathOutcome `json:"outcome,omitempty"`
}

// FinalFile is a Final file waiting in the change directory for confirm.
type FinalFile struct {
	Path  string `json:"path"`
	Mode  uint32 `json:"mode"`
	Owner string `json:"owner,omitempty"`
	Group string `json:"group,omitempty"`
	Snap  string `json:"snap"`
}

// Event is a line of a change's history.
type Event struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// Store keeps changes under root+StateDir.
type Store struct {
	Root string
	dir  string
}

// NewStore returns the store of the host at root ("" for /).
func NewStore(root string) *Store {
	return &Store{Root: root, dir: HostPath(root, StateDir)}
}

// Path is the store's directory on disk.
func (s *Store) Path() string { return s.dir }

var idRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$`)

// ValidID checks a change ID given on the command line.
func ValidID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("%q is not a change ID (like 20250102T150405Z-1a2b3c; see moat change list)", id)
	}
	return nil
}

func newID(now time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (s *Store) changeDir(id string) string { return filepath.Join(s.dir, id) }

// Load reads a change's manifest.
func (s *Store) Load(id string) (*Manifest, error) {
	if err := ValidID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.changeDir(id), "change.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no change %s in %s (see moat change list)", id, s.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read change %s: %w", id, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read change %s: %w", id, err)
	}
	return &m, nil
}

func (s *Store) save(m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.changeDir(m.ID), "change.json"), append(b, '\n'), 0o600, 0, 0, time.Time{})
}

func (m *Manifest) event(now time.Time, format string, args ...any) {
	m.Events = append(m.Events, Event{Time: now, Text: fmt.Sprintf(format, args...)})
}

// lock takes the change's lock, which every state transition holds.
// Bounded: a holder runs one step at a time, and a stuck one must not
// keep a rollback away forever.
func (s *Store) lock(id string, wait time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.changeDir(id), "lock"), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock change %s: %w", id, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				err = fmt.Errorf("another moat process holds it for more than %s", wait)
			}
			return nil, fmt.Errorf("lock change %s: %w", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pending returns the ID of the change waiting for confirm, or "".
func (s *Store) Pending() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "pending"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if ValidID(id) != nil {
		return "", fmt.Errorf("%s/pending holds %q, not a change ID", s.dir, id)
	}
	return id, nil
}

func (s *Store) setPending(id string) error {
	p := filepath.Join(s.dir, "pending")
	if id == "" {
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return writeAtomic(p, []byte(id+"\n"), 0o600, 0, 0, time.Time{})
}

// List returns every change, oldest first.
func (s *Store) List() ([]*Manifest, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Manifest
	for _, e := range ents {
		if !e.IsDir() || ValidID(e.Name()) != nil {
			continue
		}
		m, err := s.Load(e.Name())
		if err != nil {
			continue // a change whose apply died before its manifest
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *Manifest) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Latest returns the newest change, or nil.
func (s *Store) Latest() (*Manifest, error) {
	all, err := s.List()
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return all[len(all)-1], nil
}

// FailedRollbacks returns the changes whose rollback left paths
// unrestored, for moat status and moat change list.
func (s *Store) FailedRollbacks() ([]*Manifest, error) {
	all, err := s.List()
	var out []*Manifest
	for _, m := range all {
		if m.State == RollbackFailed {
			out = append(out, m)
		}
	}
	return out, err
}

// RollbackNote is the marker the last rollback leaves for moat status and
// alerts.
type RollbackNote struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
	Errors []string  `json:"errors,omitempty"`
	// State is rolled-back, or rollback-failed while paths remain.
	State State `json:"state,omitempty"`
}

// LastRollback returns the last rollback's note, or nil when there was
// none.
func (s *Store) LastRollback() (*RollbackNote, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "last-rollback"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var n RollbackNote
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("read last-rollback: %w", err)
	}
	return &n, nil
}

func (s *Store) noteRollback(n RollbackNote) error {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir, "last-rollback"), append(b, '\n'), 0o600, 0, 0, time.Time{})
}

// applierAlive reports whether the moat apply that makes m still runs.
// A manifest that does not name it (or its start: /proc was unreadable)
// counts as alive: its deadline alone bounds it.
func (m *Manifest) applierAlive() bool {
	if m.Applier <= 0 || m.ApplierStart == 0 {
		return true
	}
	start, ok := host.New("").ProcStart(m.Applier)
	return ok && start == m.ApplierStart
}

// applierDied is the rollback reason for a change whose moat apply died
// before the change waited for confirm.
func (m *Manifest) applierDied() string {
	last := ""
	if n := len(m.Events); n > 0 {
		last = " (last: " + m.Events[n-1].Text + ")"
	}
	return fmt.Sprintf("moat apply (pid %d) died before the change was complete%s", m.Applier, last)
}

// ApplierDead reports whether m is still being applied by a process that
// is gone.
func (m *Manifest) ApplierDead() bool { return m.State == Applying && !m.applierAlive() }

// laterInEffect returns the newest change after id that is still in
// effect (not rolled back), or "": a confirmed change may be rolled back
// once every later one was.
func (s *Store) laterInEffect(id string) (string, error) {
	all, err := s.List()
	if err != nil {
		return "", err
	}
	for _, m := range slices.Backward(all) {
		if m.ID <= id {
			break
		}
		if m.State != RolledBack {
			return m.ID, nil
		}
	}
	return "", nil
}
