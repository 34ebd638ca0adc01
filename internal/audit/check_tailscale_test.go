package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/tailscale/tailscaletest"
)

// tsHost copies the clean fixture host; vpnOnlySSH drops port 22 from
// its firewall's public accept rule, so sshd is reachable over the VPN
// only.
func tsHost(t *testing.T, vpnOnlySSH bool) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "host")
	if err := os.CopyFS(root, os.DirFS("testdata/hosts/clean")); err != nil {
		t.Fatal(err)
	}
	normaliseModes(t, root)
	os.Chmod(filepath.Join(root, "swapfile"), 0o600)
	if vpnOnlySSH {
		p := filepath.Join(root, ".fixture/nft.json")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		nb := strings.Replace(string(b), `[22, 80, 443]`, `[80, 443]`, 1)
		if nb == string(b) {
			nb = strings.Replace(string(b), `[22,80,443]`, `[80,443]`, 1)
		}
		if nb == string(b) {
			t.Fatal("the clean host's ruleset no longer opens [22, 80, 443]: update the test")
		}
		os.WriteFile(p, []byte(nb), 0o644)
	}
	return root
}

func tsAudit(t *testing.T, root string, a tailscaletest.Answers, public ...PortRange) map[string]Result {
	t.Helper()
	files := tailscaletest.Answers{}
	for k, v := range a {
		files[k] = tailscaletest.Fixture(v)
	}
	sock := tailscaletest.Serve(t, files)
	rep, err := Run(context.Background(), Options{Root: root, NoProbe: true, AdminUser: "deploy", SkipApt: true,
		PublicPorts: append([]PortRange{{"tcp", 80, 80}, {"tcp", 443, 443}}, public...), TailscaleSocket: sock, TailscaleCLI: "-",
		Now: func() time.Time { return time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Result{}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.ID, "TS-") || r.ID == "EXP-001" || r.ID == "EXP-003" || r.ID == "EXP-005" {
			if prev, ok := out[r.ID]; ok && prev.Status == Fail {
				continue // keep the first failure
			}
			out[r.ID] = r
		}
	}
	return out
}

func want(t *testing.T, got map[string]Result, id string, st Status, sev Severity, evidence string) {
	t.Helper()
	r, ok := got[id]
	if !ok {
		t.Fatalf("%s not reported", id)
	}
	if r.Status != st || (st == Fail && r.Severity != sev) || !strings.Contains(strings.Join(r.Evidence, "\n"), evidence) {
		t.Errorf("%s: got %s %s %q, want %s %s with %q", id, r.Status, r.Severity, r.Evidence, st, sev, evidence)
	}
}

// TestTailscaleKeyExpiry: a node key 8 days from expiry is critical on a
// host whose SSH is VPN-only, medium when SSH is also public, and passes
// with key expiry disabled.
func TestTailscaleKeyExpiry(t *testing.T) {
	lab.RequireTool(t, "sshd")
	near := tailscaletest.Answers{"/localapi/v0/status": "status-expiry-near.json", "/localapi/v0/serve-config": "serve-none.json", "/localapi/v0/prefs": "prefs-plain.json"}
	got := tsAudit(t, tsHost(t, true), near)
	want(t, got, "TS-001", Fail, Critical, "sshd is not reachable from the internet")
	want(t, got, "TS-001", Fail, Critical, "(in 8 days)")
	want(t, got, "TS-002", Pass, 0, "no Funnel is on")
	want(t, got, "TS-004", Pass, 0, "node key expires 2026-12-15T08:14:02Z")
	want(t, got, "TS-004", Pass, 0, "MagicDNS name: vps.tail1234.ts.net")
	if got["TS-003"].Status != NA {
		t.Errorf("TS-003 without subnet routes: %s", got["TS-003"])
	}

	near2 := tailscaletest.Answers{"/localapi/v0/status": "status-expiry-near.json", "/localapi/v0/serve-config": "serve-none.json"}
	got = tsAudit(t, tsHost(t, false), near2)
	want(t, got, "TS-001", Fail, Medium, "sshd is also reachable from the internet")

	got = tsAudit(t, tsHost(t, true), tailscaletest.Answers{"/localapi/v0/status": "status-expiry-disabled.json", "/localapi/v0/serve-config": "serve-none.json"})
	want(t, got, "TS-001", Pass, 0, "key expiry is disabled")
}

// TestTailscaleFunnel: Funnel publishing local ports not declared public
// is a finding (critical for a datastore), the exposure view counts
// them as public, and a Funnel to a declared port passes.
func TestTailscaleFunnel(t *testing.T) {
	lab.RequireTool(t, "sshd")
	fun := tailscaletest.Answers{"/localapi/v0/status": "status-funnel.json", "/localapi/v0/serve-config": "serve-funnel.json"}
	root := tsHost(t, true)
	// An app on 127.0.0.1:3000 and PostgreSQL on 127.0.0.1:5432: private
	// to the host, but published by Funnel.
	f, err := os.OpenFile(filepath.Join(root, "proc/net/tcp"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("   8: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0\n")
	f.WriteString("   9: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0\n")
	f.Close()
	got := tsAudit(t, root, fun)
	// The exposure view counts them as public: the datastore is EXP-001,
	// the inventory says how; EXP-003 leaves the app to TS-002.
	want(t, got, "EXP-005", Pass, 0, "public through Tailscale Funnel")
	want(t, got, "EXP-001", Fail, Critical, "Tailscale Funnel publishes it to the internet at https://vps.tail1234.ts.net:10000/")
	if r := got["EXP-003"]; r.Status != Pass {
		t.Errorf("EXP-003 judged a Funnel port: %s", r)
	}
	r := got["TS-002"]
	if r.Status != Fail {
		t.Fatalf("TS-002: %s", r)
	}
	// The first failure is the first Funnel in order: :10000 → 5432.
	want(t, got, "TS-002", Fail, Critical, "PostgreSQL is published to the internet through Funnel")
	// Declared public: 3000 and 5432 pass.
	got = tsAudit(t, tsHost(t, true), fun, PortRange{"tcp", 3000, 3000}, PortRange{"tcp", 5432, 5432})
	want(t, got, "TS-002", Pass, 0, "port 3000 is declared public")
	// Served to the tailnet only: no Funnel.
	got = tsAudit(t, tsHost(t, true), tailscaletest.Answers{"/localapi/v0/status": "status-expiry-disabled.json", "/localapi/v0/serve-config": "serve-tailnet-only.json"})
	want(t, got, "TS-002", Pass, 0, "no Funnel is on")
}

// TestTailscaleRPFilter: strict rp_filter with subnet routes advertised
// is medium; loose passes.
func TestTailscaleRPFilter(t *testing.T) {
	lab.RequireTool(t, "sshd")
	a := func() tailscaletest.Answers {
		return tailscaletest.Answers{"/localapi/v0/status": "status-subnet.json", "/localapi/v0/serve-config": "serve-none.json", "/localapi/v0/prefs": "prefs-subnet.json"}
	}
	root := tsHost(t, true)
	got := tsAudit(t, root, a())
	want(t, got, "TS-003", Fail, Medium, "advertises subnet routes 10.20.0.0/24")
	os.WriteFile(filepath.Join(root, "proc/sys/net/ipv4/conf/all/rp_filter"), []byte("2\n"), 0o644)
	got = tsAudit(t, root, a())
	want(t, got, "TS-003", Pass, 0, "rp_filter = 2")
}

// TestTailscaleAbsent: no tailscaled, every check n/a with the reason.
func TestTailscaleAbsent(t *testing.T) {
	lab.RequireTool(t, "sshd")
	rep, err := Run(context.Background(), Options{Root: tsHost(t, false), NoProbe: true, SkipApt: true,
		TailscaleSocket: filepath.Join(t.TempDir(), "none.sock"), TailscaleCLI: "-"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rep.Results {
		if strings.HasPrefix(r.ID, "TS-") {
			n++
			if r.Status != NA || !strings.Contains(strings.Join(r.Evidence, " "), "not running") {
				t.Errorf("%s", r)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d TS results", n)
	}
}
