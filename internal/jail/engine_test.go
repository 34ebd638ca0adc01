package jail

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/moat-sh/moat/internal/schema"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fail is one failure in a table test: source, offset from t0, attempts.
type fail struct {
	addr string
	at   time.Duration
	n    int
}

// ban is an expected decision: the index of the failure that triggers it.
type ban struct {
	at       int
	prefix   string
	failures int
	bantime  time.Duration
}

type mapHistory map[netip.Prefix]int

func (h mapHistory) PreviousBans(p netip.Prefix) int { return h[p] }

func testJail() Jail {
	return Jail{MaxRetry: 3, FindTime: schema.Duration(10 * time.Minute), BanTime: schema.Duration(time.Hour)}
}

func TestEngineArithmetic(t *testing.T) {
	off := false
	tests := []struct {
		name  string
		cfg   func(*Jail)
		opts  Options
		fails []fail
		bans  []ban
		stats Stats // only the non-zero fields are compared
	}{
		{
			name:  "below maxretry",
			fails: []fail{{"192.0.2.1", 0, 1}, {"192.0.2.1", time.Minute, 1}},
		},
		{
			name:  "maxretry boundary",
			fails: []fail{{"192.0.2.1", 0, 1}, {"192.0.2.1", time.Second, 1}, {"192.0.2.1", 2 * time.Second, 1}},
			bans:  []ban{{2, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name:  "maxretry 1 bans the first failure",
			cfg:   func(j *Jail) { j.MaxRetry = 1 },
			fails: []fail{{"192.0.2.1", 0, 1}},
			bans:  []ban{{0, "192.0.2.1/32", 1, time.Hour}},
		},
		{
			name:  "sources count apart",
			fails: []fail{{"192.0.2.1", 0, 1}, {"192.0.2.2", 0, 1}, {"192.0.2.1", 1, 1}, {"192.0.2.2", 1, 1}, {"192.0.2.2", 2, 1}},
			bans:  []ban{{4, "192.0.2.2/32", 3, time.Hour}},
		},
		{
			name: "window slides",
			fails: []fail{
				{"192.0.2.1", 0, 1}, {"192.0.2.1", 5 * time.Minute, 1},
				{"192.0.2.1", 11 * time.Minute, 1}, // the first left the window
				{"192.0.2.1", 12 * time.Minute, 1},
			},
			bans: []ban{{3, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name: "a failure exactly findtime old is out",
			fails: []fail{
				{"192.0.2.1", 0, 1}, {"192.0.2.1", 5 * time.Minute, 1}, {"192.0.2.1", 10 * time.Minute, 1},
				{"192.0.2.1", 10*time.Minute + 1, 1},
			},
			bans: []ban{{3, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name: "findtime expiry forgets",
			fails: []fail{
				{"192.0.2.1", 0, 1}, {"192.0.2.1", time.Minute, 1},
				{"192.0.2.1", 30 * time.Minute, 1}, {"192.0.2.1", 31 * time.Minute, 1},
				{"192.0.2.1", 32 * time.Minute, 1},
			},
			bans: []ban{{4, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name: "count starts over after a ban",
			fails: []fail{
				{"192.0.2.1", 0, 1}, {"192.0.2.1", 1, 1}, {"192.0.2.1", 2, 1},
				{"192.0.2.1", 3, 1}, {"192.0.2.1", 4, 1}, {"192.0.2.1", 5, 1},
			},
			bans: []ban{{2, "192.0.2.1/32", 3, time.Hour}, {5, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name:  "attempts count as failures",
			fails: []fail{{"192.0.2.1", 0, 2}, {"192.0.2.1", time.Second, 1}},
			bans:  []ban{{1, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name:  "attempts beyond maxretry are reported",
			fails: []fail{{"192.0.2.1", 0, 1}, {"192.0.2.1", time.Second, 6}},
			bans:  []ban{{1, "192.0.2.1/32", 7, time.Hour}},
		},
		{
			name:  "attempts below one mean one",
			fails: []fail{{"192.0.2.1", 0, 0}, {"192.0.2.1", 1, -5}, {"192.0.2.1", 2, 0}},
			bans:  []ban{{2, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name:  "out of order failures in one window",
			fails: []fail{{"192.0.2.1", 5 * time.Minute, 1}, {"192.0.2.1", 0, 1}, {"192.0.2.1", 3 * time.Minute, 1}},
			bans:  []ban{{2, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name: "a failure older than any open window is stale",
			fails: []fail{
				{"192.0.2.9", 30 * time.Minute, 1},
				{"192.0.2.1", 0, 1}, {"192.0.2.1", 1, 1}, {"192.0.2.1", 2, 1},
			},
			stats: Stats{Stale: 3},
		},
		{
			name:  "ignored networks",
			opts:  Options{Ignore: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:aa::/48")}},
			fails: []fail{{"10.1.2.3", 0, 1}, {"10.1.2.3", 1, 1}, {"10.1.2.3", 2, 5}, {"::ffff:10.9.9.9", 3, 9}, {"2001:db8:aa:1::1", 4, 9}},
			stats: Stats{Ignored: 5},
		},
		{
			name:  "the operator's own address",
			opts:  Options{Ignore: []netip.Prefix{netip.MustParsePrefix("203.0.113.9/32")}},
			fails: []fail{{"203.0.113.9", 0, 1}, {"203.0.113.9", 1, 1}, {"203.0.113.9", 2, 1}, {"203.0.113.10", 3, 3}},
			bans:  []ban{{3, "203.0.113.10/32", 3, time.Hour}},
			stats: Stats{Ignored: 3, Failures: 1},
		},
		{
			name:  "ignore given as IPv4-mapped",
			opts:  Options{Ignore: []netip.Prefix{netip.MustParsePrefix("::ffff:192.0.2.0/120")}},
			fails: []fail{{"192.0.2.7", 0, 3}},
			stats: Stats{Ignored: 1},
		},
		{
			name:  "IPv4-mapped sources count as IPv4",
			fails: []fail{{"::ffff:192.0.2.1", 0, 1}, {"192.0.2.1", 1, 1}, {"::ffff:192.0.2.1", 2, 1}},
			bans:  []ban{{2, "192.0.2.1/32", 3, time.Hour}},
		},
		{
			name:  "IPv6 counted and banned per /64",
			fails: []fail{{"2001:db8:1:2::1", 0, 1}, {"2001:db8:1:2:ffff::2", 1, 1}, {"2001:db8:1:3::1", 2, 1}, {"2001:db8:1:2::3", 3, 1}},
			bans:  []ban{{3, "2001:db8:1:2::/64", 3, time.Hour}},
		},
		{
			name:  "IPv6 prefix is a parameter",
			opts:  Options{IPv6Prefix: 48},
			fails: []fail{{"2001:db8:1:2::1", 0, 1}, {"2001:db8:1:3::1", 1, 1}, {"2001:db8:1:ffff::1", 2, 1}},
			bans:  []ban{{2, "2001:db8:1::/48", 3, time.Hour}},
		},
		{
			name:  "IPv6 per address",
			opts:  Options{IPv6Prefix: 128},
			fails: []fail{{"2001:db8::1", 0, 1}, {"2001:db8::2", 1, 1}, {"2001:db8::1", 2, 2}},
			bans:  []ban{{2, "2001:db8::1/128", 3, time.Hour}},
		},
		{
			name:  "IPv6 zone ignored",
			fails: []fail{{"fe80::1%eth0", 0, 1}, {"fe80::1%eth1", 1, 1}, {"fe80::2", 2, 1}},
			bans:  []ban{{2, "fe80::/64", 3, time.Hour}},
		},
		{
			name:  "a prefix with an ignored neighbour bans the address alone",
			opts:  Options{Ignore: []netip.Prefix{netip.MustParsePrefix("2001:db8:1:2::9/128")}},
			fails: []fail{{"2001:db8:1:2::1", 0, 1}, {"2001:db8:1:2::2", 1, 1}, {"2001:db8:1:2::3", 2, 1}, {"2001:db8:1:2::9", 3, 1}},
			bans:  []ban{{2, "2001:db8:1:2::3/128", 3, time.Hour}},
			stats: Stats{Ignored: 1},
		},
		{
			name:  "unattributable failures ban nothing",
			fails: []fail{{"", 0, 1}, {"", 1, 1}, {"", 2, 1}, {"", 3, 10}},
			stats: Stats{Unattributable: 4},
		},
		{
			name:  "incremental bantime from history",
			opts:  Options{History: mapHistory{netip.MustParsePrefix("192.0.2.2/32"): 1, netip.MustParsePrefix("192.0.2.3/32"): 3, netip.MustParsePrefix("192.0.2.4/32"): 50}},
			fails: []fail{{"192.0.2.1", 0, 3}, {"192.0.2.2", 0, 3}, {"192.0.2.3", 0, 3}, {"192.0.2.4", 0, 3}},
			bans: []ban{
				{0, "192.0.2.1/32", 3, time.Hour}, {1, "192.0.2.2/32", 3, 2 * time.Hour},
				{2, "192.0.2.3/32", 3, 8 * time.Hour}, {3, "192.0.2.4/32", 3, 7 * 24 * time.Hour},
			},
		},
		{
			name:  "increment off",
			cfg:   func(j *Jail) { j.Increment.Enabled = &off },
			opts:  Options{History: mapHistory{netip.MustParsePrefix("192.0.2.2/32"): 4}},
			fails: []fail{{"192.0.2.2", 0, 3}},
			bans:  []ban{{0, "192.0.2.2/32", 3, time.Hour}},
		},
		{
			name:  "banned sources count nothing",
			opts:  Options{Banned: bannedSet{netip.MustParseAddr("192.0.2.5"): true}},
			fails: []fail{{"192.0.2.5", 0, 1}, {"192.0.2.5", 1, 1}, {"192.0.2.5", 2, 1}},
			stats: Stats{WhileBanned: 3, Failures: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testJail()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			e, err := New("sshd", cfg, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []ban
			for i, f := range tt.fails {
				var a netip.Addr
				if f.addr != "" {
					a = netip.MustParseAddr(f.addr)
				}
				d, ok := e.Observe(a, t0.Add(f.at), f.n)
				if !ok {
					continue
				}
				if d.Jail != "sshd" || !d.At.Equal(t0.Add(f.at)) || d.Addr != a.Unmap().WithZone("") {
					t.Errorf("failure %d: decision %+v", i, d)
				}
				h, _ := tt.opts.History.(mapHistory)
				if d.Offence != h[d.Prefix]+1 {
					t.Errorf("failure %d: offence %d, want %d", i, d.Offence, h[d.Prefix]+1)
				}
				got = append(got, ban{i, d.Prefix.String(), d.Failures, d.BanTime})
			}
			if len(got) != len(tt.bans) {
				t.Fatalf("bans %v, want %v", got, tt.bans)
			}
			for i := range got {
				if got[i] != tt.bans[i] {
					t.Errorf("ban %d: %v, want %v", i, got[i], tt.bans[i])
				}
			}
			s := e.Stats()
			for _, c := range []struct {
				name      string
				got, want uint64
			}{
				{"ignored", s.Ignored, tt.stats.Ignored},
				{"unattributable", s.Unattributable, tt.stats.Unattributable},
				{"stale", s.Stale, tt.stats.Stale},
				{"while banned", s.WhileBanned, tt.stats.WhileBanned},
				{"failures", s.Failures, tt.stats.Failures},
			} {
				if c.want != 0 && c.got != c.want {
					t.Errorf("stats %s = %d, want %d", c.name, c.got, c.want)
				}
			}
			if s.Decisions != uint64(len(tt.bans)) {
				t.Errorf("stats decisions = %d, want %d", s.Decisions, len(tt.bans))
			}
		})
	}
}

type bannedSet map[netip.Addr]bool

func (b bannedSet) Contains(a netip.Addr) bool { return b[a] }

func TestBanTimeFor(t *testing.T) {
	off := false
	j := JailDefaults("sshd", Jail{BanTime: schema.Duration(10 * time.Minute)})
	tests := []struct {
		inc  Increment
		prev int
		want time.Duration
	}{
		{j.Increment, 0, 10 * time.Minute},
		{j.Increment, -1, 10 * time.Minute},
		{j.Increment, 1, 20 * time.Minute},
		{j.Increment, 4, 160 * time.Minute},
		{j.Increment, 1000, 7 * 24 * time.Hour},
		{j.Increment, 1 << 30, 7 * 24 * time.Hour},
		{Increment{Factor: 3, Max: schema.Duration(time.Hour)}, 1, 30 * time.Minute},
		{Increment{Factor: 3, Max: schema.Duration(time.Hour)}, 2, time.Hour},
		{Increment{Factor: 1.5, Max: schema.Duration(time.Hour)}, 2, 22*time.Minute + 30*time.Second},
		{Increment{Factor: 1, Max: schema.Duration(time.Hour)}, 9, 10 * time.Minute},
		{Increment{Enabled: &off, Factor: 2, Max: schema.Duration(time.Hour)}, 3, 10 * time.Minute},
		{Increment{Factor: 2, Max: schema.Duration(time.Minute)}, 3, 10 * time.Minute}, // max below bantime
	}
	for _, tt := range tests {
		j.Increment = tt.inc
		if got := j.BanTimeFor(tt.prev); got != tt.want {
			t.Errorf("%+v, %d previous: %s, want %s", tt.inc, tt.prev, got, tt.want)
		}
	}
}

func TestObserveAllAndFailures(t *testing.T) {
	e, err := New("sshd", testJail(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("198.51.100.7")
	evs := []Event{{Addr: a, Time: t0}, {Addr: a, Time: t0.Add(time.Second)}}
	if ds := e.ObserveAll(evs, nil); len(ds) != 0 {
		t.Fatalf("decisions %v", ds)
	}
	if n := e.Failures(a); n != 2 {
		t.Fatalf("failures %d, want 2", n)
	}
	if n := e.Failures(netip.MustParseAddr("198.51.100.8")); n != 0 {
		t.Fatalf("failures of a stranger %d", n)
	}
	ds := e.ObserveAll([]Event{{Addr: a, Time: t0.Add(2 * time.Second)}}, nil)
	if len(ds) != 1 || ds[0].Prefix.String() != "198.51.100.7/32" {
		t.Fatalf("decisions %v", ds)
	}
	if n := e.Failures(a); n != 0 {
		t.Fatalf("failures after the ban %d", n)
	}
}

func TestZeroTimeIsNow(t *testing.T) {
	now := t0
	e, _ := New("sshd", testJail(), Options{Now: func() time.Time { return now }})
	a := netip.MustParseAddr("198.51.100.7")
	e.Observe(a, time.Time{}, 2)
	now = now.Add(time.Minute)
	d, ok := e.Observe(a, time.Time{}, 1)
	if !ok || !d.At.Equal(now) {
		t.Fatalf("decision %+v %v", d, ok)
	}
}

func TestFutureTimestampsClamped(t *testing.T) {
	now := t0
	e, _ := New("sshd", testJail(), Options{Now: func() time.Time { return now }})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	e.Observe(a, t0.AddDate(1, 0, 0), 2) // a year ahead: counted as a minute ahead
	for i := range 3 {
		d, ok := e.Observe(b, t0.Add(time.Duration(i)*time.Second), 1)
		if ok != (i == 2) {
			t.Fatalf("failure %d of a real source: %v %+v", i, ok, d)
		}
	}
	d, ok := e.Observe(a, t0.AddDate(1, 0, 0), 1)
	if !ok || !d.At.Equal(t0.Add(maxAhead)) {
		t.Fatalf("decision %+v %v", d, ok)
	}
	if s := e.Stats(); s.Ahead != 2 || s.Stale != 0 {
		t.Fatalf("stats %+v", s)
	}
	// As the clock moves, the bound moves with it.
	now = t0.Add(time.Hour)
	if d, ok := e.Observe(b, now.Add(30*time.Second), 3); !ok || !d.At.Equal(now.Add(30*time.Second)) {
		t.Fatalf("decision %+v %v", d, ok)
	}
}

func TestSweep(t *testing.T) {
	e, _ := New("sshd", testJail(), Options{})
	for i := range 5000 {
		e.Observe(addr4(uint32(i)), t0.Add(time.Duration(i)*time.Millisecond), 1)
	}
	if n := e.Sweep(t0.Add(5 * time.Minute)); n != 0 {
		t.Fatalf("swept %d inside the window", n)
	}
	if n := e.Sweep(t0.Add(10*time.Minute + 2*time.Second)); n != 2001 {
		t.Fatalf("swept %d, want 2001", n)
	}
	if n := e.Sweep(t0.Add(time.Hour)); n != 2999 {
		t.Fatalf("swept %d, want 2999", n)
	}
	s := e.Stats()
	if s.Tracked != 0 || s.Expired != 5000 {
		t.Fatalf("stats %+v", s)
	}
	// The emptied table still works.
	e.Observe(addr4(1), t0.Add(2*time.Hour), 2)
	if n := e.Failures(addr4(1)); n != 2 {
		t.Fatalf("failures %d", n)
	}
}

func TestAdmissionExpires(t *testing.T) {
	// Sources whose window passed make room as new ones arrive, without
	// Sweep and without eviction.
	e, _ := New("sshd", testJail(), Options{MaxTracked: 1000})
	for i := range 100_000 {
		e.Observe(addr4(uint32(i)), t0.Add(time.Duration(i)*time.Second), 1)
	}
	s := e.Stats()
	if s.Evicted != 0 || s.Dropped != 0 || s.Tracked > 700 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tt := range []struct {
		j Jail
		o Options
	}{
		{Jail{MaxRetry: -1}, Options{}},
		{Jail{MaxRetry: 1001}, Options{}},
		{Jail{FindTime: -1}, Options{}},
		{Jail{}, Options{IPv6Prefix: 129}},
		{Jail{}, Options{MaxTracked: -1}},
	} {
		if _, err := New("x", tt.j, tt.o); err == nil {
			t.Errorf("New(%+v, %+v) accepted", tt.j, tt.o)
		}
	}
}

func TestReconfigureKeepsCounts(t *testing.T) {
	e, _ := New("sshd", testJail(), Options{})
	a := netip.MustParseAddr("192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8:0:1::1")
	e.Observe(a, t0, 1)
	e.Observe(a, t0.Add(time.Second), 1)
	e.Observe(v6, t0, 1)
	e.Observe(netip.MustParseAddr("2001:db8:0:2::1"), t0, 1)

	cfg := testJail()
	cfg.MaxRetry = 5
	if err := e.Reconfigure(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := e.Failures(a); n != 2 {
		t.Fatalf("failures after reload %d, want 2", n)
	}
	// A bad config changes nothing.
	bad := cfg
	bad.MaxRetry = -3
	if err := e.Reconfigure(bad, Options{}); err == nil || e.Config().MaxRetry != 5 {
		t.Fatalf("bad reload: %v, maxretry %d", err, e.Config().MaxRetry)
	}
	// A shorter IPv6 prefix merges sources.
	if err := e.Reconfigure(cfg, Options{IPv6Prefix: 48}); err != nil {
		t.Fatal(err)
	}
	if n := e.Failures(v6); n != 2 {
		t.Fatalf("merged /48 failures %d, want 2", n)
	}
	// A lowered maxretry leaves sources one failure from their ban.
	cfg.MaxRetry = 2
	if err := e.Reconfigure(cfg, Options{IPv6Prefix: 48}); err != nil {
		t.Fatal(err)
	}
	if n := e.Failures(a); n != 1 {
		t.Fatalf("failures after lowering maxretry %d, want 1", n)
	}
	if d, ok := e.Observe(a, t0.Add(2*time.Second), 1); !ok || d.Failures != 2 {
		t.Fatalf("no ban after lowering maxretry: %+v", d)
	}
	// Newly ignored sources are forgotten.
	e.Observe(a, t0.Add(3*time.Second), 1)
	if err := e.Reconfigure(cfg, Options{Ignore: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}); err != nil {
		t.Fatal(err)
	}
	if n := e.Failures(a); n != 0 {
		t.Fatalf("ignored source still counted: %d", n)
	}
}

func TestReplay(t *testing.T) {
	cfg := testJail()
	cfg.BanTime = schema.Duration(time.Minute)
	a := netip.MustParseAddr("192.0.2.1")
	var evs []Event
	for i := range 10 { // 0..9s: banned at 2s until 62s
		evs = append(evs, Event{Addr: a, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	for i := range 3 { // banned again at 72s, for twice as long
		evs = append(evs, Event{Addr: a, Time: t0.Add(time.Duration(70+i) * time.Second)})
	}
	evs = append(evs, Event{Time: t0}, Event{Addr: netip.MustParseAddr("192.0.2.2"), Time: t0.Add(80 * time.Second), Attempts: 3})
	res, err := Replay("sshd", cfg, Options{}, func(yield func(Event) bool) {
		for _, ev := range evs {
			if !yield(ev) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []ban{{2, "192.0.2.1/32", 3, time.Minute}, {72, "192.0.2.1/32", 3, 2 * time.Minute}, {80, "192.0.2.2/32", 3, time.Minute}}
	if len(res.Bans) != len(want) {
		t.Fatalf("bans %+v", res.Bans)
	}
	for i, d := range res.Bans {
		got := ban{int(d.At.Sub(t0) / time.Second), d.Prefix.String(), d.Failures, d.BanTime}
		if got != want[i] {
			t.Errorf("ban %d: %v, want %v", i, got, want[i])
		}
	}
	if res.Bans[1].Offence != 2 {
		t.Errorf("second ban offence %d", res.Bans[1].Offence)
	}
	if res.Stats.WhileBanned != 7 || res.Stats.Unattributable != 1 {
		t.Errorf("stats %+v", res.Stats)
	}
}

// TestConcurrentObserve: jails are observed from several goroutines (the
// race detector checks the locking) and every decision is counted once.
// The 4×1,000 sources fit the table, so how the goroutines interleave
// cannot evict a source before its third failure.
func TestConcurrentObserve(t *testing.T) {
	e, _ := New("sshd", testJail(), Options{MaxTracked: 5000})
	var wg sync.WaitGroup
	var mu sync.Mutex
	bans := 0
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20_000 {
				if _, ok := e.Observe(addr4(uint32(g<<16|i%1000)), t0.Add(time.Duration(i)*time.Millisecond), 1); ok {
					mu.Lock()
					bans++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if bans == 0 || e.Stats().Decisions != uint64(bans) {
		t.Fatalf("bans %d, stats %+v", bans, e.Stats())
	}
}

func addr4(i uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(i>>24) | 1, byte(i >> 16), byte(i >> 8), byte(i)})
}

// A source decided in a batch is banned for the rest of the batch: its
// later failures there are failures while banned, not another decision
// (the batch's decisions reach the store only after ObserveAll).
func TestObserveAllDecidesOncePerBatch(t *testing.T) {
	e, err := New("sshd", Jail{MaxRetry: 3}, Options{IPv6Prefix: 64})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var evs []Event
	for i := range 12 {
		evs = append(evs, Event{Addr: netip.MustParseAddr("192.0.2.7"), Time: now, Attempts: 1})
		evs = append(evs, Event{Addr: netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)), Time: now, Attempts: 1})
	}
	decs := e.ObserveAll(evs, nil)
	if len(decs) != 2 {
		t.Fatalf("%d decisions, want one for 192.0.2.7 and one for 2001:db8::/64: %+v", len(decs), decs)
	}
	if st := e.Stats(); st.WhileBanned != 18 {
		t.Errorf("failures while banned %d, want 18", st.WhileBanned)
	}
	// The next batch asks opts.Banned again (nil here): counted afresh.
	if decs := e.ObserveAll(evs[:6], nil); len(decs) != 2 {
		t.Errorf("next batch: %d decisions, want 2", len(decs))
	}
}
