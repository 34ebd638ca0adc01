package ban

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func openTest(t testing.TB, path string, c *clock) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "moat.db")
	}
	s, err := Open(path, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func auto(p string, created time.Time, d time.Duration) Ban {
	return Ban{Prefix: pfx(p), Jail: "sshd", Reason: "5 failures", Created: created, Expires: created.Add(d), Failures: 5}
}

func TestOpenWALAndSchema(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "moat.db")
	s := openTest(t, path, &clock{t: t0})
	var mode string
	var v int
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q, %v", mode, err)
	}
	if err := s.db.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version %d, %v", v, err)
	}
	var busy int
	if err := s.db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != 5000 {
		t.Fatalf("busy timeout %d, %v", busy, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("db file: %v %v", fi.Mode(), err)
	}
	if _, err := s.Ban(context.Background(), []Ban{auto("192.0.2.1/32", t0, time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL file: %v", err)
	}
	s.Close()
	// Reopening migrates nothing and keeps the data.
	s = openTest(t, path, &clock{t: t0})
	if !s.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("ban lost on reopen")
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("this is not a database, not at all, no............................................................"), 0o600)
	// A foreign file is moved aside, not trusted and not fatal.
	if s, err := Open(junk, Options{}); err != nil {
		t.Errorf("a foreign file stopped Open: %v", err)
	} else {
		if !strings.Contains(s.Recovered(), "bad header") {
			t.Errorf("recovered: %q", s.Recovered())
		}
		s.Close()
	}
	newer := filepath.Join(dir, "newer.db")
	s, err := Open(newer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.db.Exec(`UPDATE schema_version SET version = 99`)
	s.Close()
	if _, err := Open(newer, Options{}); err == nil {
		t.Error("opened a database from a newer moat")
	}
}

func TestBanLifecycle(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "moat.db")
	s := openTest(t, path, c)
	a := netip.MustParseAddr("192.0.2.1")

	ch, err := s.Ban(ctx, []Ban{auto("192.0.2.1/32", t0, time.Hour)})
	if err != nil || len(ch) != 1 || ch[0].Extended || ch[0].Ban.Offence != 1 {
		t.Fatalf("first ban: %+v %v", ch, err)
	}
	if !s.Contains(a) || s.Contains(netip.MustParseAddr("192.0.2.2")) || !s.Contains(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Fatal("Contains")
	}
	if n := s.PreviousBans(pfx("192.0.2.1/32")); n != 1 {
		t.Fatalf("previous bans %d", n)
	}
	// A longer ban of the same prefix extends it, without a new offence.
	ch, _ = s.Ban(ctx, []Ban{auto("192.0.2.1/32", t0.Add(time.Minute), 2*time.Hour)})
	if len(ch) != 1 || !ch[0].Extended || !ch[0].Ban.Created.Equal(t0) || !ch[0].Ban.Expires.Equal(t0.Add(time.Minute+2*time.Hour)) {
		t.Fatalf("extension: %+v", ch)
	}
	// A shorter one changes nothing.
	if ch, _ = s.Ban(ctx, []Ban{auto("192.0.2.1/32", t0, time.Minute)}); len(ch) != 0 {
		t.Fatalf("shorter ban changed %+v", ch)
	}
	if n := s.PreviousBans(pfx("192.0.2.1/32")); n != 1 {
		t.Fatalf("previous bans after extension %d", n)
	}
	// Ended: Contains stops before Expire runs.
	c.Set(t0.Add(3 * time.Hour))
	if s.Contains(a) {
		t.Fatal("ended ban still contains")
	}
	if act, _ := s.Active(ctx); len(act) != 0 {
		t.Fatalf("active %+v", act)
	}
	// Banned again after the end: a second offence, counted from history.
	b := auto("192.0.2.1/32", c.Now(), time.Hour)
	ch, _ = s.Ban(ctx, []Ban{b})
	if len(ch) != 1 || ch[0].Extended || ch[0].Ban.Offence != 2 {
		t.Fatalf("second offence %+v", ch)
	}
	if n := s.PreviousBans(pfx("192.0.2.1/32")); n != 2 {
		t.Fatalf("previous bans %d", n)
	}
	// Restart keeps bans and history.
	s.Close()
	s = openTest(t, path, c)
	act, err := s.Active(ctx)
	if err != nil || len(act) != 1 || act[0].Offence != 2 || act[0].Prefix != pfx("192.0.2.1/32") || !act[0].Expires.Equal(b.Expires) {
		t.Fatalf("after restart: %+v %v", act, err)
	}
	if !s.Contains(a) || s.PreviousBans(pfx("192.0.2.1/32")) != 2 {
		t.Fatal("mirror after restart")
	}
	h, err := s.History(ctx, HistoryQuery{Prefix: pfx("192.0.2.1/32")})
	if err != nil || len(h) != 2 || h[0].Offence != 2 {
		t.Fatalf("history %+v %v", h, err)
	}
}

func TestBanCanonicalAndInvalid(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", &clock{t: t0})
	ch, err := s.Ban(ctx, []Ban{
		{Prefix: pfx("::ffff:198.51.100.9/128"), Expires: t0.Add(time.Hour)},
		{Prefix: pfx("10.1.2.3/8")},
	})
	if err != nil || len(ch) != 2 {
		t.Fatal(ch, err)
	}
	if ch[0].Ban.Prefix != pfx("198.51.100.9/32") || ch[1].Ban.Prefix != pfx("10.0.0.0/8") || !ch[1].Ban.Permanent() {
		t.Fatalf("%+v", ch)
	}
	if ch[0].Ban.Origin != OriginAuto || !ch[0].Ban.Created.Equal(t0) {
		t.Fatalf("defaults %+v", ch[0].Ban)
	}
	if _, err := s.Ban(ctx, []Ban{{}}); err == nil {
		t.Fatal("banned the zero prefix")
	}
	if !s.Contains(netip.MustParseAddr("10.200.0.1")) {
		t.Fatal("permanent network ban")
	}
}

func TestBanBatch10000(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "moat.db")
	s := openTest(t, path, c)
	bans := make([]Ban, 10_000)
	for i := range bans {
		bans[i] = auto(fmt.Sprintf("10.%d.%d.%d/32", i>>16, (i>>8)&255, i&255), t0, time.Hour)
	}
	bans[9_999] = auto("2001:db8:1:2::/64", t0, time.Hour)
	start := time.Now()
	ch, err := s.Ban(ctx, bans)
	if err != nil || len(ch) != 10_000 {
		t.Fatalf("%d changes, %v", len(ch), err)
	}
	t.Logf("10,000 bans in one transaction: %v", time.Since(start))
	if !s.Contains(netip.MustParseAddr("10.0.39.14")) || !s.Contains(netip.MustParseAddr("2001:db8:1:2:dead::1")) {
		t.Fatal("Contains after batch")
	}
	s.Close()
	s = openTest(t, path, c)
	if act, _ := s.Active(ctx); len(act) != 10_000 || s.Len() != 10_000 {
		t.Fatalf("%d active after restart, %d in memory", len(act), s.Len())
	}
	var h int
	s.db.QueryRow(`SELECT count(*) FROM history`).Scan(&h)
	if h != 10_000 {
		t.Fatalf("%d history rows", h)
	}
}

func TestExpire(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openTest(t, "", c)
	s.Ban(ctx, []Ban{
		auto("192.0.2.1/32", t0, time.Minute),
		auto("192.0.2.2/32", t0, time.Hour),
		{Prefix: pfx("192.0.2.3/32"), Origin: OriginManual},
	})
	gone, err := s.Expire(ctx, t0.Add(time.Minute))
	if err != nil || len(gone) != 1 || gone[0].Prefix != pfx("192.0.2.1/32") {
		t.Fatalf("expired %+v %v", gone, err)
	}
	if s.Len() != 2 {
		t.Fatalf("len %d", s.Len())
	}
	gone, _ = s.Expire(ctx, t0.Add(1000*time.Hour))
	if len(gone) != 1 || gone[0].Prefix != pfx("192.0.2.2/32") {
		t.Fatalf("expired %+v", gone)
	}
	c.Set(t0.Add(1000 * time.Hour))
	if act, _ := s.Active(ctx); len(act) != 1 || act[0].Origin != OriginManual || !act[0].Permanent() {
		t.Fatalf("active %+v", act)
	}
	// History outlives expiry.
	if s.PreviousBans(pfx("192.0.2.1/32")) != 1 {
		t.Fatal("history lost on expiry")
	}
}

func TestUnban(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", &clock{t: t0})
	s.Ban(ctx, []Ban{
		auto("192.0.2.1/32", t0, time.Hour),
		auto("192.0.2.2/32", t0, time.Hour),
		auto("198.51.100.0/24", t0, time.Hour),
		auto("2001:db8:1:2::/64", t0, time.Hour),
	})
	for _, tt := range []struct {
		unban string
		want  []string
	}{
		{"203.0.113.1/32", nil},
		{"2001:db8:1:2::77/128", []string{"2001:db8:1:2::/64"}}, // an address lifts its network's ban
		{"198.51.100.5/32", []string{"198.51.100.0/24"}},
		{"192.0.2.0/24", []string{"192.0.2.1/32", "192.0.2.2/32"}}, // a network lifts the bans inside
		{"192.0.2.0/24", nil},
	} {
		got, err := s.Unban(ctx, pfx(tt.unban))
		if err != nil {
			t.Fatal(err)
		}
		var ps []string
		for _, b := range got {
			ps = append(ps, b.Prefix.String())
		}
		if fmt.Sprint(sortedStrings(ps)) != fmt.Sprint(tt.want) {
			t.Errorf("unban %s: %v, want %v", tt.unban, ps, tt.want)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("%d left", s.Len())
	}
	if _, err := s.Unban(ctx, netip.Prefix{}); err == nil {
		t.Fatal("unbanned the zero prefix")
	}
}

func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "", &clock{t: t0})
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Ban(ctx, []Ban{auto(fmt.Sprintf("10.0.%d.%d/32", i/256, i%256), t0, time.Hour)})
			errs <- err
			if i%10 == 0 {
				errs <- s.Positions().Save(fmt.Sprintf("src%d", i), []byte("pos"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 200 {
		t.Fatalf("%d bans", s.Len())
	}
	// A call whose context is already done is not run.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Ban(cctx, []Ban{auto("10.9.9.9/32", t0, time.Hour)}); err == nil || s.Contains(netip.MustParseAddr("10.9.9.9")) {
		t.Fatalf("cancelled ban: %v", err)
	}
	s.Close()
	if _, err := s.Ban(ctx, []Ban{auto("10.9.9.9/32", t0, time.Hour)}); err == nil {
		t.Fatal("ban after close")
	}
}

func TestHistoryQueryAndPrune(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openTest(t, "", c)
	for i := range 5 {
		at := t0.Add(time.Duration(i) * 24 * time.Hour)
		c.Set(at)
		s.Ban(ctx, []Ban{auto("192.0.2.1/32", at, time.Hour), auto("192.0.2.2/32", at, time.Hour)})
	}
	h, _ := s.History(ctx, HistoryQuery{Limit: 3})
	if len(h) != 3 || !h[0].Created.Equal(t0.Add(96*time.Hour)) {
		t.Fatalf("history %+v", h)
	}
	h, _ = s.History(ctx, HistoryQuery{Since: t0.Add(72 * time.Hour), Prefix: pfx("192.0.2.2/32")})
	if len(h) != 2 {
		t.Fatalf("history since %+v", h)
	}
	n, err := s.PruneHistory(ctx, t0.Add(48*time.Hour))
	if err != nil || n != 4 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if p := s.PreviousBans(pfx("192.0.2.1/32")); p != 3 {
		t.Fatalf("previous bans after prune %d", p)
	}
}

func TestPositions(t *testing.T) {
	c := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "moat.db")
	s := openTest(t, path, c)
	pos := s.Positions()
	if _, ok, err := pos.Load("sshd"); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	buf := []byte("file:2049:1234:5678:64:deadbeef")
	if err := pos.Save("sshd", buf); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X' // Save copied it
	if err := pos.Save("journal", []byte{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path, c)
	got, ok, err := s.Positions().Load("sshd")
	if err != nil || !ok || string(got) != "file:2049:1234:5678:64:deadbeef" {
		t.Fatalf("%q %v %v", got, ok, err)
	}
	got, ok, _ = s.Positions().Load("journal")
	if !ok || got == nil || len(got) != 0 {
		t.Fatalf("empty position: %q %v", got, ok)
	}
}

func sortedStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}
