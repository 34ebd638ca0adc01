package daemon

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/change"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/jail"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestStatusText(t *testing.T) {
	now := time.Date(2025, 3, 2, 12, 0, 0, 0, time.UTC)
	delta, since := 3, now.Add(-25*time.Hour)
	running := Status{
		Running: true, Version: "1.0.0", Config: "/etc/moat/moat.yaml", Uptime: "3h2m1s",
		Firewall: &firewall.Status{Loaded: true, Persisted: true, Chains: 3, Rules: 24,
			Sets:  []firewall.SetSize{{Name: "ban4", Elements: 14}, {Name: "ban6", Elements: 0}},
			Drops: []firewall.Drop{{Reason: "ban", Packets: 5120}, {Reason: "closed", Packets: 88213}, {Reason: "invalid", Packets: 12}}},
		Bans: 14,
		Jails: []jailStatus{{Name: "sshd", Filter: "sshd", Mode: "normal", Source: "journal: _SYSTEMD_UNIT=ssh.service",
			Lines: 120443, Matched: 9120, Stats: jail.Stats{Decisions: 31, Tracked: 212}}},
		Gateway: &GatewayStatus{HTTP: "[::]:80", HTTPS: "[::]:443", Sites: []gateway.CertInfo{
			{Host: "app.example.com", Source: gateway.CertACME, NotAfter: now.Add(61 * 24 * time.Hour)},
			{Host: "old.example.com", Source: gateway.CertFile, NotAfter: now.Add(9 * 24 * time.Hour)},
			{Host: "new.example.com", Source: gateway.CertACME, Err: "acme: no route to CA"},
		}},
		Audit: &AuditSummary{AuditRun: AuditRun{Time: now.Add(-7 * time.Minute), Score: 87,
			Findings: map[string]int{"high": 1, "low": 4, "info": 2}}, Change: &delta, Since: &since},
		PendingChange: &PendingChange{ID: "20250302T115900Z-1a2b3c", Summary: "sshd: PasswordAuthentication no; firewall: 24 rules", ConfirmBy: now.Add(95 * time.Second)},
		LastRollback:  &change.RollbackNote{ID: "20250302T090000Z-4d5e6f", Time: now.Add(-3 * time.Hour), Reason: "not confirmed within 2m0s"},
		Conditions:    []Condition{{Kind: "disk", Subject: "/", Severity: alert.Warning, Since: now.Add(-2 * time.Hour), Title: "Disk / is 93% full"}},
		Notifiers: []alert.NotifierHealth{
			{Name: "phone", Type: "ntfy", Sent: 41, LastSuccess: now.Add(-3 * time.Minute)},
			{Name: "ops", Type: "webhook", Sent: 3, Failed: 2, Retries: 8, LastSuccess: now.Add(-5 * time.Hour),
				LastError: "HTTP 503: upstream down", LastErrorAt: now.Add(-10 * time.Minute)},
		},
	}
	var b bytes.Buffer
	running.WriteText(&b, now)
	golden(t, "status/running.txt", b.Bytes())

	offline := Status{DaemonError: "connect to moat daemon at /run/moat/moat.sock: no such file or directory",
		Firewall: &firewall.Status{}, Bans: 3,
		PendingChange: &PendingChange{ID: "20250302T110000Z-0f0f0f", Summary: "admin: ops", State: string(change.RollbackFailed)},
		Audit:         &AuditSummary{AuditRun: AuditRun{Time: now.Add(-26 * time.Hour), Score: 64, Findings: map[string]int{"critical": 1}, Critical: []string{"SSH-001: Password authentication is offered"}}}}
	b.Reset()
	offline.WriteText(&b, now)
	golden(t, "status/offline.txt", b.Bytes())
}
