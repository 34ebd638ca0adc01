package jail

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// spray fails n distinct sources once each, starting at from, spread over
// one minute, and returns the time after the last.
func spray(e *Engine, from time.Time, first, n int) time.Time {
	step := time.Minute / time.Duration(n)
	at := from
	for i := range n {
		at = from.Add(time.Duration(i) * step)
		e.Observe(addr4(uint32(first+i)), at, 1)
	}
	return at
}

func TestSprayMillionBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a million failures: skipped in -short")
	}
	victim := netip.MustParseAddr("198.18.0.1") // outside spray's range
	for _, tt := range []struct {
		name       string
		maxTracked int
		heapMB     float64 // bound on heap growth
	}{
		{"default cap", 0, 150},
		{"small cap", 100_000, 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := heapInuse()
			e, _ := New("sshd", testJail(), Options{MaxTracked: tt.maxTracked})
			e.Observe(victim, t0, 1)
			e.Observe(victim, t0.Add(time.Second), 1) // one failure from its ban
			end := spray(e, t0.Add(2*time.Second), 0, 1_000_000)
			grown := float64(heapInuse()-before) / (1 << 20)
			s := e.Stats()
			t.Logf("%s: heap +%.1f MiB, %+v", tt.name, grown, s)
			if s.Tracked > s.MaxTracked {
				t.Errorf("tracked %d over the cap %d", s.Tracked, s.MaxTracked)
			}
			if grown > tt.heapMB {
				t.Errorf("heap grew %.1f MiB, want at most %.0f", grown, tt.heapMB)
			}
			if tt.maxTracked != 0 && s.Evicted < 1_000_000-uint64(tt.maxTracked) {
				t.Errorf("evicted %d", s.Evicted)
			}
			d, ok := e.Observe(victim, end.Add(time.Second), 1)
			if !ok || d.Failures != 3 {
				t.Fatalf("the source one failure from its ban was not banned after the spray: %+v", d)
			}
			runtime.KeepAlive(e)
		})
	}
}

func TestSprayWithinOnePrefix(t *testing.T) {
	// A million IPv6 addresses from one /64 are one source: banned at
	// its third failure, not a million entries.
	e, _ := New("sshd", testJail(), Options{})
	base := netip.MustParseAddr("2001:db8:5:6::").As16()
	bans := 0
	for i := range 1_000_000 {
		a := base
		a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		if _, ok := e.Observe(netip.AddrFrom16(a), t0.Add(time.Duration(i)), 1); ok {
			bans++
		}
	}
	if bans != 333_333 || e.Stats().Tracked > 1 {
		t.Fatalf("bans %d, stats %+v", bans, e.Stats())
	}
}

func TestSprayCannotEvictRepeatOffenders(t *testing.T) {
	e, _ := New("sshd", testJail(), Options{MaxTracked: 1000})
	// 1000 sources with two failures fill the table.
	for i := range 1000 {
		e.Observe(addr4(uint32(i)), t0, 2)
	}
	end := spray(e, t0, 10_000, 50_000)
	s := e.Stats()
	if s.Dropped != 50_000 || s.Evicted != 0 || s.Tracked != 1000 {
		t.Fatalf("stats %+v", s)
	}
	for i := range 1000 {
		if _, ok := e.Observe(addr4(uint32(i)), end, 1); !ok {
			t.Fatalf("source %d lost its failures to the spray", i)
		}
	}
	// Sources with more failures displace those with fewer: one with two
	// attempts takes a single failure's place, never the reverse.
	e, _ = New("sshd", testJail(), Options{MaxTracked: 1000})
	for i := range 1000 {
		e.Observe(addr4(uint32(i)), t0, 1)
	}
	e.Observe(addr4(5000), t0, 2)
	if s := e.Stats(); s.Evicted != 1 || e.Failures(addr4(0)) != 0 || e.Failures(addr4(5000)) != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestObserveSteadyStateAllocs(t *testing.T) {
	e, _ := New("sshd", testJail(), Options{MaxTracked: 10_000})
	i := 0
	at := t0
	observe := func() {
		i++
		at = at.Add(time.Millisecond)
		e.Observe(addr4(uint32(i/2)), at, 1) // half new, half a second failure
	}
	for range 100_000 { // fill the table and the pool: from here on, recycle
		observe()
	}
	allocs := testing.AllocsPerRun(100_000, observe)
	if allocs > 0.01 {
		t.Fatalf("%.3f allocations per Observe in the steady state", allocs)
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rssMiB is the process's resident set from /proc, or 0 where unavailable.
func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			kb, _ := strconv.Atoi(string(bytes.TrimSpace(bytes.TrimSuffix(v, []byte("kB")))))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkSprayMemory fails 1,000,000 distinct sources once each and
// reports the heap in use and the process's RSS afterwards.
func BenchmarkSprayMemory(b *testing.B) {
	for b.Loop() {
		before := heapInuse()
		e, _ := New("sshd", testJail(), Options{})
		spray(e, t0, 0, 1_000_000)
		after := heapInuse()
		b.ReportMetric(float64(after)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(after-before)/(1<<20), "heap-growth-MiB")
		b.ReportMetric(rssMiB(), "rss-MiB")
		b.ReportMetric(float64(e.Stats().Tracked), "tracked")
		runtime.KeepAlive(e)
	}
}

// BenchmarkObserveSpray is Observe of a new source each time at the cap:
// admission, eviction and expiry.
func BenchmarkObserveSpray(b *testing.B) {
	e, _ := New("sshd", testJail(), Options{MaxTracked: 100_000})
	i := 0
	for b.Loop() {
		i++
		e.Observe(addr4(uint32(i)), t0.Add(time.Duration(i)*time.Microsecond), 1)
	}
}

// BenchmarkObserveRepeat is Observe of sources already tracked, banning
// every third failure.
func BenchmarkObserveRepeat(b *testing.B) {
	e, _ := New("sshd", testJail(), Options{})
	i := 0
	for b.Loop() {
		i++
		e.Observe(addr4(uint32(i%1000)), t0.Add(time.Duration(i)*time.Microsecond), 1)
	}
}

// BenchmarkObserveAll is the batch API over 256 mixed failures.
func BenchmarkObserveAll(b *testing.B) {
	e, _ := New("sshd", testJail(), Options{MaxTracked: 100_000})
	evs := make([]Event, 256)
	var dst []Decision
	i := 0
	for b.Loop() {
		for k := range evs {
			i++
			evs[k] = Event{Addr: addr4(uint32(i % 50_000)), Time: t0.Add(time.Duration(i) * time.Microsecond), Attempts: 1}
		}
		dst = e.ObserveAll(evs, dst[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/failure")
}
