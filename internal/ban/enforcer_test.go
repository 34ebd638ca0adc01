package ban

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeSets is the kernel's ban sets with timeouts that run on a test
// clock, as nftables' do.
type fakeSets struct {
	mu      sync.Mutex
	clock   *clock
	expires map[netip.Prefix]time.Time // zero: no timeout
	failAdd error
	adds    int
}

func newFakeSets(c *clock) *fakeSets {
	return &fakeSets{clock: c, expires: map[netip.Prefix]time.Time{}}
}

func (f *fakeSets) Add(_ context.Context, elems []SetElement) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAdd != nil {
		return f.failAdd
	}
	f.adds++
	for _, e := range elems {
		var exp time.Time
		if e.Timeout > 0 {
			exp = f.clock.Now().Add(e.Timeout)
		}
		f.expires[e.Prefix] = exp
	}
	return nil
}

func (f *fakeSets) Delete(_ context.Context, ps []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		delete(f.expires, p)
	}
	return nil
}

func (f *fakeSets) List(context.Context) ([]SetElement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	var out []SetElement
	for p, exp := range f.expires {
		switch {
		case exp.IsZero():
			out = append(out, SetElement{Prefix: p})
		case exp.After(now):
			out = append(out, SetElement{Prefix: p, Timeout: exp.Sub(now)})
		default:
			delete(f.expires, p) // the kernel's garbage collection
		}
	}
	return out, nil
}

func (f *fakeSets) timeout(p string) (time.Duration, bool) {
	els, _ := f.List(context.Background())
	for _, e := range els {
		if e.Prefix == pfx(p) {
			return e.Timeout, true
		}
	}
	return 0, false
}

func drain(ch <-chan Event) []Event {
	var evs []Event
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

func TestEnforcerApplyAndUnban(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openTest(t, "", c)
	k := newFakeSets(c)
	e := NewEnforcer(s, k, EnforcerOptions{Now: c.Now})

	c.Set(t0.Add(10 * time.Minute)) // the decision came from a line 10 minutes old
	ch, err := e.Apply(ctx, []Ban{auto("192.0.2.1/32", t0, time.Hour), auto("192.0.2.2/32", t0, 5*time.Minute)})
	if err != nil || len(ch) != 2 {
		t.Fatal(ch, err)
	}
	if d, ok := k.timeout("192.0.2.1/32"); !ok || d != 50*time.Minute {
		t.Fatalf("kernel timeout %v %v, want the 50m left", d, ok)
	}
	if _, ok := k.timeout("192.0.2.2/32"); ok {
		t.Fatal("a ban already ended went to the kernel")
	}
	// An extension refreshes the kernel's timeout.
	if _, err := e.Apply(ctx, []Ban{auto("192.0.2.1/32", c.Now(), 2*time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if d, _ := k.timeout("192.0.2.1/32"); d != 2*time.Hour {
		t.Fatalf("kernel timeout after extension %v", d)
	}
	// Manual, permanent.
	mc, err := e.BanManual(ctx, pfx("2001:db8::/48"), 0, "scanner")
	if err != nil || mc.Ban.Origin != OriginManual || !mc.Ban.Permanent() {
		t.Fatal(mc, err)
	}
	if d, ok := k.timeout("2001:db8::/48"); !ok || d != 0 {
		t.Fatalf("permanent element %v %v", d, ok)
	}
	if _, err := e.BanManual(ctx, pfx("2001:db8::/48"), time.Hour, ""); err == nil {
		t.Fatal("a shorter manual ban of a permanent one reported success")
	}
	removed, err := e.Unban(ctx, pfx("2001:db8::1/128"))
	if err != nil || len(removed) != 1 {
		t.Fatal(removed, err)
	}
	if _, ok := k.timeout("2001:db8::/48"); ok || s.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Fatal("unban left the ban in place")
	}
	var kinds []EventKind
	for _, ev := range drain(e.Events()) {
		kinds = append(kinds, ev.Kind)
	}
	want := []EventKind{EventBan, EventBan, EventExtend, EventBan, EventUnban}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
}

func TestEnforcerKernelFailureThenReconcile(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openTest(t, "", c)
	k := newFakeSets(c)
	e := NewEnforcer(s, k, EnforcerOptions{Now: c.Now})
	k.failAdd = errors.New("netlink: operation not permitted")
	if _, err := e.Apply(ctx, []Ban{auto("192.0.2.1/32", t0, time.Hour)}); err == nil {
		t.Fatal("kernel failure not reported")
	}
	if !s.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("the ban was not recorded")
	}
	k.failAdd = nil
	r, err := e.Reconcile(ctx)
	if err != nil || r.Added != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	if d, ok := k.timeout("192.0.2.1/32"); !ok || d != time.Hour {
		t.Fatalf("kernel %v %v", d, ok)
	}
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	path := t.TempDir() + "/moat.db"
	s := openTest(t, path, c)
	k := newFakeSets(c)
	e := NewEnforcer(s, k, EnforcerOptions{Now: c.Now})
	e.Apply(ctx, []Ban{
		auto("192.0.2.1/32", t0, time.Hour),
		auto("192.0.2.2/32", t0, time.Hour),
		auto("192.0.2.3/32", t0, time.Hour),
		auto("192.0.2.4/32", t0, 10*time.Minute),
		{Prefix: pfx("203.0.113.0/24"), Origin: OriginManual},
	})
	// moat stops; the world moves on: a reboot empties the sets, then
	// someone adds elements by hand, one with a wrong timeout.
	s.Close()
	c.Set(t0.Add(20 * time.Minute))
	k = newFakeSets(c)
	k.Add(ctx, []SetElement{
		{Prefix: pfx("192.0.2.2/32"), Timeout: 40 * time.Minute},           // right: left alone
		{Prefix: pfx("192.0.2.3/32"), Timeout: 5 * time.Minute},            // would end early
		{Prefix: pfx("203.0.113.0/24"), Timeout: time.Hour},                // should be permanent
		{Prefix: pfx("198.51.100.7/32"), Timeout: time.Hour},               // unknown to the store
		{Prefix: pfx("192.0.2.4/32"), Timeout: time.Hour},                  // ended in the store
		{Prefix: pfx("2001:db8:77::/64")},                                  // unknown, permanent
		{Prefix: pfx("::ffff:192.0.2.1/128"), Timeout: 40*time.Minute + 2}, // mapped form of a stored ban
	})
	s = openTest(t, path, c)
	e = NewEnforcer(s, k, EnforcerOptions{Now: c.Now})
	r, err := e.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Elements the store does not know are adopted, never lifted; the
	// one whose ban the store ended (its tombstone) is removed.
	want := Reconciled{Added: 0, Refreshed: 2, Adopted: 2, Removed: 1, Expired: 1}
	if r != want {
		t.Fatalf("reconciled %+v, want %+v", r, want)
	}
	for p, d := range map[string]time.Duration{"192.0.2.2/32": 40 * time.Minute, "192.0.2.3/32": 40 * time.Minute, "203.0.113.0/24": 0,
		"198.51.100.7/32": time.Hour, "2001:db8:77::/64": 0} {
		if got, ok := k.timeout(p); !ok || got != d {
			t.Errorf("%s: kernel timeout %v %v, want %v", p, got, ok, d)
		}
	}
	if _, ok := k.timeout("192.0.2.4/32"); ok {
		t.Error("192.0.2.4/32 (ended in the store) still in the kernel")
	}
	for _, a := range []string{"198.51.100.7", "2001:db8:77::1"} {
		if !s.Contains(netip.MustParseAddr(a)) {
			t.Errorf("%s not adopted into the store", a)
		}
	}
	// The reboot case proper: everything gone from the kernel.
	k.expires = map[netip.Prefix]time.Time{}
	r, _ = e.Reconcile(ctx)
	if r.Added != 6 || r.Removed != 0 {
		t.Fatalf("after a reboot: %+v", r)
	}
	// And a second pass has nothing to do.
	if r, _ = e.Reconcile(ctx); r != (Reconciled{}) {
		t.Fatalf("second pass %+v", r)
	}
	evs := drain(e.Events())
	if len(evs) != 1 || evs[0].Kind != EventExpire || evs[0].Ban.Prefix != pfx("192.0.2.4/32") {
		t.Fatalf("events %+v", evs)
	}
}

func TestEventsNeverBlock(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openTest(t, "", c)
	e := NewEnforcer(s, newFakeSets(c), EnforcerOptions{Now: c.Now, Events: 3})
	bans := make([]Ban, 10)
	for i := range bans {
		bans[i] = auto(netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32).String(), t0, time.Hour)
	}
	done := make(chan error)
	go func() { _, err := e.Apply(ctx, bans); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply blocked on a full event buffer")
	}
	if len(drain(e.Events())) != 3 || e.Dropped() != 7 {
		t.Fatalf("dropped %d", e.Dropped())
	}
}

// widening is Sets that widen IPv6 to /64 and skip elements covered by a
// wider one, as internal/firewall's do.
type widening struct{ *fakeSets }

func widen64(p netip.Prefix) netip.Prefix {
	if p.Addr().Is6() && p.Bits() > 64 {
		return netip.PrefixFrom(p.Addr(), 64).Masked()
	}
	return p
}

func (w widening) Add(ctx context.Context, elems []SetElement) error {
	var out []SetElement
	for _, e := range elems {
		e.Prefix = widen64(e.Prefix)
		covered := false
		for p := range w.expires {
			covered = covered || (p.Bits() < e.Prefix.Bits() && p.Contains(e.Prefix.Addr()))
		}
		if !covered {
			out = append(out, e)
		}
	}
	return w.fakeSets.Add(ctx, out)
}

func (w widening) Delete(ctx context.Context, ps []netip.Prefix) error {
	var out []netip.Prefix
	for _, p := range ps {
		out = append(out, widen64(p))
	}
	return w.fakeSets.Delete(ctx, out)
}

func TestReconcileWidenedAndCovered(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openTest(t, "", c)
	k := newFakeSets(c)
	e := NewEnforcer(s, widening{k}, EnforcerOptions{Now: c.Now, KernelPrefix: widen64})
	e.BanManual(ctx, pfx("2001:db8::1/128"), 0, "")
	e.BanManual(ctx, pfx("2001:db8::2/128"), time.Hour, "")
	e.Apply(ctx, []Ban{auto("10.0.0.0/24", t0, time.Hour), auto("10.0.0.5/32", t0, 30*time.Minute)})
	if d, ok := k.timeout("2001:db8::/64"); !ok || d != 0 {
		t.Fatalf("widened element %v %v", d, ok)
	}
	// Nothing to fix: the /64 serves both addresses, the /24 the /32.
	if r, err := e.Reconcile(ctx); err != nil || r != (Reconciled{}) {
		t.Fatalf("reconciled %+v %v", r, err)
	}
	// After a reboot the /64 comes back once, permanent.
	k.expires = map[netip.Prefix]time.Time{}
	if r, _ := e.Reconcile(ctx); r.Added != 2 || r.Removed != 0 {
		t.Fatalf("after a reboot %+v", r)
	}
	if d, ok := k.timeout("2001:db8::/64"); !ok || d != 0 {
		t.Fatalf("widened element %v %v", d, ok)
	}
	// Unbanning one address keeps the element the other still needs.
	e.Unban(ctx, pfx("2001:db8::1/128"))
	if _, ok := k.timeout("2001:db8::/64"); !ok {
		t.Fatal("unban of one address dropped its neighbour's element")
	}
	if r, _ := e.Reconcile(ctx); r.Refreshed != 1 { // now the /64 is for an hour
		t.Fatalf("reconciled %+v", r)
	}
	e.Unban(ctx, pfx("2001:db8::2/128"))
	if _, ok := k.timeout("2001:db8::/64"); ok {
		t.Fatal("element left after its last ban")
	}
}
