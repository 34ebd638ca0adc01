package ban

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// nthAddr spreads i over 10.0.0.0/8 and beyond (distinct for i < 2^28).
func nthAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(10 + i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
}

// nthV6 is i's /64 in 2001:db8::/32.
func nthV6(i int) netip.Prefix {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[4], b[5], b[6], b[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// fill bans n prefixes, every tenth an IPv6 /64, in batches of 10,000.
func fill(b testing.TB, s *Store, n int) {
	ctx := context.Background()
	batch := make([]Ban, 0, 10_000)
	for i := range n {
		p := netip.PrefixFrom(nthAddr(i), 32)
		if i%10 == 9 {
			p = nthV6(i)
		}
		batch = append(batch, Ban{Prefix: p, Jail: "sshd", Reason: "5 failures", Created: t0, Expires: t0.Add(24 * time.Hour), Failures: 5, Offence: 1})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := s.Ban(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// millionBans is a Store's mirror with 1,000,000 bans (90% IPv4 /32, 10%
// IPv6 /64) and 2^20 addresses to look up in random order, half of them
// banned, so that lookups miss the CPU caches as a busy gateway's do.
func millionBans() (*Store, []netip.Addr) {
	s := &Store{now: time.Now}
	for i := range 1_000_000 {
		p := netip.PrefixFrom(nthAddr(i), 32)
		if i%10 == 9 {
			p = nthV6(i)
		}
		s.active.set(p, 0)
	}
	r := rand.New(rand.NewPCG(1, 2))
	addrs := make([]netip.Addr, 1<<20)
	for i := range addrs {
		n := r.IntN(1_000_000)
		switch {
		case i%2 == 1:
			addrs[i] = netip.AddrFrom4([4]byte{203, byte(n >> 16), byte(n >> 8), byte(n)})
		case n%10 == 9:
			addrs[i] = nthV6(n).Addr().Next()
		default:
			addrs[i] = nthAddr(n)
		}
	}
	return s, addrs
}

// BenchmarkContains is the gateway's question against 1,000,000 bans.
func BenchmarkContains(b *testing.B) {
	s, addrs := millionBans()
	hits := 0
	i := 0
	for b.Loop() {
		if s.Contains(addrs[i&(1<<20-1)]) {
			hits++
		}
		i++
	}
	if hits < i/3 || hits > i*2/3 {
		b.Fatalf("%d hits in %d", hits, i)
	}
}

// BenchmarkContainsParallel is Contains from every core at once.
func BenchmarkContainsParallel(b *testing.B) {
	s, addrs := millionBans()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(1 << 20)
		for pb.Next() {
			s.Contains(addrs[i&(1<<20-1)])
			i++
		}
	})
}

// BenchmarkStoreBatch stores batches of 10,000 new bans, one transaction
// each, and reports bans per second.
func BenchmarkStoreBatch(b *testing.B) {
	s := openTest(b, "", &clock{t: t0})
	ctx := context.Background()
	n := 0
	batch := make([]Ban, 10_000)
	for b.Loop() {
		for j := range batch {
			batch[j] = Ban{Prefix: netip.PrefixFrom(nthAddr(n), 32), Jail: "sshd", Created: t0, Expires: t0.Add(time.Hour), Offence: 1}
			n++
		}
		if _, err := s.Ban(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "bans/s")
}

// BenchmarkStoreSingle stores one ban per call from 8 goroutines, which
// group commit gathers into shared transactions.
func BenchmarkStoreSingle(b *testing.B) {
	s := openTest(b, "", &clock{t: t0})
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			if _, err := s.Ban(ctx, []Ban{{Prefix: netip.PrefixFrom(nthAddr(i), 32), Created: t0, Expires: t0.Add(time.Hour), Offence: 1}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bans/s")
}

// BenchmarkMillionBans stores 1,000,000 active bans, then reopens the
// database as a restarted daemon would, and reports the heap and RSS of
// each, and the database's size.
func BenchmarkMillionBans(b *testing.B) {
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "moat.db")
		c := &clock{t: t0}
		s, err := Open(path, Options{Now: c.Now})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		fill(b, s, 1_000_000)
		b.ReportMetric(1e6/time.Since(start).Seconds(), "fill-bans/s")
		s.Close()
		s = nil
		base := heapInuse()
		start = time.Now()
		s, err = Open(path, Options{Now: c.Now})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "open-s")
		heap := heapInuse()
		if s.Len() != 1_000_000 || !s.Contains(nthAddr(12345)) {
			b.Fatalf("%d bans after reopen", s.Len())
		}
		b.ReportMetric(float64(heap-base)/(1<<20), "mirror-heap-MiB")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
		b.ReportMetric(rssMiB(), "rss-MiB")
		fi, _ := os.Stat(path)
		b.ReportMetric(float64(fi.Size())/(1<<20), "db-MiB")
		start = time.Now()
		act, err := s.Active(context.Background())
		if err != nil || len(act) != 1_000_000 {
			b.Fatal(len(act), err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "active-s")
		act = nil
		s.Close()
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
