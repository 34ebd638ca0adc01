package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/ban"
	"github.com/moat-sh/moat/internal/filter"
	"github.com/moat-sh/moat/internal/firewall"
	"github.com/moat-sh/moat/internal/guard"
	"github.com/moat-sh/moat/internal/harden"
	"github.com/moat-sh/moat/internal/jail"
	"github.com/moat-sh/moat/internal/lab"
	"github.com/moat-sh/moat/internal/logwatch"
	"github.com/moat-sh/moat/internal/schema"
)

// timedSets passes bans to the kernel sets and records when each prefix
// was in the kernel: from then on its packets are dropped.
type timedSets struct {
	ks   *kernelSets
	mu   sync.Mutex
	when map[netip.Prefix]time.Time
	seen chan netip.Prefix
}

func (t *timedSets) Add(ctx context.Context, elems []ban.SetElement) error {
	err := t.ks.Add(ctx, elems)
	now := time.Now()
	t.mu.Lock()
	for _, e := range elems {
		t.when[e.Prefix] = now
	}
	t.mu.Unlock()
	for _, e := range elems {
		select {
		case t.seen <- e.Prefix:
		default:
		}
	}
	return err
}
func (t *timedSets) Delete(ctx context.Context, p []netip.Prefix) error { return t.ks.Delete(ctx, p) }
func (t *timedSets) List(ctx context.Context) ([]ban.SetElement, error) {
	return t.ks.List(ctx)
}

// guardRig is the guard's data path in process, enforcing into table inet
// moat in a lab namespace: file → filter → jail → store → kernel set.
type guardRig struct {
	log  *os.File
	sets *timedSets
	p    *pipeline
}

func newGuardRig(b *testing.B, maxRetry int) *guardRig {
	lab.RequireTool(b, "nft")
	l := lab.New(b)
	vps := l.Host("vps")
	spec := firewall.SpecFrom(firewall.Default())
	spec.SSH = firewall.SSH{Port: 22, Exposure: schema.ExposurePublic, RateLimit: harden.DefaultSSH().RateLimit}
	spec.BanIPv6Prefix = 64
	table := filepath.Join(b.TempDir(), "moat.nft")
	os.WriteFile(table, []byte(firewall.Render(&spec)), 0o600)
	vps.MustRun(b, "nft", "-f", table)
	ks := &kernelSets{v6Prefix: 64, log: slog.Default()}
	// The netlink socket is bound to the namespace of the thread that
	// opens it: open it inside vps.
	if err := vps.Do(func() error { _, err := ks.get(); return err }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ks.Close)
	ts := &timedSets{ks: ks, when: map[netip.Prefix]time.Time{}, seen: make(chan netip.Prefix, 1<<16)}
	dir := b.TempDir()
	store, err := ban.Open(filepath.Join(dir, "moat.db"), ban.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	logPath := filepath.Join(dir, "auth.log")
	f, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	src, err := logwatch.NewFile(logwatch.FileConfig{Path: logPath, Poll: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	filt, err := filter.New("sshd", "normal", filter.Options{})
	if err != nil {
		b.Fatal(err)
	}
	j := jail.JailDefaults("sshd", jail.Jail{MaxRetry: maxRetry})
	enf := ban.NewEnforcer(store, ts, ban.EnforcerOptions{})
	q := newBanQueue(enf, slog.Default())
	eng, err := jail.New("sshd", j, jail.Options{History: store, Banned: eitherBanned{store, q}})
	if err != nil {
		b.Fatal(err)
	}
	p := &pipeline{name: "sshd", source: src, unit: &guard.Unit{Name: "sshd", Filter: filt, Engine: eng}, eng: eng, enf: enf, queue: q, logins: &loginBook{}, log: slog.Default()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()
	qdone := make(chan struct{})
	go func() { q.run(ctx); close(qdone) }()
	b.Cleanup(func() { cancel(); <-done; <-qdone })
	time.Sleep(200 * time.Millisecond) // let the source reach the end of the empty file
	return &guardRig{log: f, sets: ts, p: p}
}

// benchAddr is the i-th address of the benchmarking range 198.18.0.0/15.
func benchAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

func failLine(at time.Time, pid int, a netip.Addr) string {
	return fmt.Sprintf("%s vps sshd[%d]: Failed password for root from %s port %d ssh2\n", at.Format(time.Stamp), pid, a, 40000+pid%20000)
}

// BenchmarkTimeToBan: from a failure line appended to the log to the
// attacker's prefix in the kernel's ban set, one ban at a time (maxretry
// 1); reports the median and 99th percentile over b.N bans.
func BenchmarkTimeToBan(b *testing.B) {
	r := newGuardRig(b, 1)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := benchAddr(i)
		t0 := time.Now()
		if _, err := r.log.WriteString(failLine(t0, 1000+i, a)); err != nil {
			b.Fatal(err)
		}
		want := netip.PrefixFrom(a, 32)
		timeout := time.After(5 * time.Second)
	wait:
		for {
			select {
			case p := <-r.sets.seen:
				if p == want {
					break wait
				}
			case <-timeout:
				b.Fatalf("%s not banned within 5s", a)
			}
		}
		r.sets.mu.Lock()
		lat = append(lat, r.sets.when[want].Sub(t0))
		r.sets.mu.Unlock()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkBurst appends 200,000 failure lines from 5,000 attackers at
// once (40 each, maxretry 5) and measures until all 5,000 are banned.
func BenchmarkBurst(b *testing.B) {
	const attackers, perAttacker = 5000, 40
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newGuardRig(b, 5)
		buf := make([]byte, 0, attackers*perAttacker*100)
		now := time.Now()
		for k := 0; k < perAttacker; k++ {
			for a := 0; a < attackers; a++ {
				buf = append(buf, failLine(now, 2000+a, benchAddr(a))...)
			}
		}
		b.StartTimer()
		t0 := time.Now()
		if _, err := r.log.Write(buf); err != nil {
			b.Fatal(err)
		}
		got := map[netip.Prefix]bool{}
		timeout := time.After(30 * time.Second)
		for len(got) < attackers {
			select {
			case p := <-r.sets.seen:
				got[p] = true
			case <-timeout:
				b.Fatalf("%d of %d banned after 30s", len(got), attackers)
			}
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s-to-ban-all")
	}
}
