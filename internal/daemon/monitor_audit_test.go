package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/audit"
	"github.com/moat-sh/moat/internal/host"
)

// report builds an audit report with a score and failed checks.
func report(score int, fails ...audit.Result) *audit.Report {
	r := &audit.Report{Score: score}
	for _, f := range fails {
		f.Status = audit.Fail
		r.Results = append(r.Results, f)
	}
	r.Results = append(r.Results, audit.Result{ID: "SSH-005", Severity: audit.Low, Status: audit.Pass})
	return r
}

var (
	passwordAuth = audit.Result{ID: "SSH-001", Severity: audit.Critical, Title: "Password authentication is offered"}
	redisOpen    = audit.Result{ID: "EXP-001", Severity: audit.Critical, Title: "A datastore or admin port is reachable from the internet", Subject: "redis-server 0.0.0.0:6379"}
	noUpgrades   = audit.Result{ID: "UPD-001", Severity: audit.High, Title: "unattended-upgrades is not installed"}
)

func TestDriftAudit(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var next *audit.Report
	m := newMonitor(&monitor{host: host.New(dir), notify: rec.notify, now: func() time.Time { return now },
		history: filepath.Join(dir, AuditHistoryFile), version: "test",
		audit: func(context.Context) (*audit.Report, error) {
			if next == nil {
				return nil, errors.New("audit failed")
			}
			return next, nil
		}})
	ctx := context.Background()

	steps := []struct {
		name string
		rep  *audit.Report
		want []string
	}{
		{"baseline: nothing to compare with", report(80, noUpgrades), nil},
		{"same again", report(80, noUpgrades), nil},
		{"better is no news", report(90), nil},
		{"a failed audit records nothing", nil, nil},
		{"score fell", report(85, noUpgrades), []string{"drift warning: Audit score fell from 90 to 85"}},
		{"PasswordAuthentication back on", report(85, noUpgrades, passwordAuth),
			[]string{"drift critical: New critical finding: SSH-001: Password authentication is offered"}},
		{"still on: no repeat", report(85, noUpgrades, passwordAuth), nil},
		{"and a datastore on 0.0.0.0", report(70, noUpgrades, passwordAuth, redisOpen),
			[]string{"drift critical: New critical finding: EXP-001: A datastore or admin port is reachable from the internet (redis-server 0.0.0.0:6379)"}},
		{"fixed", report(90), nil},
	}
	for _, s := range steps {
		next = s.rep
		m.runAudit(ctx)
		now = now.Add(15 * time.Minute)
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: alerts\n got %q\nwant %q", s.name, got, s.want)
		}
	}
	if last := m.lastRun(); last == nil || last.Score != 90 {
		t.Errorf("lastRun = %+v", last)
	}

	h, err := readAuditHistory(filepath.Join(dir, AuditHistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != 8 || h.Generator != "moat test" {
		t.Fatalf("history: %d runs by %q, want 8 by moat test", len(h.Runs), h.Generator)
	}
	if r := h.Runs[6]; r.Score != 70 || r.Findings["critical"] != 2 || r.Findings["high"] != 1 || len(r.Critical) != 2 {
		t.Errorf("run 7 = %+v", r)
	}

	// A restart compares with the file, not with nothing.
	m2 := newMonitor(&monitor{host: host.New(dir), notify: rec.notify, now: func() time.Time { return now },
		history: filepath.Join(dir, AuditHistoryFile), audit: func(context.Context) (*audit.Report, error) { return report(60), nil }})
	if last := m2.lastRun(); last == nil || last.Score != 90 {
		t.Errorf("after restart, lastRun = %+v", last)
	}
	m2.runAudit(ctx)
	if got := rec.take(); !slices.Equal(got, []string{"drift warning: Audit score fell from 90 to 60"}) {
		t.Errorf("after restart: %q", got)
	}
}

func TestAuditHistoryBounded(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	score := 50
	m := newMonitor(&monitor{host: host.New(dir), notify: func(alert.Event) {}, now: func() time.Time { return now },
		history: filepath.Join(dir, AuditHistoryFile),
		audit:   func(context.Context) (*audit.Report, error) { return report(score), nil }})
	for i := range 150 {
		score = 50 + i%40
		m.runAudit(context.Background())
		now = now.Add(15 * time.Minute)
	}
	h, err := readAuditHistory(filepath.Join(dir, AuditHistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Runs) != maxAuditRuns || h.Runs[len(h.Runs)-1].Score != 50+149%40 {
		t.Errorf("history holds %d runs, last %+v", len(h.Runs), h.Runs[len(h.Runs)-1])
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("state dir holds %d files, want only the history (no temp files left)", len(entries))
	}
}

func TestAuditTrend(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	run := func(h time.Duration, score int) AuditRun { return AuditRun{Time: t0.Add(h), Score: score} }
	for _, c := range []struct {
		name string
		runs []AuditRun
		want string
	}{
		{"one run", []AuditRun{run(0, 87)}, "87"},
		{"up since yesterday", []AuditRun{run(0, 80), run(time.Hour, 84), run(25*time.Hour, 83), run(26*time.Hour, 87)}, "87 (↑3 since yesterday)"},
		{"down since yesterday", []AuditRun{run(0, 90), run(24*time.Hour, 85)}, "85 (↓5 since yesterday)"},
		{"younger history", []AuditRun{run(0, 80), run(3*time.Hour, 80)}, "80 (unchanged in 3h)"},
	} {
		s := auditHistory{Runs: c.runs}.summary()
		if got := s.Trend(); got != c.want {
			t.Errorf("%s: Trend() = %q, want %q", c.name, got, c.want)
		}
	}
	if s := (auditHistory{}).summary(); s != nil {
		t.Errorf("empty history summary = %+v", s)
	}
}

func TestReadAuditHistoryCorrupt(t *testing.T) {
	dir := t.TempDir()
	if h, err := readAuditHistory(filepath.Join(dir, "missing.json")); err != nil || len(h.Runs) != 0 {
		t.Errorf("missing file: %+v, %v", h, err)
	}
	p := filepath.Join(dir, AuditHistoryFile)
	os.WriteFile(p, []byte("{not json"), 0o600)
	if _, err := LastAudit(dir); err == nil {
		t.Error("corrupt history read without error")
	}
}
