package fleet

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func benchAddr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}), 32)
}

// BenchmarkPropagation reports, for three embedded nodes clustered on
// loopback: the latency from Publish on A to Apply on B (p50, p99 over
// 200 decisions, one at a time), and the decisions per second B and C
// apply when A publishes b.N at once.
func BenchmarkPropagation(b *testing.B) {
	cfgs := testFleet(b, 3)
	dir := b.TempDir()
	var ms []*member
	for _, c := range cfgs {
		ms = append(ms, startMember(b, c, filepath.Join(dir, c.Host), nil))
	}
	defer func() {
		for _, m := range ms {
			m.stop()
		}
	}()
	for _, m := range ms {
		waitFor(b, 60*time.Second, m.cfg.Host+" ready", m.client.Ready)
	}
	// Latency, one decision at a time.
	var lat []time.Duration
	ms[1].mu.Lock()
	ms[1].notify = make(chan netip.Prefix, 1)
	ms[1].mu.Unlock()
	for i := range 200 {
		d := ban("h0", benchAddr(i).String(), time.Hour)
		start := time.Now()
		ms[0].client.Publish(d)
		select {
		case p := <-ms[1].notify:
			if p != d.Prefix {
				b.Fatalf("applied %s, want %s", p, d.Prefix)
			}
		case <-time.After(10 * time.Second):
			b.Fatal("B did not apply the decision in 10s")
		}
		lat = append(lat, time.Since(start))
	}
	ms[1].mu.Lock()
	ms[1].notify = nil
	ms[1].mu.Unlock()
	slices.Sort(lat)
	// Throughput.
	base := 1000
	b.ResetTimer()
	start := time.Now()
	ds := make([]Decision, b.N)
	for i := range b.N {
		ds[i] = ban("h0", benchAddr(base+i).String(), time.Hour)
	}
	ms[0].client.Publish(ds...)
	want := 200 + b.N
	for _, m := range ms[1:] {
		waitFor(b, 5*time.Minute, fmt.Sprintf("%s applies %d", m.cfg.Host, want), func() bool { return m.count() >= want })
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
	// After ResetTimer, which clears reported metrics.
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkCatchUp: C is down while A publishes b.N decisions; the time
// C takes, once restarted, to apply them all.
func BenchmarkCatchUp(b *testing.B) {
	cfgs := testFleet(b, 3)
	dir := b.TempDir()
	var ms []*member
	for _, c := range cfgs {
		ms = append(ms, startMember(b, c, filepath.Join(dir, c.Host), nil))
	}
	for _, m := range ms {
		waitFor(b, 60*time.Second, m.cfg.Host+" ready", m.client.Ready)
	}
	ms[2].stop()
	ds := make([]Decision, b.N)
	for i := range b.N {
		ds[i] = ban("h0", benchAddr(i).String(), time.Hour)
	}
	ms[0].client.Publish(ds...)
	waitFor(b, 5*time.Minute, "B applies all", func() bool { return ms[1].count() >= b.N })
	waitFor(b, time.Minute, "A's outbox empty", func() bool { return ms[0].client.Pending() == 0 })
	b.ResetTimer()
	start := time.Now()
	ms[2] = startMember(b, cfgs[2], filepath.Join(dir, cfgs[2].Host), nil)
	waitFor(b, 5*time.Minute, "C catches up", func() bool { return ms[2].count() >= b.N })
	b.ReportMetric(time.Since(start).Seconds(), "catchup-s")
	b.StopTimer()
	for _, m := range ms {
		m.stop()
	}
}

// BenchmarkSignVerify: what signing costs a decision, end to end: sign
// and encode on the sender, parse and verify on a receiver.
func BenchmarkSignVerify(b *testing.B) {
	kp := testKey(b, 0)
	v := newVerifier(Config{Name: "f", Hosts: map[string]string{"a": testPub(b, 0)}})
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := Decision{Op: OpBan, Prefix: benchAddr(i % 100000), Jail: "sshd", Origin: "a", Created: now.Add(time.Duration(i)), Expires: now.Add(time.Hour)}
		if err := d.Sign("f", kp); err != nil {
			b.Fatal(err)
		}
		data, _ := d.Marshal()
		got, err := ParseDecision("f", d.Subject("f"), data)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.verify(got, now); err != nil {
			b.Fatal(err)
		}
	}
}
