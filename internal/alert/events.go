package alert

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The event constructors: each documented event is a small struct whose
// Event method fixes its kind, severity, title, text and fields, so every
// producer (guard, audit, gateway, daemon) words the same event alike.
// Time, when zero, is left for the Dispatcher to stamp.

// Login is a successful login.
type Login struct {
	Service     string // "ssh" when empty
	User        string
	Addr        string
	Method      string // publickey, password, keyboard-interactive
	Fingerprint string // key fingerprint, SHA256:…
	Country     string
	// NewSource is set when this source address was never seen logging in
	// before; it raises the event to a warning.
	NewSource bool
	Time      time.Time
}

// Event implements the login event: info, or warning from a new source.
func (l Login) Event() Event {
	svc := or(l.Service, "ssh")
	sev, title := Info, fmt.Sprintf("%s login: %s from %s", strings.ToUpper(svc), l.User, l.Addr)
	if l.NewSource {
		sev, title = Warning, title+" (new source)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s logged in over %s from %s", l.User, svc, l.Addr)
	if l.Country != "" {
		fmt.Fprintf(&b, " (%s)", l.Country)
	}
	if l.Method != "" {
		fmt.Fprintf(&b, " with %s", l.Method)
	}
	if l.Fingerprint != "" {
		fmt.Fprintf(&b, " (%s)", l.Fingerprint)
	}
	b.WriteString(".")
	if l.NewSource {
		b.WriteString("\nThis source has never logged in before.")
	}
	return Event{Kind: KindLogin, Severity: sev, Time: l.Time, Title: title, Text: b.String(),
		Fields: fields("service", svc, "user", l.User, "addr", l.Addr, "method", l.Method,
			"fingerprint", l.Fingerprint, "country", l.Country, "new_source", strconv.FormatBool(l.NewSource))}
}

// Ban is an address banned by a jail, or by hand with moat ban.
type Ban struct {
	Jail     string
	Addr     string // address or prefix
	Country  string
	Failures int
	Duration time.Duration // 0: permanent
	// Manual marks `moat ban`; By names who did it. Manual bans go out at
	// once; automatic ones are summarised by the route's digest.
	Manual bool
	By     string
	Reason string
	Time   time.Time
}

// Event implements the ban event (info).
func (b Ban) Event() Event {
	var title, text string
	if b.Manual {
		title = fmt.Sprintf("Manual ban: %s", b.Addr)
		text = fmt.Sprintf("%s was banned by hand", b.Addr)
		if b.By != "" {
			text += " by " + b.By
		}
	} else {
		title = fmt.Sprintf("Banned %s (%s)", b.Addr, b.Jail)
		text = fmt.Sprintf("%s was banned by jail %s after %d failures", b.Addr, b.Jail, b.Failures)
	}
	if b.Country != "" {
		text += fmt.Sprintf("; country %s", b.Country)
	}
	text += "; " + forDuration(b.Duration) + "."
	if b.Reason != "" {
		text += "\nReason: " + b.Reason
	}
	f := fields("jail", b.Jail, "addr", b.Addr, "country", b.Country, "duration", durationField(b.Duration),
		"manual", strconv.FormatBool(b.Manual), "by", b.By, "reason", b.Reason)
	if b.Failures > 0 {
		f["failures"] = strconv.Itoa(b.Failures)
	}
	return Event{Kind: KindBan, Severity: Info, Time: b.Time, Title: title, Text: text, Fields: f}
}

// Unban is a ban lifted: by hand (moat unban) or because it expired.
// Expiries are summarised by the digest with the bans.
type Unban struct {
	Jail   string
	Addr   string
	Manual bool
	By     string
	Time   time.Time
}

// Event implements the unban event (info).
func (u Unban) Event() Event {
	title, text := fmt.Sprintf("Ban on %s expired", u.Addr), fmt.Sprintf("The ban on %s", u.Addr)
	if u.Jail != "" {
		text += fmt.Sprintf(" (%s)", u.Jail)
	}
	if u.Manual {
		title = fmt.Sprintf("Manual unban: %s", u.Addr)
		text += " was lifted by hand"
		if u.By != "" {
			text += " by " + u.By
		}
	} else {
		text += " expired"
	}
	return Event{Kind: KindUnban, Severity: Info, Time: u.Time, Title: title, Text: text + ".",
		Fields: fields("jail", u.Jail, "addr", u.Addr, "manual", strconv.FormatBool(u.Manual), "by", u.By)}
}

// Drift is a periodic audit that came out worse than the last: a lower
// score or new critical findings (a new listener on 0.0.0.0,
// PasswordAuthentication back on).
type Drift struct {
	Score, PreviousScore int
	// NewCritical lists the critical findings the last audit did not have,
	// each as "check-id: title".
	NewCritical []string
	Time        time.Time
}

// Event implements the drift event: warning, or critical with new
// critical findings.
func (d Drift) Event() Event {
	sev, title := Warning, fmt.Sprintf("Audit score fell from %d to %d", d.PreviousScore, d.Score)
	if n := len(d.NewCritical); n > 0 {
		sev = Critical
		title = fmt.Sprintf("New critical finding: %s", d.NewCritical[0])
		if n > 1 {
			title = fmt.Sprintf("%d new critical findings", n)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The periodic audit scored %d (was %d).", d.Score, d.PreviousScore)
	for _, f := range d.NewCritical {
		fmt.Fprintf(&b, "\nNew critical: %s", f)
	}
	b.WriteString("\nRun `moat audit` for details and fixes.")
	return Event{Kind: KindDrift, Severity: sev, Time: d.Time, Title: title, Text: b.String(),
		Fields: fields("score", strconv.Itoa(d.Score), "previous_score", strconv.Itoa(d.PreviousScore),
			"new_critical", strings.Join(d.NewCritical, "; "))}
}

// CertWarnDays is how close to expiry a certificate must be to alert.
const CertWarnDays = 14

// Cert is a certificate in trouble: its renewal failed, or it expires
// within CertWarnDays.
type Cert struct {
	Domain   string
	NotAfter time.Time
	// RenewErr is the renewal failure, empty when only expiry is near.
	RenewErr string
	// Time is when this was observed; the days left count from it (from
	// now when zero).
	Time time.Time
}

// Event implements the cert event: warning, critical within 3 days of
// expiry or after it.
func (c Cert) Event() Event {
	now := c.Time
	if now.IsZero() {
		now = time.Now()
	}
	left := c.NotAfter.Sub(now)
	days := int(left.Hours() / 24)
	sev := Warning
	if left < 3*24*time.Hour {
		sev = Critical
	}
	var title string
	switch {
	case c.RenewErr != "":
		title = fmt.Sprintf("Certificate renewal failed for %s", c.Domain)
	case left <= 0:
		title = fmt.Sprintf("Certificate for %s has expired", c.Domain)
	default:
		title = fmt.Sprintf("Certificate for %s expires in %d days", c.Domain, days)
	}
	var text string
	if left <= 0 {
		text = fmt.Sprintf("The certificate for %s expired on %s.", c.Domain, c.NotAfter.UTC().Format(time.DateOnly))
	} else {
		text = fmt.Sprintf("The certificate for %s expires on %s (%d days).", c.Domain, c.NotAfter.UTC().Format(time.DateOnly), days)
	}
	if c.RenewErr != "" {
		text += "\nRenewal failed: " + c.RenewErr
	}
	return Event{Kind: KindCert, Severity: sev, Time: c.Time, Title: title, Text: text,
		Fields: fields("domain", c.Domain, "not_after", c.NotAfter.UTC().Format(time.RFC3339),
			"days_left", strconv.Itoa(days), "renew_error", c.RenewErr)}
}

// DiskThreshold is the used percentage above which a disk alerts.
const DiskThreshold = 90

// Disk is a filesystem over DiskThreshold percent full.
type Disk struct {
	Mount       string
	UsedPercent float64
	FreeBytes   uint64
	Time        time.Time
}

// Event implements the disk event: warning, critical from 98%.
func (d Disk) Event() Event {
	sev := Warning
	if d.UsedPercent >= 98 {
		sev = Critical
	}
	pct := strconv.FormatFloat(d.UsedPercent, 'f', 0, 64)
	return Event{Kind: KindDisk, Severity: sev, Time: d.Time,
		Title: fmt.Sprintf("Disk %s is %s%% full", d.Mount, pct),
		Text:  fmt.Sprintf("The filesystem on %s is %s%% full, %s free.", d.Mount, pct, bytesText(d.FreeBytes)),
		Fields: fields("mount", d.Mount, "used_percent", strconv.FormatFloat(d.UsedPercent, 'f', 1, 64),
			"free_bytes", strconv.FormatUint(d.FreeBytes, 10))}
}

// Memory is memory pressure (little available, stalls) or an OOM kill.
type Memory struct {
	// OOMKill is set when the kernel's OOM killer killed Process (PID).
	OOMKill          bool
	Process          string
	PID              int
	AvailablePercent float64
	// Stall is the share of time tasks stalled on memory (PSI some avg60),
	// in percent; 0 when unknown.
	Stall float64
	Time  time.Time
}

// Event implements the memory event: warning for pressure, critical for
// an OOM kill.
func (m Memory) Event() Event {
	avail := strconv.FormatFloat(m.AvailablePercent, 'f', 0, 64)
	f := fields("oom_kill", strconv.FormatBool(m.OOMKill), "process", m.Process,
		"available_percent", strconv.FormatFloat(m.AvailablePercent, 'f', 1, 64))
	if m.PID > 0 {
		f["pid"] = strconv.Itoa(m.PID)
	}
	if m.Stall > 0 {
		f["stall_percent"] = strconv.FormatFloat(m.Stall, 'f', 1, 64)
	}
	if m.OOMKill {
		return Event{Kind: KindMemory, Severity: Critical, Time: m.Time,
			Title:  fmt.Sprintf("Out of memory: killed %s", m.Process),
			Text:   fmt.Sprintf("The kernel's OOM killer killed %s (pid %d); %s%% of memory is available now.", m.Process, m.PID, avail),
			Fields: f}
	}
	text := fmt.Sprintf("Only %s%% of memory is available.", avail)
	if m.Stall > 0 {
		text += fmt.Sprintf(" Tasks stalled on memory %.1f%% of the last minute.", m.Stall)
	}
	return Event{Kind: KindMemory, Severity: Warning, Time: m.Time,
		Title: fmt.Sprintf("Memory pressure: %s%% available", avail), Text: text, Fields: f}
}

// Reboot is a pending reboot (/run/reboot-required), usually for a new
// kernel or libc.
type Reboot struct {
	Packages []string
	Time     time.Time
}

// Event implements the reboot event (warning).
func (r Reboot) Event() Event {
	text := "A reboot is required to finish installing updates."
	if len(r.Packages) > 0 {
		text += "\nPackages: " + strings.Join(r.Packages, ", ")
	}
	return Event{Kind: KindReboot, Severity: Warning, Time: r.Time, Title: "Reboot required", Text: text,
		Fields: fields("packages", strings.Join(r.Packages, " "))}
}

// Change actions.
const (
	ChangeApplied    = "applied"
	ChangeConfirmed  = "confirmed"
	ChangeRolledBack = "rolled_back"
	// ChangeRollbackFailed: a rollback left paths it could not restore;
	// the watchdog and `moat rollback` retry it.
	ChangeRollbackFailed = "rollback_failed"
)

// Change is a step in a change's life: applied (awaiting confirm),
// confirmed, or rolled back.
type Change struct {
	ID      string
	Action  string // ChangeApplied, ChangeConfirmed, ChangeRolledBack, ChangeRollbackFailed
	Summary string // what the change does, one line
	// Reason says why it rolled back (no confirm in time, a check failed).
	Reason string
	// ConfirmBy is the deadline of an applied change.
	ConfirmBy time.Time
	Time      time.Time
}

// Event implements the change event: info, critical when rolled back.
func (c Change) Event() Event {
	sev := Info
	var title, text string
	switch c.Action {
	case ChangeRolledBack:
		sev = Critical
		title = fmt.Sprintf("Change %s rolled back", c.ID)
		text = fmt.Sprintf("Change %s (%s) was rolled back", c.ID, c.Summary)
		if c.Reason != "" {
			text += ": " + c.Reason
		}
		text += "."
	case ChangeRollbackFailed:
		sev = Critical
		title = fmt.Sprintf("Change %s: ROLLBACK INCOMPLETE", c.ID)
		text = fmt.Sprintf("Change %s (%s) could not be rolled back completely", c.ID, c.Summary)
		if c.Reason != "" {
			text += ": " + c.Reason
		}
		text += ". moat retries; `moat rollback " + c.ID + "` retries now and lists the paths left."
	case ChangeApplied:
		title = fmt.Sprintf("Change %s applied", c.ID)
		text = fmt.Sprintf("Change %s (%s) was applied", c.ID, c.Summary)
		if !c.ConfirmBy.IsZero() {
			text += fmt.Sprintf("; it rolls back unless `moat confirm` comes by %s", c.ConfirmBy.UTC().Format(time.RFC3339))
		}
		text += "."
	default:
		title = fmt.Sprintf("Change %s %s", c.ID, c.Action)
		text = fmt.Sprintf("Change %s (%s) was %s.", c.ID, c.Summary, c.Action)
	}
	f := fields("change", c.ID, "action", c.Action, "summary", c.Summary, "reason", c.Reason)
	if !c.ConfirmBy.IsZero() {
		f["confirm_by"] = c.ConfirmBy.UTC().Format(time.RFC3339)
	}
	return Event{Kind: KindChange, Severity: sev, Time: c.Time, Title: title, Text: text, Fields: f}
}

// Lifecycle actions.
const (
	Started = "started"
	Stopped = "stopped"
)

// Lifecycle is moat's daemon starting or stopping.
type Lifecycle struct {
	Action  string // Started or Stopped
	Version string
	Reason  string // why it stopped: signal, error
	Time    time.Time
}

// Event implements the lifecycle event: info when started, warning when
// stopped (the guard is down until it starts again).
func (l Lifecycle) Event() Event {
	sev, text := Info, "moat "+l.Action
	if l.Version != "" {
		text += " (version " + l.Version + ")"
	}
	if l.Reason != "" {
		text += ": " + l.Reason
	}
	text += "."
	if l.Action == Stopped {
		sev = Warning
		text += "\nThe firewall stays loaded, but nothing watches the logs until moat starts again."
	}
	return Event{Kind: KindLifecycle, Severity: sev, Time: l.Time, Title: "moat " + l.Action, Text: text,
		Fields: fields("action", l.Action, "version", l.Version, "reason", l.Reason)}
}

// TestEvent is what moat alert test sends to notifier name.
func TestEvent(name string) Event {
	return Event{Kind: KindTest, Severity: Info, Title: "Test alert from moat",
		Text:   fmt.Sprintf("If you read this, moat reaches you through notifier %q.", name),
		Fields: fields("notifier", name)}
}

// fields builds a map from key, value pairs, leaving out empty values.
func fields(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func forDuration(d time.Duration) string {
	if d <= 0 {
		return "permanently"
	}
	return "for " + durationText(d)
}

func durationField(d time.Duration) string {
	if d <= 0 {
		return "permanent"
	}
	return d.String()
}

// durationText prints a duration the way an operator writes bantimes:
// 10m, 1h30m, 2d, 1d6h; seconds only when there are any.
func durationText(d time.Duration) string {
	if d < time.Minute || d%time.Minute != 0 {
		return d.Round(time.Second).String()
	}
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.d
		}
	}
	return b.String()
}

func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
