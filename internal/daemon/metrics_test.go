package daemon

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/logwatch"
)

// memSets are kernel sets in memory.
type memSets struct{}

func (memSets) Add(context.Context, []ban.SetElement) error    { return nil }
func (memSets) Delete(context.Context, []netip.Prefix) error   { return nil }
func (memSets) List(context.Context) ([]ban.SetElement, error) { return nil, nil }

// scrape returns the metric families an HTTP scrape of reg exposes, by
// name, with their sample lines.
func scrape(t *testing.T, reg *prometheus.Registry) map[string][]string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return parseExposition(t, resp.Body)
}

var sampleName = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)`)

func parseExposition(t *testing.T, r io.Reader) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ := strings.Cut(rest, " ")
			out[name] = out[name][:0:0]
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		name := sampleName.FindString(line)
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok {
				if _, known := out[base]; known {
					name = base
				}
			}
		}
		out[name] = append(out[name], line)
	}
	return out
}

// documentedMetrics are the names docs/metrics.md lists in its tables.
func documentedMetrics(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(moat_[a-z0-9_]+)`").FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	store, err := ban.Open(filepath.Join(dir, "moat.db"), ban.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d := &Daemon{o: Options{Version: "1.2.3"}, log: slog.New(slog.DiscardHandler), store: store,
		reg: prometheus.NewRegistry(), pipelines: map[string]*runningPipeline{}}
	d.enf = ban.NewEnforcer(store, memSets{}, ban.EnforcerOptions{})
	disp, err := alert.New(alert.Config{}, alert.Options{Registerer: d.reg})
	if err != nil {
		t.Fatal(err)
	}
	d.disp = disp

	// An sshd jail that read three failures from one address and banned it.
	eng, err := jail.New("sshd", jail.Jail{MaxRetry: 3}, jail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	filt, err := filter.New("sshd", "normal", filter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{name: "sshd", unit: &guard.Unit{Name: "sshd", Filter: filt, Engine: eng}, eng: eng, enf: d.enf, logins: &loginBook{}, log: d.log}
	d.pipelines["sshd"] = &runningPipeline{p: p}
	now := time.Now()
	var batch []logwatch.Line
	for range 3 {
		batch = append(batch, logwatch.Line{Time: now,
			Text: []byte(now.Format(time.Stamp) + " vps sshd[42]: Failed password for root from 203.0.113.9 port 4242 ssh2")})
	}
	if err := p.handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}

	d.met = newMetrics(d)
	d.met.fw.read = func(context.Context, string) (*firewall.Status, error) {
		return &firewall.Status{Loaded: true, Sets: []firewall.SetSize{{Name: "ban4", Elements: 1}},
			Drops: []firewall.Drop{{Reason: "ban", Packets: 7, Bytes: 420}, {Reason: "closed", Packets: 9, Bytes: 540}}}, nil
	}
	for len(d.enf.Events()) > 0 {
		d.met.banEvent(<-d.enf.Events())
	}
	d.mon = newMonitor(&monitor{host: host.New(dir), notify: disp.Notify})
	d.mon.last = &AuditRun{Time: now, Score: 87, Findings: map[string]int{"high": 2}}

	disp.Notify(alert.Lifecycle{Action: alert.Started}.Event())
	got := scrape(t, d.reg)
	want := map[string]string{
		"moat_guard_lines_total":                   `moat_guard_lines_total{jail="sshd"} 3`,
		"moat_guard_failures_matched_total":        `moat_guard_failures_matched_total{jail="sshd"} 3`,
		"moat_guard_failures_unattributable_total": `moat_guard_failures_unattributable_total{jail="sshd"} 0`,
		"moat_guard_failures_ignored_total":        `moat_guard_failures_ignored_total{jail="sshd"} 0`,
		"moat_guard_decisions_total":               `moat_guard_decisions_total{jail="sshd"} 1`,
		"moat_guard_tracked_sources":               `moat_guard_tracked_sources{jail="sshd"} 0`,
		"moat_ban_active_bans":                     `moat_ban_active_bans 1`,
		"moat_ban_bans_total":                      `moat_ban_bans_total{jail="sshd",origin="auto"} 1`,
		"moat_ban_events_dropped_total":            `moat_ban_events_dropped_total 0`,
		"moat_firewall_loaded":                     `moat_firewall_loaded 1`,
		"moat_firewall_dropped_packets_total":      `moat_firewall_dropped_packets_total{reason="closed"} 9`,
		"moat_firewall_dropped_bytes_total":        `moat_firewall_dropped_bytes_total{reason="ban"} 420`,
		"moat_firewall_set_elements":               `moat_firewall_set_elements{set="ban4"} 1`,
		"moat_audit_score":                         `moat_audit_score 87`,
		"moat_audit_findings":                      `moat_audit_findings{severity="high"} 2`,
		"moat_monitor_conditions":                  `moat_monitor_conditions{kind="disk"} 0`,
		"moat_build_info":                          `moat_build_info{version="1.2.3"} 1`,
	}
	for name, sample := range want {
		if !slices.Contains(got[name], sample) {
			t.Errorf("%s: want sample %q, got %q", name, sample, got[name])
		}
	}
	for _, name := range []string{"moat_audit_last_run_timestamp_seconds", "moat_start_time_seconds", "moat_alert_events_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s not exposed", name)
		}
	}

	// Every moat_ metric exposed is documented, and the daemon's own ones
	// are all exposed.
	docs := documentedMetrics(t)
	for name := range got {
		if strings.HasPrefix(name, "moat_") && !slices.Contains(docs, name) {
			t.Errorf("%s is exposed but not in docs/metrics.md", name)
		}
	}
	for _, desc := range allDescs {
		name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(desc.String())[1]
		if !slices.Contains(docs, name) {
			t.Errorf("%s is not in docs/metrics.md", name)
		}
	}
}

func TestFirewallCacheReadsOncePerTTL(t *testing.T) {
	calls := 0
	c := fwCache{read: func(context.Context, string) (*firewall.Status, error) {
		calls++
		return &firewall.Status{}, nil
	}}
	for range 5 {
		c.get()
	}
	if calls != 1 {
		t.Errorf("5 reads within the TTL ran %d firewall reads", calls)
	}
}
