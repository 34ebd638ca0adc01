package change

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Session is an SSH connection as SSH_CONNECTION describes it:
// "client_ip client_port server_ip server_port".
type Session struct {
	Client, Server netip.AddrPort
}

// ParseSession reads SSH_CONNECTION.
func ParseSession(s string) (Session, bool) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return Session{}, false
	}
	ca, err1 := netip.ParseAddr(f[0])
	sa, err2 := netip.ParseAddr(f[2])
	cp, err3 := strconv.ParseUint(f[1], 10, 16)
	sp, err4 := strconv.ParseUint(f[3], 10, 16)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Session{}, false
	}
	return Session{
		Client: netip.AddrPortFrom(ca.Unmap(), uint16(cp)),
		Server: netip.AddrPortFrom(sa.Unmap(), uint16(sp)),
	}, true
}

// CheckSession decides whether the session confirming a change proves
// that a new login works: it must be an SSH session, not the one that
// applied the change (the same client address and port, which a
// reloaded sshd keeps alive whatever the new config says), and, after a
// port move, one that came in on a new port.
func CheckSession(applied, confirming string, ports []uint16) error {
	cur, ok := ParseSession(confirming)
	if !ok {
		return fmt.Errorf("moat confirm must run in a new SSH session, and this is none (no SSH_CONNECTION): log in again over SSH and confirm from there; that login is the proof the change lets you in")
	}
	if old, ok := ParseSession(applied); ok && old.Client == cur.Client && old.Server == cur.Server {
		return fmt.Errorf("this is the SSH session that applied the change (%s): a session that was open before the change proves nothing, since sshd keeps it whatever the new config says; open a NEW ssh connection and run moat confirm there", strings.TrimSpace(confirming))
	}
	if len(ports) > 0 && !slices.Contains(ports, cur.Server.Port()) {
		return fmt.Errorf("this session came in on port %d, but the change moves sshd to port %s: log in on the new port (ssh -p %s …) and confirm from there", cur.Server.Port(), joinPorts(ports), joinPorts(ports))
	}
	return nil
}

func joinPorts(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, " or ")
}

// ConfirmOptions drive Confirm.
type ConfirmOptions struct {
	// Session is SSH_CONNECTION of the confirming session.
	Session string
	// Unattended skips the session check: moat apply --yes confirms its
	// own change once the self-probe passed.
	Unattended bool
	Handlers   Handlers
	Log        *slog.Logger
	Notify     func(Notice)
}

// Confirm makes change id permanent: it writes the Final files, runs the
// confirm actions and disarms the timer. A failure there rolls the whole
// change back (*RolledBackError).
func (s *Store) Confirm(ctx context.Context, id string, opt ConfirmOptions) (*Manifest, error) {
	unlock, err := s.lock(id, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := s.Load(id)
	if err != nil {
		return nil, err
	}
	switch m.State {
	case Confirmed:
		return m, nil
	case RollbackFailed:
		return m, fmt.Errorf("change %s is half rolled back (%d paths failed): nothing to confirm; run moat rollback %s to finish", id, len(m.Errors), id)
	case RolledBack, RollingBack:
		return m, fmt.Errorf("change %s was rolled back (%s): nothing to confirm; run moat apply again", id, m.Reason)
	case Applying:
		return m, fmt.Errorf("change %s is still being applied: wait for moat apply to say it waits for confirm", id)
	}
	if time.Now().After(m.Deadline) {
		return m, fmt.Errorf("change %s: the confirm window closed at %s; its rollback is under way", id, m.Deadline.Format(time.TimeOnly))
	}
	if !opt.Unattended {
		if err := CheckSession(m.Session, opt.Session, m.ConfirmPorts); err != nil {
			return m, err
		}
	}
	rb := RollbackOptions{Handlers: opt.Handlers, Log: opt.Log, Notify: opt.Notify}
	var pre []*Shot // what confirm changes, for a later rollback (revert.go)
	failed := func(reason string) (*Manifest, error) {
		s.confirmPost(m, pre)
		if err := s.rollbackLocked(ctx, m, reason, rb); err != nil && opt.Log != nil {
			opt.Log.Error("rollback after a failed confirm", "id", id, "err", err)
		}
		return m, &RolledBackError{ID: id, Reason: m.Reason, Errors: m.Errors}
	}
	m.State = Confirming
	by := "session " + opt.Session
	if opt.Unattended {
		by = "moat apply --yes after the self-probe passed"
	}
	m.event(time.Now(), "confirming (%s)", by)
	if err := s.save(m); err != nil {
		return m, err
	}
	pre = s.confirmPre(m)
	dir := s.changeDir(id)
	for _, f := range m.Final {
		data, err := os.ReadFile(filepath.Join(dir, f.Snap))
		if err == nil {
			err = WriteFile(s.Root, File{Path: f.Path, Data: data, Mode: fsMode(f.Mode), Owner: f.Owner, Group: f.Group})
		}
		if err != nil {
			return failed(fmt.Sprintf("confirm: write %s: %v", f.Path, err))
		}
	}
	env := Env{Root: s.Root}
	for _, a := range m.Confirm {
		h := opt.Handlers[a.Kind]
		if h == nil {
			return failed(fmt.Sprintf("confirm: no handler for %s", a.Kind))
		}
		if err := h(ctx, env, a.Data); err != nil {
			return failed(fmt.Sprintf("confirm: %s: %v", a.Kind, err))
		}
	}
	s.confirmPost(m, pre)
	m.State = Confirmed
	m.event(time.Now(), "confirmed")
	if err := s.save(m); err != nil {
		return m, err
	}
	if err := s.setPending(""); err != nil {
		return m, err
	}
	disarm(ctx, m.Timer, id)
	if opt.Notify != nil {
		opt.Notify(Notice{ID: id, State: Confirmed, Text: "confirmed"})
	}
	return m, nil
}
