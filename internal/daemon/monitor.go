package daemon

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/audit"
	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/host"
)

// Monitor intervals, when Options leave them zero.
const (
	// DefaultCheckEvery is how often disks, memory, the reboot flag and
	// certificates are looked at: a handful of small file reads.
	DefaultCheckEvery = time.Minute
	// DefaultAuditEvery is how often the drift audit runs (and on
	// SIGHUP): a few hundred milliseconds of reads, sshd -T included.
	DefaultAuditEvery = 15 * time.Minute
	// auditDelay lets the daemon settle before the first audit.
	auditDelay = 30 * time.Second
)

// monitor watches for trouble that builds up slowly: configuration drift
// (a periodic audit compared with the last), full disks, memory pressure
// and OOM kills, a pending reboot, certificates near expiry or failing
// to renew; and changes applied, confirmed or rolled back by moat apply
// and its timers. A condition alerts once when it starts, and again only when
// it gets worse (a warning turning critical) or after it cleared; events
// (an OOM kill, a drift) alert each time they happen.
type monitor struct {
	host    *host.Host
	now     func() time.Time
	notify  func(alert.Event)
	log     *slog.Logger
	audit   func(ctx context.Context) (*audit.Report, error)
	certs   func() []gateway.CertInfo // nil without a gateway
	history string                    // the audit history file
	version string
	kmsg    *kmsg         // nil when the kernel log cannot be read
	changes *change.Store // nil: changes are not watched

	checkEvery, auditEvery, firstAudit, changeEvery time.Duration
	auditNow                                        chan struct{}
	changeWatch                                     changeWatch // the monitor goroutine's own

	mu     sync.Mutex
	active map[string]Condition
	oom    uint64 // /proc/vmstat oom_kill at the last check
	oomOK  bool   // oom holds a reading
	// victims are OOM kills read from the kernel log since the last check.
	victims []oomVictim
	last    *AuditRun // the last drift audit, for metrics
}

// Condition is trouble the monitors see now, for moat status.
type Condition struct {
	Kind     string         `json:"kind"` // an alert kind: disk, memory, reboot, cert
	Subject  string         `json:"subject,omitempty"`
	Severity alert.Severity `json:"severity"`
	Since    time.Time      `json:"since"`
	Title    string         `json:"title"`
	level    int
}

func newMonitor(m *monitor) *monitor {
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.checkEvery <= 0 {
		m.checkEvery = DefaultCheckEvery
	}
	if m.auditEvery <= 0 {
		m.auditEvery = DefaultAuditEvery
	}
	if m.changeEvery <= 0 {
		m.changeEvery = DefaultChangeEvery
	}
	if m.firstAudit <= 0 {
		m.firstAudit = min(auditDelay, m.auditEvery)
	}
	m.auditNow = make(chan struct{}, 1)
	m.active = map[string]Condition{}
	if h, err := readAuditHistory(m.history); err == nil && len(h.Runs) > 0 {
		m.last = &h.Runs[len(h.Runs)-1]
	}
	return m
}

// run checks until ctx ends.
func (m *monitor) run(ctx context.Context) error {
	if m.kmsg != nil {
		defer m.kmsg.Close()
	}
	m.check()
	m.checkChanges(m.now())
	checks := time.NewTicker(m.checkEvery)
	defer checks.Stop()
	changes := time.NewTicker(m.changeEvery)
	defer changes.Stop()
	audits := time.NewTimer(m.firstAudit)
	defer audits.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-checks.C:
			m.check()
		case <-changes.C:
			m.checkChanges(m.now())
		case <-m.auditNow:
			m.runAudit(ctx)
			audits.Reset(m.auditEvery)
		case <-audits.C:
			m.runAudit(ctx)
			audits.Reset(m.auditEvery)
		}
	}
}

// requestAudit runs the drift audit soon (after a reload), without
// waiting for its turn.
func (m *monitor) requestAudit() {
	select {
	case m.auditNow <- struct{}{}:
	default:
	}
}

// check runs every host check once.
func (m *monitor) check() {
	now := m.now()
	m.checkDisks(now)
	m.checkMemory(now)
	m.checkReboot(now)
	m.checkCerts(now)
}

// set records a condition's level (0 clear, 1 warning, 2 critical) and
// alerts when it rose. ev builds the alert; it is called only then.
func (m *monitor) set(kind, subject string, level int, now time.Time, ev func() alert.Event) {
	key := kind + " " + subject
	m.mu.Lock()
	prev, was := m.active[key]
	switch {
	case level <= 0:
		delete(m.active, key)
		m.mu.Unlock()
		if was {
			m.log.Info("condition cleared", "kind", kind, "subject", subject, "since", prev.Since)
		}
		return
	case was && level <= prev.level:
		prev.level = level // a fall keeps the condition; rising again alerts
		m.active[key] = prev
		m.mu.Unlock()
		return
	}
	e := ev()
	c := Condition{Kind: kind, Subject: subject, Severity: e.Severity, Since: now, Title: e.Title, level: level}
	if was {
		c.Since = prev.Since
	}
	m.active[key] = c
	m.mu.Unlock()
	m.log.Warn("condition", "kind", kind, "subject", subject, "title", e.Title)
	m.notify(e)
}

// sweep clears the conditions of kind whose subject was not seen this
// time (an unmounted disk, a removed site).
func (m *monitor) sweep(kind string, seen map[string]bool, now time.Time) {
	m.mu.Lock()
	var gone []string
	for _, c := range m.active {
		if c.Kind == kind && !seen[c.Subject] {
			gone = append(gone, c.Subject)
		}
	}
	m.mu.Unlock()
	for _, s := range gone {
		m.set(kind, s, 0, now, nil)
	}
}

// lastRun returns the last drift audit, nil before the first.
func (m *monitor) lastRun() *AuditRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// levelOf reports a condition's current level (0 when clear).
func (m *monitor) levelOf(kind, subject string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[kind+" "+subject].level
}

// Conditions lists the active conditions, worst first.
func (m *monitor) conditions() []Condition {
	m.mu.Lock()
	out := make([]Condition, 0, len(m.active))
	for _, c := range m.active {
		out = append(out, c)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Condition) int {
		if a.Severity != b.Severity {
			return int(b.Severity) - int(a.Severity)
		}
		return strings.Compare(a.Kind+" "+a.Subject, b.Kind+" "+b.Subject)
	})
	return out
}

// startMonitor starts the monitors, with the gateway's certificates when
// it runs.
func (d *Daemon) startMonitor(ctx context.Context) {
	m := &monitor{host: d.h, notify: d.disp.Notify, log: d.log, audit: d.audit,
		history: filepath.Join(d.o.StateDir, AuditHistoryFile), version: d.o.Version,
		checkEvery: d.o.CheckEvery, auditEvery: d.o.AuditEvery}
	if d.gw != nil {
		m.certs = d.gw.Certificates
	}
	m.changes = change.NewStore("")
	if k, err := openKmsg(); err == nil {
		m.kmsg = k
	} else {
		d.log.Debug("OOM kills will not be named", "err", err)
	}
	d.mon = newMonitor(m)
	d.goRun(ctx, "monitors", d.mon.run)
}

// audit runs the drift audit with what the running config says: the
// apt simulation and the live SSH probe left out, as they take long and
// leave traces (apt locks, sshd log lines the guard would read).
func (d *Daemon) audit(ctx context.Context) (*audit.Report, error) {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	o := AuditOptions(cfg)
	o.Version, o.SkipApt, o.NoProbe = d.o.Version, true, true
	return audit.Run(ctx, o)
}
