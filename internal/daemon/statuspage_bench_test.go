package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moat-sh/moat/internal/alert"
	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/host"
	"github.com/moat-sh/moat/internal/statuspage"
)

// WriteStatusPageFixture fills stateDir with n bans spread over the last
// week (all in the page's window, the worst case), a tenth of them in
// force, and a year of drift audits every 15 minutes: what
// BenchmarkStatusPage and bench/statuspage.sh serve.
func WriteStatusPageFixture(stateDir string, n int, now time.Time) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	st, err := ban.Open(filepath.Join(stateDir, "moat.db"), ban.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	week := 7 * 24 * time.Hour
	const batch = 2000
	for i := 0; i < n; i += batch {
		var bans []ban.Ban
		for j := i; j < min(i+batch, n); j++ {
			a := netip.AddrFrom4([4]byte{byte(11 + j>>16%200), byte(j >> 8), byte(j), 7})
			created := now.Add(-time.Duration(int64(week) / int64(n) * int64(n-j)))
			exp := created.Add(time.Hour)
			if j%10 == 0 {
				exp = now.Add(24 * time.Hour)
			}
			bans = append(bans, ban.Ban{Prefix: netip.PrefixFrom(a, 32), Jail: "sshd", Reason: "5 failures in 10m",
				Created: created, Expires: exp, Failures: 5})
		}
		if _, err := st.Ban(ctx, bans); err != nil {
			return err
		}
	}
	if _, err := st.Expire(ctx, now); err != nil {
		return err
	}
	h := auditHistory{Generator: "moat bench"}
	for t := now.AddDate(-1, 0, 0); !t.After(now); t = t.Add(15 * time.Minute) {
		h.Runs = append(h.Runs, AuditRun{Time: t, Score: 60 + int(t.Unix()/900%40), Findings: map[string]int{"high": 1, "medium": 3}})
	}
	return h.write(filepath.Join(stateDir, AuditHistoryFile))
}

// pageDaemon is a daemon with what the status page reads: the store, the
// enforcer, the dispatcher and the monitors.
func pageDaemon(tb testing.TB, stateDir string) *Daemon {
	store, err := ban.Open(filepath.Join(stateDir, "moat.db"), ban.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	d := &Daemon{o: Options{Version: "bench", StateDir: stateDir}, log: slog.New(slog.DiscardHandler), store: store,
		reg: prometheus.NewRegistry(), pipelines: map[string]*runningPipeline{}, cfg: config.Default(), start: time.Now()}
	d.enf = ban.NewEnforcer(store, memSets{}, ban.EnforcerOptions{})
	if d.disp, err = alert.New(alert.Config{}, alert.Options{Registerer: d.reg}); err != nil {
		tb.Fatal(err)
	}
	d.mon = newMonitor(&monitor{host: host.New(""), notify: func(alert.Event) {}})
	d.met = newMetrics(d)
	return d
}

// BenchmarkStatusPage serves the page with 100,000 bans in the store and
// a year of audit history. cached: the page as an open tab's neighbours
// get it (built once per change or refresh interval); rebuild: every load
// after a ban (snapshot of the daemon, the history's summary, rendering);
// revalidate: an idle tab's 304. Each reports its p99 over the loads.
func BenchmarkStatusPage(b *testing.B) {
	dir := b.TempDir()
	now := time.Now()
	if err := WriteStatusPageFixture(dir, 100_000, now); err != nil {
		b.Fatal(err)
	}
	d := pageDaemon(b, dir)
	p := &statusPage{d: d}
	srv, err := statuspage.New(statuspage.Options{Config: statuspage.Config{Listen: "127.0.0.1:0"}, Source: p,
		Allow: func(netip.Addr) bool { return true }, Log: d.log})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	load := func(tag string) (int, string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = "127.0.0.1:9470"
		if tag != "" {
			r.Header.Set("If-None-Match", tag)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Header().Get("ETag")
	}
	// A ban as the guard makes it: into the store, and the event that
	// moves the page's generation.
	next := 0
	newBan := func() {
		next++
		a := netip.AddrFrom4([4]byte{198, 18, byte(next >> 8), byte(next)})
		if _, err := d.store.Ban(context.Background(), []ban.Ban{{Prefix: netip.PrefixFrom(a, 32), Jail: "sshd",
			Reason: "bench", Expires: time.Now().Add(time.Hour)}}); err != nil {
			b.Fatal(err)
		}
		p.bump()
	}
	if code, _ := load(""); code != 200 {
		b.Fatalf("first load: %d", code)
	}
	for _, c := range []struct {
		name string
		prep func()
		tag  string
		want int
	}{
		{"cached", nil, "", 200},
		{"rebuild", newBan, "", 200},
		{"revalidate", nil, "current", 304},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.tag == "current" {
				_, c.tag = load("")
			}
			var times []time.Duration
			for b.Loop() {
				if c.prep != nil {
					c.prep()
				}
				t0 := time.Now()
				if code, _ := load(c.tag); code != c.want {
					b.Fatalf("%d, want %d", code, c.want)
				}
				times = append(times, time.Since(t0))
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)*99/100])/1e6, "p99-ms")
		})
	}
	// The figures the page showed, so a reader can tell the fixture was
	// read (not an empty store).
	data, _ := p.Snapshot(context.Background(), now)
	j, _ := json.Marshal(struct{ Total7d, Points int }{data.Bans.Total7d, len(data.Audit.Points)})
	b.Logf("page data: %s", j)
}

// TestStatusPageBenchFixture writes the benchmark's fixture into
// $MOAT_BENCH_STATUSPAGE_DIR for bench/statuspage.sh, which serves it
// through a real `moat run`; without the variable it does nothing.
func TestStatusPageBenchFixture(t *testing.T) {
	dir := os.Getenv("MOAT_BENCH_STATUSPAGE_DIR")
	if dir == "" {
		t.Skip("bench/statuspage.sh sets MOAT_BENCH_STATUSPAGE_DIR")
	}
	if err := WriteStatusPageFixture(dir, 100_000, time.Now()); err != nil {
		t.Fatal(err)
	}
}
