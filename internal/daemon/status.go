package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/blocklist"
	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/vpn"
)

// Status is `moat status`: every layer's state on one screen. From a
// running daemon it is complete; without one (OfflineStatus) it holds
// what can be read from the kernel and the state directory, and Running
// is false.
type Status struct {
	Running bool `json:"daemon_running"`
	// DaemonError says why the daemon could not be asked (offline only).
	DaemonError string `json:"daemon_error,omitempty"`
	Version     string `json:"version,omitempty"`
	Config      string `json:"config,omitempty"`
	Uptime      string `json:"uptime,omitempty"`

	Firewall *firewall.Status `json:"firewall,omitempty"`
	FWError  string           `json:"firewall_error,omitempty"`

	Bans      int          `json:"active_bans"`
	BansError string       `json:"active_bans_error,omitempty"`
	Jails     []jailStatus `json:"jails"`
	Dropped   uint64       `json:"ban_events_dropped"`

	Gateway *GatewayStatus `json:"gateway,omitempty"`
	// Fleet is the fleet block, from the last check (every 15s).
	Fleet *FleetSummary `json:"fleet,omitempty"`

	// Blocklists are guard.blocklists' lists; null when none run.
	Blocklists *blocklist.Status `json:"blocklists,omitempty"`
	// VPN is the WireGuard interface moat manages; null without one.
	VPN *vpn.InterfaceStatus `json:"vpn,omitempty"`
	// StatusPage is where the status page is served; null without one.
	StatusPage *StatusPageInfo `json:"status_page,omitempty"`

	// Audit is the last drift audit with its trend; null before the first.
	Audit      *AuditSummary `json:"audit"`
	AuditError string        `json:"audit_error,omitempty"`

	// PendingChange is an applied change awaiting `moat confirm`; null
	// when there is none.
	PendingChange *PendingChange `json:"pending_change"`
	// LastRollback is the last change rolled back, if any.
	LastRollback *change.RollbackNote `json:"last_rollback,omitempty"`

	// Conditions are the monitors' current alerts: disks, memory, reboot,
	// certificates.
	Conditions []Condition `json:"conditions"`

	Notifiers []alert.NotifierHealth `json:"notifiers"`
}

// GatewayStatus is the gateway's listeners and its sites' certificates.
type GatewayStatus struct {
	HTTP  string             `json:"http"`
	HTTPS string             `json:"https"`
	Sites []gateway.CertInfo `json:"sites"`
}

// PendingChange is an applied change whose rollback timer runs until
// `moat confirm`.
type PendingChange struct {
	ID        string    `json:"id"`
	Summary   string    `json:"summary"`
	ConfirmBy time.Time `json:"confirm_by"`
	// State is the change's state; rollback-failed means a rollback left
	// paths it could not restore and is being retried.
	State string `json:"state,omitempty"`
}

func (d *Daemon) status(ctx context.Context) Status { return d.statusWith(ctx, readFirewall) }

// statusWith is status with the firewall read by fw (the status page
// reads it through the metrics' cache).
func (d *Daemon) statusWith(ctx context.Context, fw func(context.Context) (*firewall.Status, string)) Status {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	st := Status{Running: true, Version: d.o.Version, Config: cfg.File,
		Uptime: time.Since(d.start).Round(time.Second).String(),
		Bans:   d.store.Len(), Jails: d.jailStatuses(), Notifiers: d.disp.Health(), Dropped: d.enf.Dropped(),
		Conditions: d.mon.conditions()}
	st.Firewall, st.FWError = fw(ctx)
	st.Blocklists = d.blocklistStatus()
	if d.gw != nil {
		st.Gateway = &GatewayStatus{HTTP: d.gw.HTTPAddr(), HTTPS: d.gw.HTTPSAddr(), Sites: d.gw.Certificates()}
	}
	st.Fleet = d.fleetSummary()
	st.Audit, st.AuditError = d.audits.lastAudit(d.o.StateDir)
	st.PendingChange, st.LastRollback = pendingChange(change.NewStore(""))
	st.VPN = vpn.ReadStatus(cfg.VPN.WireGuard)
	st.StatusPage = d.page.info()
	return st
}

// OfflineStatus is `moat status` without a daemon to ask: the firewall
// from the kernel, bans from moat.db, the last drift audit from its
// history, and one round of the monitors' host checks. why is the reason
// the daemon could not be asked.
func OfflineStatus(ctx context.Context, stateDir string, why error) Status {
	st := Status{DaemonError: why.Error(), Jails: []jailStatus{}, Notifiers: []alert.NotifierHealth{}}
	st.Firewall, st.FWError = readFirewall(ctx)
	st.Audit, st.AuditError = lastAudit(stateDir)
	st.Bans, st.BansError = countBans(filepath.Join(stateDir, "moat.db"))
	st.PendingChange, st.LastRollback = pendingChange(change.NewStore(""))
	m := newMonitor(&monitor{host: host.New(""), notify: func(alert.Event) {}})
	m.check()
	st.Conditions = m.conditions()
	st.StatusPage = offlineStatusPage(stateDir)
	return st
}

func readFirewall(ctx context.Context) (*firewall.Status, string) {
	fw, err := firewall.ReadStatus(ctx, "")
	if err != nil {
		return nil, err.Error()
	}
	return fw, ""
}

func lastAudit(stateDir string) (*AuditSummary, string) {
	a, err := LastAudit(stateDir)
	if err != nil {
		return nil, err.Error()
	}
	return a, ""
}

// countBans counts the active bans in the database, if there is one:
// reading it never creates it.
func countBans(path string) (int, string) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, ""
		}
		return 0, err.Error()
	}
	// Read-only: without the daemon, status must neither take the state
	// directory nor change (or recover) the store.
	bans, err := ban.ReadActive(context.Background(), path, time.Now())
	if err != nil {
		return 0, err.Error()
	}
	return len(bans), ""
}

// WriteText renders st for people, on one screen.
func (st *Status) WriteText(w io.Writer, now time.Time) {
	if st.Running {
		fmt.Fprintf(w, "moat %s, up %s, config %s\n", st.Version, st.Uptime, configName(st.Config))
	} else {
		fmt.Fprintf(w, "daemon not running: %s\n", st.DaemonError)
		fmt.Fprintln(w, "what follows is read from the kernel and the state directory; start it with moat run (under systemd: examples/moat.service)")
	}

	fmt.Fprint(w, "\nFIREWALL  ")
	switch fw := st.Firewall; {
	case fw == nil:
		fmt.Fprintf(w, "not read: %s\n", st.FWError)
	case !fw.Loaded:
		fmt.Fprintln(w, "NOT LOADED (moat apply firewall --yes)")
	default:
		boot := "persisted for boot"
		if !fw.Persisted {
			boot = "NOT persisted for boot"
		}
		fmt.Fprintf(w, "loaded, %d rules, %s\n", fw.Rules, boot)
		var drops, sets []string
		for _, d := range fw.Drops {
			drops = append(drops, fmt.Sprintf("%s %d", d.Reason, d.Packets))
		}
		for _, s := range fw.Sets {
			sets = append(sets, fmt.Sprintf("%s %d", s.Name, s.Elements))
		}
		fmt.Fprintf(w, "  dropped packets: %s\n", orText(strings.Join(drops, ", "), "none counted"))
		fmt.Fprintf(w, "  set elements:    %s\n", orText(strings.Join(sets, ", "), "no sets"))
	}

	fmt.Fprintf(w, "\nGUARD  %d active ban(s)", st.Bans)
	if st.BansError != "" {
		fmt.Fprintf(w, " (moat.db not read: %s)", st.BansError)
	}
	if fw := st.Firewall; fw != nil && !slices.ContainsFunc(fw.Sets, func(s firewall.SetSize) bool { return s.Name == firewall.SetBan4 }) {
		fmt.Fprint(w, ", NOT ENFORCED: table inet moat has no ban sets (moat apply firewall, or firewall.mode: bans-only and moat run)")
	}
	fmt.Fprintln(w)
	for _, j := range st.Jails {
		fmt.Fprintf(w, "  %-10s %d lines, %d failures, %d bans, %d tracked  (%s/%s from %s)\n",
			j.Name, j.Lines, j.Matched, j.Stats.Decisions, j.Stats.Tracked, j.Filter, j.Mode, j.Source)
	}
	if st.Running && len(st.Jails) == 0 {
		fmt.Fprintln(w, "  no jails running (guard disabled)")
	}

	writeBlocklists(w, st.Blocklists, now)
	writeVPN(w, st.VPN, now)
	writeStatusPage(w, st.StatusPage)

	if g := st.Gateway; g != nil {
		fmt.Fprintf(w, "\nGATEWAY  http %s, https %s\n", g.HTTP, g.HTTPS)
		for _, c := range g.Sites {
			fmt.Fprintf(w, "  %-28s %s\n", c.Host, certText(c, now))
		}
	}

	st.Fleet.writeText(w)

	fmt.Fprint(w, "\nAUDIT  ")
	switch a := st.Audit; {
	case a != nil:
		fmt.Fprintf(w, "score %s, %s (%s ago)\n", a.Trend(), findingsText(a.Findings), ageText(now.Sub(a.Time)))
		for _, c := range a.Critical {
			fmt.Fprintf(w, "  critical: %s\n", c)
		}
	case st.AuditError != "":
		fmt.Fprintf(w, "history not read: %s\n", st.AuditError)
	default:
		fmt.Fprintln(w, "no drift audit yet (moat run audits every 15m; moat audit now)")
	}

	fmt.Fprint(w, "\nPENDING CHANGE  ")
	if c := st.PendingChange; c != nil && c.State == string(change.RollbackFailed) {
		fmt.Fprintf(w, "%s, ROLLBACK INCOMPLETE: retried by moat; `moat rollback %s` retries now and lists what is left\n", c.ID, c.ID)
		if c.Summary != "" {
			fmt.Fprintf(w, "  %s\n", c.Summary)
		}
	} else if c != nil {
		left := max(c.ConfirmBy.Sub(now), 0).Round(time.Second)
		fmt.Fprintf(w, "%s, rolled back in %s unless confirmed (moat confirm, from a new SSH session)\n", c.ID, left)
		if c.Summary != "" {
			fmt.Fprintf(w, "  %s\n", c.Summary)
		}
	} else {
		fmt.Fprintln(w, "none")
	}
	if r := st.LastRollback; r != nil && now.Sub(r.Time) < 7*24*time.Hour {
		fmt.Fprintf(w, "  last rollback: %s, %s ago: %s\n", r.ID, ageText(now.Sub(r.Time)), r.Reason)
	}

	if len(st.Conditions) == 0 {
		fmt.Fprintln(w, "\nHOST  ok (disks, memory, reboot, certificates)")
	} else {
		fmt.Fprintln(w, "\nHOST")
		for _, c := range st.Conditions {
			fmt.Fprintf(w, "  %-8s %s (for %s)\n", c.Severity, c.Title, ageText(now.Sub(c.Since)))
		}
	}

	if !st.Running {
		return
	}
	if len(st.Notifiers) == 0 {
		fmt.Fprintln(w, "\nALERTS  no notifiers configured")
		return
	}
	fmt.Fprintln(w, "\nALERTS")
	for _, n := range st.Notifiers {
		fmt.Fprintf(w, "  %-12s %-8s %s\n", n.Name, n.Type, notifierText(n, now))
	}
}

func configName(s string) string {
	if s == "" {
		return "(built-in defaults)"
	}
	return s
}

func orText(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// ageText renders a duration the way people say it: 45s, 12m, 3h, 4d.
func ageText(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func certText(c gateway.CertInfo, now time.Time) string {
	var s string
	if c.NotAfter.IsZero() {
		s = c.Source + ", no certificate yet"
	} else {
		left := c.NotAfter.Sub(now)
		s = fmt.Sprintf("%s, expires %s (%d days)", c.Source, c.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
		switch {
		case left <= 0:
			s = fmt.Sprintf("%s, EXPIRED %s", c.Source, c.NotAfter.UTC().Format(time.DateOnly))
		case left < alert.CertWarnDays*24*time.Hour:
			s += " SOON"
		}
	}
	if c.Err != "" {
		s += "; renewal FAILING: " + c.Err
	}
	return s
}

func findingsText(f map[string]int) string {
	var parts []string
	for _, sev := range auditSeverities {
		if n := f[sev]; n > 0 && sev != "info" {
			parts = append(parts, fmt.Sprintf("%d %s", n, sev))
		}
	}
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}

func notifierText(n alert.NotifierHealth, now time.Time) string {
	s := fmt.Sprintf("sent %d, failed %d, dropped %d, queued %d", n.Sent, n.Failed, n.Dropped, n.Queued)
	if !n.LastSuccess.IsZero() {
		s += ", last ok " + ageText(now.Sub(n.LastSuccess)) + " ago"
	}
	if n.LastError != "" && n.LastErrorAt.After(n.LastSuccess) {
		s += "; FAILING: " + n.LastError
	}
	return s
}
