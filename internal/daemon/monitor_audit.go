package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/audit"
	"github.com/moat-sh/moat/internal/config"
)

// AuditHistoryFile is the drift audit's record under the state directory:
// each run's score and findings summary, the last maxAuditRuns of them.
const AuditHistoryFile = "audit-history.json"

// maxAuditRuns bounds the history: a day and a bit at the default interval,
// enough for "since yesterday".
const maxAuditRuns = 100

// AuditRun is one drift audit's summary.
type AuditRun struct {
	Time  time.Time `json:"time"`
	Score int       `json:"score"`
	// Findings counts the findings by severity name.
	Findings map[string]int `json:"findings"`
	// Critical lists the critical findings as "ID: title (subject)": what
	// the next run compares with to find new ones.
	Critical []string `json:"critical,omitempty"`
	// Urgent are the high and critical findings with their fixes (no
	// evidence: the history stays small), for the status page.
	Urgent []audit.Result `json:"urgent,omitempty"`
}

// auditHistory is the file's content.
type auditHistory struct {
	Generator string     `json:"generator"` // moat and its version, who wrote it
	Runs      []AuditRun `json:"runs"`      // oldest first
}

// readAuditHistory reads the history; a missing file is an empty one.
func readAuditHistory(path string) (auditHistory, error) {
	var h auditHistory
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("read audit history: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return auditHistory{}, fmt.Errorf("read audit history %s: %w (delete it to start a new one)", path, err)
	}
	return h, nil
}

// write replaces the file atomically: a reader sees the old history or
// the new one, never half of one.
func (h auditHistory) write(path string) error {
	b, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename itself survives a crash
		d.Close()
	}
	return nil
}

// summarize reduces a report to what the history keeps.
func summarize(r *audit.Report, at time.Time) AuditRun {
	run := AuditRun{Time: at, Score: r.Score, Findings: map[string]int{}}
	for _, f := range r.Findings() {
		run.Findings[f.Severity.String()]++
		if f.Severity >= audit.High {
			u := f
			u.Evidence = nil
			run.Urgent = append(run.Urgent, u)
		}
		if f.Severity == audit.Critical {
			s := f.ID + ": " + f.Title
			if f.Subject != "" {
				s += " (" + f.Subject + ")"
			}
			run.Critical = append(run.Critical, s)
		}
	}
	slices.Sort(run.Critical)
	run.Critical = slices.Compact(run.Critical)
	return run
}

// drift compares a run with the one before: the alert to send, if the
// score fell or a critical finding appeared.
func drift(prev, cur AuditRun) (alert.Drift, bool) {
	d := alert.Drift{Score: cur.Score, PreviousScore: prev.Score, Time: cur.Time}
	for _, c := range cur.Critical {
		if !slices.Contains(prev.Critical, c) {
			d.NewCritical = append(d.NewCritical, c)
		}
	}
	return d, cur.Score < prev.Score || len(d.NewCritical) > 0
}

// runAudit runs the drift audit once, records it and alerts on drift. The
// first run ever is the baseline: nothing to compare with.
func (m *monitor) runAudit(ctx context.Context) {
	rep, err := m.audit(ctx)
	if err != nil {
		m.log.Warn("drift audit", "err", err)
		return
	}
	cur := summarize(rep, m.now())
	h, err := readAuditHistory(m.history)
	if err != nil {
		m.log.Warn("drift audit: starting a new history", "err", err)
	}
	if n := len(h.Runs); n > 0 {
		if d, ok := drift(h.Runs[n-1], cur); ok {
			m.notify(d.Event())
		}
	}
	h.Generator = "moat " + m.version
	h.Runs = append(h.Runs, cur)
	if n := len(h.Runs); n > maxAuditRuns {
		h.Runs = slices.Delete(h.Runs, 0, n-maxAuditRuns)
	}
	m.mu.Lock()
	m.last = &cur
	m.mu.Unlock()
	if err := h.write(m.history); err != nil {
		m.log.Warn("drift audit: history not saved", "err", err)
	}
	m.log.Info("drift audit", "score", cur.Score, "findings", len(rep.Findings()), "critical", len(cur.Critical))
}

// AuditSummary is the last drift audit and its trend, for moat status.
type AuditSummary struct {
	AuditRun
	// Change is the score's change since Since, the run about a day
	// before the last (or the oldest there is); absent with one run.
	Change *int       `json:"change,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
}

// trendAge is how far back a trend looks.
const trendAge = 24 * time.Hour

// summary returns the last run and its trend; nil without any run.
func (h auditHistory) summary() *AuditSummary {
	n := len(h.Runs)
	if n == 0 {
		return nil
	}
	last := h.Runs[n-1]
	s := &AuditSummary{AuditRun: last}
	if n == 1 {
		return s
	}
	ref := h.Runs[0]
	for i := n - 2; i >= 0; i-- {
		if !h.Runs[i].Time.After(last.Time.Add(-trendAge)) {
			ref = h.Runs[i]
			break
		}
	}
	change, since := last.Score-ref.Score, ref.Time
	s.Change, s.Since = &change, &since
	return s
}

// Trend renders the score with its trend: "87 (↑3 since yesterday)".
func (s *AuditSummary) Trend() string {
	if s.Change == nil {
		return fmt.Sprint(s.Score)
	}
	when := "since yesterday"
	if age := s.Time.Sub(*s.Since); age < 20*time.Hour {
		when = "in " + ageText(age)
	}
	switch c := *s.Change; {
	case c > 0:
		return fmt.Sprintf("%d (↑%d %s)", s.Score, c, when)
	case c < 0:
		return fmt.Sprintf("%d (↓%d %s)", s.Score, -c, when)
	}
	return fmt.Sprintf("%d (unchanged %s)", s.Score, when)
}

// LastAudit reads the drift audit history under stateDir: nil when no
// audit ran yet.
func LastAudit(stateDir string) (*AuditSummary, error) {
	h, err := readAuditHistory(filepath.Join(stateDir, AuditHistoryFile))
	if err != nil {
		return nil, err
	}
	return h.summary(), nil
}

// AuditOptions carries what moat.yaml knows about the operator into the
// audit, which does not read the config itself (layers stay apart).
func AuditOptions(c *config.Config) audit.Options {
	o := audit.Options{AdminUser: c.Host.Admin.User}
	for _, s := range c.Host.Admin.Sources {
		o.AdminSources = append(o.AdminSources, s.Prefix)
	}
	if c.File != "" {
		// Only a written config speaks for this host's VPN; the built-in
		// default (Tailscale) would be a guess, so the audit looks instead.
		o.VPNRanges = c.VPN.Prefixes()
		o.VPNInterfaces = c.VPN.Interfaces
	}
	for _, p := range c.Firewall.Public {
		o.PublicPorts = append(o.PublicPorts, audit.PortRange{Proto: p.Proto, From: p.From, To: p.To})
	}
	if c.Gateway != nil {
		for _, s := range c.Gateway.Sites {
			o.Domains = append(o.Domains, s.Host)
		}
	}
	return o
}
