package probe

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// usePace takes the tokens one epoch of the current pace allows, then
// moves the fake clock past the epoch: a scan that keeps up with its pace.
func usePace(p *pacer, now *time.Time, epoch time.Duration) {
	n := int(p.statsNow().Final*epoch.Seconds()) + 1
	for range n {
		p.reserve()
	}
	*now = now.Add(epoch)
}

func TestPacerGrowsToTheCeilingAndNoFurther(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPacer(64000, 128, func() time.Time { return now }, nil)
	var rates []float64
	for range 12 {
		usePace(p, &now, minEpoch)
		p.reserve() // the epoch's end is seen on the next token
		rates = append(rates, p.statsNow().Final)
	}
	// Slow start: doubling each epoch from 1,000, then the ceiling.
	want := []float64{2000, 4000, 8000, 16000, 32000, 64000, 64000, 64000, 64000, 64000, 64000, 64000}
	if !slices.Equal(rates, want) {
		t.Errorf("paces %v, want %v", rates, want)
	}
	if st := p.statsNow(); st.Peak != 64000 || st.Backoffs != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestPacerHalvesOnLossThenGrowsGently(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPacer(1e6, 128, func() time.Time { return now }, nil)
	for range 4 {
		usePace(p, &now, minEpoch)
	}
	p.reserve()
	before := p.statsNow().Final // 16,000
	p.dropped(now)
	p.dropped(now) // two losses in one epoch: one backoff
	usePace(p, &now, minEpoch)
	p.reserve()
	after := p.statsNow()
	if after.Final != before/2 || after.Backoffs != 1 || after.Drops != 2 {
		t.Fatalf("after loss: %+v, want the pace halved from %v once", after, before)
	}
	// A loss learnt now of an attempt sent before the backoff was
	// answered by it already.
	p.dropped(now.Add(-time.Second))
	if p.drops != 0 {
		t.Errorf("a loss from before the backoff counts again")
	}
	// Out of slow start: an eighth more per epoch, not double.
	usePace(p, &now, minEpoch)
	p.reserve()
	if got := p.statsNow().Final; got != after.Final*9/8 {
		t.Errorf("growth after loss: %v, want %v", got, after.Final*9/8)
	}
	// Loss every epoch: down to the floor, never below.
	for range 40 {
		p.dropped(now)
		usePace(p, &now, minEpoch)
		p.reserve()
	}
	if got := p.statsNow().Final; got != floorRate {
		t.Errorf("under constant loss the pace is %v, want the floor %v", got, floorRate)
	}
}

func TestPacerCeilingBelowTheStart(t *testing.T) {
	// --rate 300: the ceiling is hard, from the first token.
	now := time.Unix(1000, 0)
	p := newPacer(300, 1, func() time.Time { return now }, nil)
	for range 10 {
		usePace(p, &now, time.Second)
	}
	if st := p.statsNow(); st.Peak != 300 || st.Final != 300 {
		t.Errorf("stats %+v, want 300 throughout", st)
	}
	// The epoch follows the round trip: with a 1 s round trip the pace
	// changes at most every 2 s.
	p = newPacer(1e6, 1, func() time.Time { return now }, func() time.Duration { return time.Second })
	usePace(p, &now, time.Second)
	p.reserve()
	if got := p.statsNow().Final; got != initialRate {
		t.Errorf("pace changed after one round trip: %v", got)
	}
	usePace(p, &now, time.Second)
	p.reserve()
	if got := p.statsNow().Final; got != 2*initialRate {
		t.Errorf("pace after two round trips: %v, want %v", got, 2*initialRate)
	}
}

func TestFrames(t *testing.T) {
	for _, c := range []struct {
		name  string
		frame frameFunc
		in    string
		whole bool
	}{
		{"ssh banner", bannerFrame, "SSH-2.0-OpenSSH_9.2p1\r\n", true},
		{"ssh banner, part", bannerFrame, "SSH-2.0-Open", false},
		{"smtp continuation", bannerFrame, "220-mail.example.com\r\n", false},
		{"smtp last line", bannerFrame, "220-mail.example.com\r\n220 ready\r\n", true},
		{"mysql greeting, part", bannerFrame, "J\x00\x00\x00\x0a8.0.36\x00", false},
		{"mysql greeting", bannerFrame, "\x05\x00\x00\x00\x0a8.0\x00", true},
		{"redis pong", respFrame, "+PONG\r\n", true},
		{"redis bulk, part", respFrame, "$20\r\n# Server\r\n", false},
		{"redis bulk", respFrame, "$10\r\n# Server\r\n\r\n", true},
		{"not redis", respFrame, "ERROR\r\n", true},
		{"pg auth ok, then more", pgFrame, "R\x00\x00\x00\x08\x00\x00\x00\x00", false},
		{"pg ready", pgFrame, "R\x00\x00\x00\x08\x00\x00\x00\x00Z\x00\x00\x00\x05I", true},
		{"pg password asked", pgFrame, "R\x00\x00\x00\x08\x00\x00\x00\x05", true},
		{"pg error", pgFrame, "E\x00\x00\x00\x05S", true},
		{"not pg", pgFrame, "HTTP/1.1 400 Bad Request\r\n", true},
		{"mongo, part", mongoFrame, "\x20\x00\x00\x00abc", false},
		{"mongo length insane", mongoFrame, "\xff\xff\xff\x7fabc", true},
		{"memcached, part", memcachedFrame, "STAT pid 1\r\n", false},
		{"memcached", memcachedFrame, "STAT pid 1\r\nEND\r\n", true},
		{"memcached error", memcachedFrame, "ERROR\r\n", true},
		{"dns, part", lengthFrame16, "\x00\x10abc", false},
		{"one byte", anyFrame, "N", true},
	} {
		if got := c.frame([]byte(c.in)); got != c.whole {
			t.Errorf("%s: whole %v, want %v", c.name, got, c.whole)
		}
	}
}

func FuzzFrames(f *testing.F) {
	f.Add([]byte("$5\r\nhello\r\n"))
	f.Add([]byte("R\x00\x00\x00\x08\x00\x00\x00\x00Z\x00\x00\x00\x05I"))
	f.Add([]byte("J\x00\x00\x00\x0a8.0.36\x00"))
	f.Add([]byte("$-99999999999999999999\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fr := range []frameFunc{lineFrame, bannerFrame, respFrame, pgFrame, mongoFrame, memcachedFrame, lengthFrame16, anyFrame} {
			fr(b)
		}
	})
}

// TestNativeScanLoopback runs the native connect scan against the
// kernel's own answers on loopback (no root needed): listeners are open,
// everything else is closed, on IPv4 and IPv6, and each open port is
// announced once, while the scan runs.
func TestNativeScanLoopback(t *testing.T) {
	if !nativeConnect {
		t.Skip("no native connect scan on this system")
	}
	var addrs []netip.Addr
	var open []uint16
	listen := func(network, host string) {
		l, err := net.Listen(network, net.JoinHostPort(host, "0"))
		if err != nil {
			t.Logf("%s: %v", network, err)
			return
		}
		t.Cleanup(func() { l.Close() })
		ap := netip.MustParseAddrPort(l.Addr().String())
		open = append(open, ap.Port())
		addrs = append(addrs, ap.Addr())
	}
	listen("tcp4", "127.0.0.1")
	listen("tcp6", "::1")
	if len(addrs) == 0 {
		t.Fatal("no loopback listener")
	}
	// A range around each listener: its neighbours are (most likely)
	// closed; a port some other process holds is allowed to be open.
	var ports []uint16
	for _, p := range open {
		for q := max(int(p)-200, 1); q <= min(int(p)+200, 65535); q++ {
			ports = append(ports, uint16(q))
		}
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	var (
		mu        sync.Mutex
		announced = map[netip.AddrPort]int{}
	)
	sc := Scanner{Workers: 64, OnOpen: func(ap netip.AddrPort) {
		mu.Lock()
		announced[ap]++
		mu.Unlock()
	}}
	hosts, stats, err := sc.ScanTCP(context.Background(), addrs, ports)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hosts {
		if h.State(open[i]) != Open {
			t.Errorf("%s: listener port %d is %v", h.Addr, open[i], h.State(open[i]))
		}
		if n := h.Count(Open) + h.Count(Closed); n != len(ports) {
			t.Errorf("%s: %d of %d ports answered (%d filtered, %d unscanned)", h.Addr, n, len(ports), h.Count(Filtered), h.Count(Unscanned))
		}
		for _, p := range h.Ports(Open) {
			if announced[netip.AddrPortFrom(h.Addr, p)] != 1 {
				t.Errorf("%s: open port %d announced %d times", h.Addr, p, announced[netip.AddrPortFrom(h.Addr, p)])
			}
		}
	}
	if len(announced) != hostsOpen(hosts) {
		t.Errorf("announced %d ports, %d open", len(announced), hostsOpen(hosts))
	}
	if stats.Attempts < int64(len(ports)*len(addrs)) || stats.Pace.Ceiling != DefaultLinkRate {
		t.Errorf("stats %+v", stats)
	}
}

func hostsOpen(hs []*HostPorts) int {
	n := 0
	for _, h := range hs {
		n += h.Count(Open)
	}
	return n
}
