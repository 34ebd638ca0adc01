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

	"github.com/moat-sh/moat/internal/host"
)

// Session is an SSH connection as SSH_CONNECTION describes it.
type Session = host.Conn

// ParseSession reads SSH_CONNECTION.
func ParseSession(s string) (Session, bool) { return host.ParseSSHConnection(s) }

// Proof is what a confirming process offers: the SSH session it runs in
// (host.Operator, walked up from the process through /proc) and how to
// tell the host's own addresses.
type Proof struct {
	Operator host.Operator
	// Own reports loopback and the host's own addresses; nil knows only
	// loopback.
	Own func(netip.Addr) bool
	// BootID is the kernel's boot ID now; start times compare within one.
	BootID string
}

// SelfProof is the proof of the calling process on the live host.
func SelfProof() Proof {
	h := host.New("")
	return Proof{Operator: h.Self(), Own: h.OwnAddr, BootID: h.BootID()}
}

// ConfirmRule is why a session cannot confirm a change.
type ConfirmRule struct {
	// Rule names the rule broken: "not-ssh", "no-connection", "own-host",
	// "before-change", "old-port", "not-vpn".
	Rule string
	Text string
}

func (e *ConfirmRule) Error() string { return e.Text }

// CheckProof decides whether a session proves that the change admits the
// operator: it must run inside an sshd session whose connection sshd
// accepted after the change's sshd and firewall steps took effect (a tab
// opened earlier, or a ControlMaster connection reused, is older: sshd
// keeps such connections whatever the new config says); the connection
// must come from outside the host (an ssh hop from a shell already on it
// proves nothing about the way in); and, when the change moves sshd's
// port or makes SSH VPN-only, it must have arrived on the new port or
// over the VPN.
func CheckProof(m *Manifest, p Proof) error {
	const what = "open a NEW ssh connection from your own machine (ssh -o ControlPath=none …) and run `sudo moat confirm %s` directly in it"
	how := fmt.Sprintf(what, m.ID)
	o := p.Operator
	if !o.InSSH() {
		return &ConfirmRule{"not-ssh", "moat confirm is not running inside an SSH session (no sshd process above it: a console, cron, or a tmux/screen session that outlived its login): " + how + "; that login is the proof the change lets you in"}
	}
	if !o.Conn.Valid() || o.ConnFrom != "socket" {
		// SSH_CONNECTION is the user's to set: only the socket of the
		// sshd process says where the connection really comes from.
		return &ConfirmRule{"no-connection", fmt.Sprintf("cannot read which connection sshd process %d serves from its socket (run moat confirm as root, through sudo): %s", o.SSHD, how)}
	}
	own := p.Own
	if own == nil {
		own = func(a netip.Addr) bool { return a.IsLoopback() }
	}
	if own(o.Conn.Client.Addr()) || o.Conn.Client.Addr() == o.Conn.Server.Addr() {
		return &ConfirmRule{"own-host", fmt.Sprintf("this SSH connection comes from the host itself (%s): an ssh hop from a shell already on the host proves nothing about logging in from outside; %s", o.Conn.Client.Addr(), how)}
	}
	if m.ActivatedTicks == 0 {
		if m.State == Waiting {
			return &ConfirmRule{"before-change", fmt.Sprintf("change %s was applied by an older moat that did not record when it took effect, so no connection can prove it: roll it back (moat rollback %s) and apply again", m.ID, m.ID)}
		}
		return &ConfirmRule{"before-change", "the change has not taken effect yet: wait for moat apply to say it waits for confirm, then run moat confirm from a new ssh connection"}
	}
	if p.BootID == "" || p.BootID == m.BootID {
		if o.SSHDStart <= m.ActivatedTicks {
			ago := time.Duration(m.ActivatedTicks-o.SSHDStart) * (time.Second / host.ClockTicks)
			opened := m.Activated.Add(-ago)
			return &ConfirmRule{"before-change", fmt.Sprintf("this SSH connection (sshd process %d, from %s) was opened at %s, before the change took effect at %s: a tab opened earlier, or a ControlMaster/ControlPersist connection reused, is kept by sshd whatever the new config says, so it proves nothing; %s",
				o.SSHD, o.Conn.Client.Addr(), opened.Format(time.TimeOnly), m.Activated.Format(time.TimeOnly), how)}
		}
	}
	if len(m.ConfirmPorts) > 0 && !slices.Contains(m.ConfirmPorts, o.Conn.Server.Port()) {
		return &ConfirmRule{"old-port", fmt.Sprintf("this session came in on port %d, but the change moves sshd to port %s: log in on the new port (ssh -p %s …) and confirm from there", o.Conn.Server.Port(), joinPorts(m.ConfirmPorts), joinPorts(m.ConfirmPorts))}
	}
	if len(m.ConfirmVia) > 0 && !slices.ContainsFunc(m.ConfirmVia, func(pf netip.Prefix) bool {
		return pf.Contains(o.Conn.Server.Addr()) || pf.Contains(o.Conn.Client.Addr())
	}) {
		return &ConfirmRule{"not-vpn", fmt.Sprintf("this session came in on %s from %s, but the change makes SSH reachable over the VPN only: connect over the VPN (to %s) and confirm from there", o.Conn.Server.Addr(), o.Conn.Client.Addr(), joinPrefixes(m.ConfirmVia))}
	}
	return nil
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		if p.IsSingleIP() {
			s[i] = p.Addr().String()
		} else {
			s[i] = p.String()
		}
	}
	return strings.Join(s, " or ")
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
	// Proof is the confirming session (SelfProof for the caller).
	Proof Proof
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
		if !m.applierAlive() {
			reason := m.applierDied()
			if err := s.rollbackLocked(ctx, m, reason, RollbackOptions{Handlers: opt.Handlers, Log: opt.Log, Notify: opt.Notify}); err != nil && opt.Log != nil {
				opt.Log.Error("roll back a change whose apply died", "id", id, "err", err)
			}
			return m, &RolledBackError{ID: id, Reason: m.Reason, Errors: m.Errors}
		}
		return m, fmt.Errorf("change %s is still being applied by moat apply (pid %d): wait for it to say it waits for confirm", id, m.Applier)
	}
	if time.Now().After(m.Deadline) {
		return m, fmt.Errorf("change %s: the confirm window closed at %s; its rollback is under way", id, m.Deadline.Format(time.TimeOnly))
	}
	if !opt.Unattended {
		if err := CheckProof(m, opt.Proof); err != nil {
			m.event(time.Now(), "confirm refused: %s", err.(*ConfirmRule).Rule)
			s.save(m)
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
	o := opt.Proof.Operator
	by := fmt.Sprintf("connection %s (from sshd's %s), sshd process %d", o.Conn, o.ConnFrom, o.SSHD)
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
