package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestResolveTargetRefusesWhatIsNotOneHost(t *testing.T) {
	for _, s := range []string{
		"0.0.0.0", "::", "[::]", "255.255.255.255", "224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2",
		"0.1.2.3", "240.0.0.1", "198.51.100.0/24", "2001:db8::/64", "", "a,b", "*.example.com", "-oX",
	} {
		if _, err := ResolveTarget(context.Background(), failResolver{t}, s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
}

// failResolver fails the test if asked: an address needs no DNS.
type failResolver struct{ t *testing.T }

func (f failResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	f.t.Errorf("DNS was asked")
	return nil, errors.New("no")
}

type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func TestResolveTarget(t *testing.T) {
	tg, err := ResolveTarget(context.Background(), failResolver{t}, "203.0.113.7")
	if err != nil || !slices.Equal(tg.Addrs, []netip.Addr{netip.MustParseAddr("203.0.113.7")}) {
		t.Errorf("literal: %v %v", tg, err)
	}
	tg, err = ResolveTarget(context.Background(), failResolver{t}, "[2001:db8::7]")
	if err != nil || tg.Addrs[0] != netip.MustParseAddr("2001:db8::7") {
		t.Errorf("v6 literal: %v %v", tg, err)
	}
	r := mapResolver{
		"vps.example": {netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:203.0.113.1"), netip.MustParseAddr("2001:db8::1")},
		// A name that points at a broadcast address keeps its good one
		// only; one with nothing good is refused.
		"mixed.example": {netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("203.0.113.9")},
		"bad.example":   {netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("0.0.0.0")},
	}
	tg, err = ResolveTarget(context.Background(), r, "vps.example")
	if err != nil || !slices.Equal(tg.Addrs, []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("2001:db8::1")}) {
		t.Errorf("name: %v %v", tg.Addrs, err)
	}
	tg, err = ResolveTarget(context.Background(), r, "mixed.example")
	if err != nil || !slices.Equal(tg.Addrs, []netip.Addr{netip.MustParseAddr("203.0.113.9")}) {
		t.Errorf("mixed: %v %v", tg.Addrs, err)
	}
	if _, err := ResolveTarget(context.Background(), r, "bad.example"); err == nil {
		t.Errorf("a name with only multicast/unspecified addresses was accepted")
	}
}

func TestParsePorts(t *testing.T) {
	all, _ := ParsePorts("all")
	if len(all) != 65535 || all[0] != 1 || all[65534] != 65535 {
		t.Errorf("all: %d ports", len(all))
	}
	got, err := ParsePorts("443, 22,80-82,22")
	if err != nil || !slices.Equal(got, []uint16{22, 80, 81, 82, 443}) {
		t.Errorf("list: %v %v", got, err)
	}
	for _, bad := range []string{"0", "65536", "80-79", "x", "1-", "22,,80"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if RangeList([]uint16{1, 2, 3, 5, 7, 8}) != "1-3,5,7-8" {
		t.Errorf("RangeList: %s", RangeList([]uint16{1, 2, 3, 5, 7, 8}))
	}
}

// scriptedDial answers connects from a table: port → error (nil: open),
// a port in silentFor goes unanswered for its first N attempts (a lost
// SYN, or a RST that came after the wait), and a port missing from the
// table times out (no answer, like a drop rule).
type scriptedDial struct {
	mu        sync.Mutex
	answers   map[uint16]error
	silentFor map[uint16]int
	attempts  map[uint16]int
	dialled   map[string]bool
}

func (s *scriptedDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap := netip.MustParseAddrPort(addr)
	s.mu.Lock()
	s.attempts[ap.Port()]++
	s.dialled[ap.Addr().String()] = true
	err, ok := s.answers[ap.Port()]
	silent := s.attempts[ap.Port()] <= s.silentFor[ap.Port()]
	s.mu.Unlock()
	if !ok || silent {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, nil
}

func TestScanTellsOpenClosedFiltered(t *testing.T) {
	sd := &scriptedDial{attempts: map[uint16]int{}, dialled: map[string]bool{},
		answers: map[uint16]error{22: nil, 80: syscall.ECONNREFUSED, 81: syscall.ECONNREFUSED, 82: syscall.EHOSTUNREACH},
		// A RST missed by both tries of the scan (lost, or late on a
		// loaded machine): the verification pass sees it.
		silentFor: map[uint16]int{81: 2}}
	sc := Scanner{Dial: sd.dial, Rate: 100000, Workers: 1, Timeout: 200 * time.Millisecond, MinTimeout: 5 * time.Millisecond, Retries: 1}
	ports := []uint16{22, 80, 81, 82, 443, 1000, 1001, 1002, 1003, 1004}
	for _, p := range ports[5:] {
		sd.answers[p] = syscall.ECONNREFUSED
	}
	hosts, stats, err := sc.ScanTCP(context.Background(), []netip.Addr{netip.MustParseAddr("192.0.2.1")}, ports)
	if err != nil {
		t.Fatal(err)
	}
	h := hosts[0]
	for p, want := range map[uint16]State{22: Open, 80: Closed, 81: Closed, 82: Filtered, 443: Filtered, 1000: Closed} {
		if h.State(p) != want {
			t.Errorf("port %d: %v, want %v", p, h.State(p), want)
		}
	}
	// Open, refused and ICMP-unreachable ports are answers: one try in
	// the scan. A silent port is tried again, then once more by the
	// verification pass (with its own retry).
	for p, want := range map[uint16]int{22: 1, 80: 1, 443: 4, 82: 2} {
		if sd.attempts[p] != want {
			t.Errorf("port %d tried %d times, want %d", p, sd.attempts[p], want)
		}
	}
	if sd.attempts[81] != 3 {
		t.Errorf("port 81 tried %d times, want 3: two in the scan, one in the verification pass", sd.attempts[81])
	}
	if stats.Retries == 0 {
		t.Errorf("stats %+v", stats)
	}
}

func TestRunDialsOnlyTheTarget(t *testing.T) {
	sd := &scriptedDial{attempts: map[uint16]int{}, dialled: map[string]bool{}, answers: map[uint16]error{80: syscall.ECONNREFUSED}}
	// The guard sits between every part of the probe and the network.
	g := guardDial(sd.dial, map[netip.Addr]bool{netip.MustParseAddr("192.0.2.1"): true})
	if _, err := g(context.Background(), "tcp", "192.0.2.2:80"); err == nil || !strings.Contains(err.Error(), "not the probe's target") {
		t.Errorf("dial to another address: %v", err)
	}
	if _, err := g(context.Background(), "tcp", "example.com:80"); err == nil {
		t.Errorf("dial to a name was let through")
	}
	if _, err := g(context.Background(), "tcp", "192.0.2.1:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial to the target: %v", err)
	}
	if sd.dialled["192.0.2.2"] {
		t.Errorf("another address was dialled")
	}
	if _, err := Run(context.Background(), Options{Target: Target{Name: "x", Addrs: []netip.Addr{netip.MustParseAddr("224.0.0.1")}}}); err == nil {
		t.Errorf("Run accepted a multicast target")
	}
}

func TestBucketPacesAttempts(t *testing.T) {
	// With a frozen clock the burst is due at once and every token after
	// it one interval later than the one before: the schedule, not the
	// wall clock, is checked.
	now := time.Unix(1000, 0)
	b := newPacer(1000, 4, func() time.Time { return now }, nil)
	var delays []time.Duration
	for range 10 {
		delays = append(delays, b.reserve())
	}
	ready := 0
	for _, d := range delays {
		if d <= 0 {
			ready++
		}
	}
	if ready != 5 { // the burst, and the one due now
		t.Errorf("%d tokens ready at once, want 5 (%v)", ready, delays)
	}
	if d := delays[9] - delays[8]; d != time.Millisecond {
		t.Errorf("spacing %v, want 1ms", d)
	}
	// Time passing refills at most the burst.
	now = now.Add(time.Hour)
	ready = 0
	for range 10 {
		if b.reserve() <= 0 {
			ready++
		}
	}
	if ready != 5 {
		t.Errorf("after an idle hour %d tokens ready, want the burst (5)", ready)
	}
	// An idle hour is no evidence the target keeps up with more.
	if st := b.statsNow(); st.Final != 1000 {
		t.Errorf("after an idle hour the pace is %v, want 1000", st.Final)
	}
}

func TestRTTTimeoutAdapts(t *testing.T) {
	r := newRTT(time.Second)
	if r.timeout(100*time.Millisecond) != time.Second {
		t.Errorf("before any answer the wait is the longest")
	}
	for range 20 {
		r.sample(time.Millisecond)
	}
	if got := r.timeout(100 * time.Millisecond); got != 100*time.Millisecond {
		t.Errorf("fast answers: wait %v, want the minimum", got)
	}
	for range 50 {
		r.sample(400 * time.Millisecond)
	}
	if got := r.timeout(100 * time.Millisecond); got < 750*time.Millisecond || got > time.Second {
		t.Errorf("400ms answers: wait %v, want about twice the round trip", got)
	}
	for range 50 {
		r.sample(2 * time.Second)
	}
	if got := r.timeout(100 * time.Millisecond); got != time.Second {
		t.Errorf("slow answers: wait %v, want the maximum", got)
	}
}
