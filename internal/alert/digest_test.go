package alert

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin for the DST case, whatever the host has
)

// quietDispatcher is a Dispatcher that is never Run: tests drive its
// digests with flushDue at fake-clock times and read what was queued.
func quietDispatcher(t *testing.T, c Config, clock *fakeClock, loc *time.Location) *Dispatcher {
	t.Helper()
	for name, n := range c.Notifiers {
		if n.Type == "" {
			n.Type, n.URL = "webhook", "http://127.0.0.1:1/"+name
			c.Notifiers[name] = n
		}
	}
	d, err := New(c, Options{Now: clock.Now, Location: loc, Host: "vps1", QueueSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// drained returns and forgets what was queued for notifier name.
func drained(d *Dispatcher, name string) []Event {
	return d.workers[name].take()
}

func titles(es []Event) string {
	var ts []string
	for _, e := range es {
		ts = append(ts, e.Title)
	}
	return strings.Join(ts, " | ")
}

func ban(jail, addr, country string) Event {
	return Ban{Jail: jail, Addr: addr, Country: country, Failures: 5, Duration: time.Hour}.Event()
}

var base = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// TestDigestWindows walks one route's digest through a fake afternoon.
func TestDigestWindows(t *testing.T) {
	clock := &fakeClock{t: base}
	d := quietDispatcher(t, Config{Notifiers: map[string]Notifier{"p": {}}, Digest: minutes(5)}, clock, time.UTC)
	at := func(offset time.Duration) { clock.Set(base.Add(offset)) }
	flush := func() time.Duration { return d.flushDue(clock.Now()) }

	// 12:00:00 the first ban opens a window; nothing goes out yet.
	d.Notify(ban("sshd", "192.0.2.1", "CN"))
	if got := drained(d, "p"); len(got) != 0 {
		t.Fatalf("the first ban went out at once: %s", titles(got))
	}
	if next := flush(); next != 5*time.Minute {
		t.Fatalf("next flush in %s, want 5m", next)
	}
	// 12:01 more bans join the window; a manual ban goes out at once.
	at(time.Minute)
	d.Notify(ban("sshd", "192.0.2.2", "CN"))
	d.Notify(ban("sshd", "192.0.2.1", "CN")) // banned again
	d.Notify(ban("nginx-auth", "198.51.100.9", "RU"))
	d.Notify(Unban{Jail: "sshd", Addr: "203.0.113.1"}.Event())
	d.Notify(Ban{Addr: "203.0.113.66", Manual: true, By: "root"}.Event())
	if got := titles(drained(d, "p")); got != "Manual ban: 203.0.113.66" {
		t.Fatalf("queued %q, want only the manual ban", got)
	}
	// 12:04:59 not due yet.
	at(5*time.Minute - time.Second)
	if next := flush(); next != time.Second || len(drained(d, "p")) != 0 {
		t.Fatalf("flushed early or next %s", next)
	}
	// 12:05:00 due: one message for five events.
	at(5 * time.Minute)
	if next := flush(); next != 0 {
		t.Fatalf("a window is still open: next %s", next)
	}
	got := drained(d, "p")
	if len(got) != 1 {
		t.Fatalf("%d messages, want one digest: %s", len(got), titles(got))
	}
	g := got[0]
	if g.Title != "4 bans, 1 ban expired in 5m: sshd 3, nginx-auth 1" {
		t.Errorf("title %q", g.Title)
	}
	if !strings.Contains(g.Title, "sshd 3") {
		t.Errorf("per-jail counts missing: %q", g.Title)
	}
	wantText := "4 bans of 3 addresses in the last 5m.\n" +
		"By jail: sshd 3, nginx-auth 1\n" +
		"Top addresses: 192.0.2.1 ×2, 192.0.2.2, 198.51.100.9\n" +
		"Top countries: CN 3, RU 1\n" +
		"1 ban expired in the last 5m.\n" +
		"Run `moat bans` for the full list."
	if g.Text != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", g.Text, wantText)
	}
	for k, v := range map[string]string{"digest": "true", "bans": "4", "expired": "1", "addresses": "3", "jails": "sshd=3,nginx-auth=1",
		"top_addrs": "192.0.2.1=2,192.0.2.2=1,198.51.100.9=1", "top_countries": "CN=3,RU=1", "since": "2025-03-14T12:00:00Z", "window": "5m0s"} {
		if g.Fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, g.Fields[k], v)
		}
	}
	if !g.Time.Equal(base.Add(5*time.Minute)) || g.Host != "vps1" || g.ID == "" {
		t.Errorf("digest not stamped: %v %q %q", g.Time, g.Host, g.ID)
	}

	// 12:07:30 a lone ban opens the next window; at 12:12:30 it goes out
	// as itself, not as "1 ban".
	at(7*time.Minute + 30*time.Second)
	d.Notify(ban("sshd", "192.0.2.77", ""))
	if next := flush(); next != 5*time.Minute {
		t.Fatalf("next %s", next)
	}
	at(12*time.Minute + 30*time.Second)
	flush()
	if got := titles(drained(d, "p")); got != "Banned 192.0.2.77 (sshd)" {
		t.Errorf("lone ban came out as %q", got)
	}
}

// TestDigestAtMostOnePerInterval: a brute force of a ban every 7 seconds
// for an hour yields ban messages at least one interval apart, and every
// ban is counted in exactly one of them.
func TestDigestAtMostOnePerInterval(t *testing.T) {
	clock := &fakeClock{t: base}
	d := quietDispatcher(t, Config{Notifiers: map[string]Notifier{"p": {}}, Digest: minutes(5)}, clock, time.UTC)
	var sent []time.Time
	total := 0
	for s := 0; s <= 4000; s++ {
		clock.Set(base.Add(time.Duration(s) * time.Second))
		if s%7 == 0 && s < 3600 {
			d.Notify(ban("sshd", fmt.Sprintf("10.0.%d.%d", s/256, s%256), ""))
		}
		d.flushDue(clock.Now())
		for _, e := range drained(d, "p") {
			sent = append(sent, clock.Now())
			if e.Fields["digest"] == "true" {
				var n int
				fmt.Sscan(e.Fields["bans"], &n)
				total += n
			} else {
				total++
			}
		}
	}
	for i := 1; i < len(sent); i++ {
		if gap := sent[i].Sub(sent[i-1]); gap < 5*time.Minute {
			t.Errorf("messages %d and %d only %s apart", i-1, i, gap)
		}
	}
	// Bans at 0, 7, …, 3598: 515 of them. Windows open at 0, 301 (the
	// first ban after 300), 602, … so 12 messages.
	if total != 515 || len(sent) != 12 {
		t.Errorf("%d bans in %d messages, want 515 in 12", total, len(sent))
	}
}

func TestDigestOff(t *testing.T) {
	clock := &fakeClock{t: base}
	d := quietDispatcher(t, Config{Notifiers: map[string]Notifier{"p": {}}}, clock, time.UTC)
	d.Notify(ban("sshd", "192.0.2.1", ""))
	d.Notify(ban("sshd", "192.0.2.2", ""))
	if got := drained(d, "p"); len(got) != 2 {
		t.Errorf("with digest 0 each ban goes alone, got %d", len(got))
	}
}

// TestDigestPerRoute: two routes digest on their own clocks; a route
// without bans in its events sees none.
func TestDigestPerRoute(t *testing.T) {
	clock := &fakeClock{t: base}
	c := Config{Notifiers: map[string]Notifier{"phone": {}, "ops": {}, "logins": {}}, Digest: minutes(10),
		Routes: []Route{
			{Events: []string{"ban"}, Notifiers: []string{"phone"}},
			{Notifiers: []string{"ops"}},
			{Events: []string{"login"}, Notifiers: []string{"logins"}},
		}}
	d := quietDispatcher(t, c, clock, time.UTC)
	d.Notify(ban("sshd", "192.0.2.1", ""))
	clock.Advance(time.Minute)
	d.Notify(ban("sshd", "192.0.2.2", ""))
	clock.Advance(9 * time.Minute)
	d.flushDue(clock.Now())
	for _, n := range []string{"phone", "ops"} {
		if got := titles(drained(d, n)); got != "2 bans in 10m: sshd 2" {
			t.Errorf("%s got %q", n, got)
		}
	}
	if got := drained(d, "logins"); len(got) != 0 {
		t.Errorf("logins route got %s", titles(got))
	}
}

// TestDigestQuietHours: a digest falling due in quiet hours waits for
// their end and then covers the whole night.
func TestDigestQuietHours(t *testing.T) {
	evening := time.Date(2025, 3, 14, 21, 58, 0, 0, time.UTC)
	clock := &fakeClock{t: evening}
	c := Config{Notifiers: map[string]Notifier{"p": {}}, Digest: minutes(5),
		Routes: []Route{{Notifiers: []string{"p"}, QuietHours: "22:00-07:00"}}}
	d := quietDispatcher(t, c, clock, time.UTC)
	d.Notify(ban("sshd", "192.0.2.1", ""))
	clock.Set(evening.Add(5 * time.Minute)) // 22:03, quiet
	if next := d.flushDue(clock.Now()); next != 8*time.Hour+57*time.Minute {
		t.Errorf("postponed by %s, want until 07:00", next)
	}
	clock.Set(time.Date(2025, 3, 15, 3, 0, 0, 0, time.UTC))
	d.Notify(ban("sshd", "192.0.2.2", ""))
	d.flushDue(clock.Now())
	if got := drained(d, "p"); len(got) != 0 {
		t.Fatalf("sent in quiet hours: %s", titles(got))
	}
	clock.Set(time.Date(2025, 3, 15, 7, 0, 0, 0, time.UTC))
	d.flushDue(clock.Now())
	if got := titles(drained(d, "p")); got != "2 bans in 9h2m: sshd 2" {
		t.Errorf("morning digest %q", got)
	}
}

func TestDigestAddressCap(t *testing.T) {
	g := &digest{interval: time.Minute}
	for i := range maxDigestAddrs + 100 {
		g.add(ban("sshd", fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), ""), base)
	}
	g.add(ban("sshd", "10.0.0.0", ""), base) // tracked already: still counted
	if len(g.addrs) != maxDigestAddrs || g.untracked != 100 || g.addrs["10.0.0.0"] != 2 {
		t.Errorf("tracked %d, untracked %d", len(g.addrs), g.untracked)
	}
	e := g.take(base.Add(time.Minute))
	if e.Fields["bans"] != fmt.Sprint(maxDigestAddrs+101) || e.Fields["addresses"] != fmt.Sprint(maxDigestAddrs+100) {
		t.Errorf("fields %v", e.Fields)
	}
}

func TestQuietHours(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2025, 3, 14, h, m, 0, 0, time.UTC) }
	cases := []struct {
		span  string
		t     time.Time
		quiet bool
		end   time.Time
	}{
		{"22:00-07:00", at(21, 59), false, time.Time{}},
		{"22:00-07:00", at(22, 0), true, at(31, 0)},
		{"22:00-07:00", at(23, 59), true, at(31, 0)},
		{"22:00-07:00", at(0, 0), true, at(7, 0)},
		{"22:00-07:00", at(6, 59), true, at(7, 0)},
		{"22:00-07:00", at(7, 0), false, time.Time{}},
		{"22:00-07:00", at(12, 0), false, time.Time{}},
		{"09:00-17:30", at(8, 59), false, time.Time{}},
		{"09:00-17:30", at(9, 0), true, at(17, 30)},
		{"09:00-17:30", at(17, 29), true, at(17, 30)},
		{"09:00-17:30", at(17, 30), false, time.Time{}},
		{"23:59-00:01", at(0, 0), true, at(0, 1)},
		{"23:59-00:01", at(23, 59), true, at(24, 1)},
	}
	for _, tc := range cases {
		q, err := parseQuietHours(tc.span)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.active(tc.t); got != tc.quiet {
			t.Errorf("%s at %s: quiet %v, want %v", tc.span, tc.t.Format("15:04"), got, tc.quiet)
		}
		if tc.quiet {
			if got := q.end(tc.t); !got.Equal(tc.end) {
				t.Errorf("%s at %s: ends %s, want %s", tc.span, tc.t.Format("15:04"), got, tc.end)
			}
		}
	}
	for _, bad := range []string{"22-07", "22:00", "22:00-07:60", "24:00-07:00", "7:00-9:00", "22:00-22:00", "aa:bb-cc:dd", "22:00–07:00"} {
		if _, err := parseQuietHours(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestQuietHoursLocalTime: quiet hours follow the local wall clock, DST
// included: the night of 30 March 2025 in Berlin is an hour shorter.
func TestQuietHoursLocalTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	q, _ := parseQuietHours("22:00-07:00")
	night := time.Date(2025, 3, 29, 22, 30, 0, 0, berlin) // 21:30 UTC
	if !q.active(night.UTC().In(berlin)) {
		t.Error("22:30 Berlin is quiet")
	}
	if q.active(night.UTC()) {
		t.Error("but 21:30 UTC is not, if the zone were UTC")
	}
	if end := q.end(night); end.Sub(night) != 7*time.Hour+30*time.Minute {
		t.Errorf("night lasts %s, want 7h30m on the DST night", end.Sub(night))
	}
}

// TestQuietHoursRouting: in quiet hours a route holds back all but
// critical events; another route without quiet hours is unaffected.
func TestQuietHoursRouting(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 3, 14, 23, 30, 0, 0, time.UTC)}
	c := Config{Notifiers: map[string]Notifier{"phone": {}, "mail": {}},
		Routes: []Route{
			{Notifiers: []string{"phone"}, QuietHours: "22:00-07:00"},
			{Notifiers: []string{"mail"}, MinSeverity: "warning"},
		}}
	d := quietDispatcher(t, c, clock, time.UTC)
	d.Notify(Login{User: "deploy", Addr: "192.0.2.1"}.Event())                  // info
	d.Notify(Login{User: "deploy", Addr: "192.0.2.9", NewSource: true}.Event()) // warning
	d.Notify(Memory{OOMKill: true, Process: "postgres", PID: 1}.Event())        // critical
	if got := titles(drained(d, "phone")); got != "Out of memory: killed postgres" {
		t.Errorf("phone in quiet hours got %q", got)
	}
	if got := titles(drained(d, "mail")); got != "SSH login: deploy from 192.0.2.9 (new source) | Out of memory: killed postgres" {
		t.Errorf("mail got %q", got)
	}
	clock.Set(time.Date(2025, 3, 15, 7, 0, 0, 0, time.UTC))
	d.Notify(Login{User: "deploy", Addr: "192.0.2.1"}.Event())
	if got := drained(d, "phone"); len(got) != 1 {
		t.Errorf("after quiet hours phone got %d", len(got))
	}
}

func TestRouting(t *testing.T) {
	clock := &fakeClock{t: base}
	c := Config{Notifiers: map[string]Notifier{"a": {}, "b": {}, "c": {}},
		Routes: []Route{
			{Events: []string{"login", "drift"}, Notifiers: []string{"a", "b"}},
			{Events: []string{"drift"}, Notifiers: []string{"b", "c"}, MinSeverity: "critical"},
		}}
	d := quietDispatcher(t, c, clock, time.UTC)
	d.Notify(Login{User: "u", Addr: "192.0.2.1"}.Event())
	d.Notify(Drift{Score: 50, PreviousScore: 60}.Event())                                // warning: first route only
	d.Notify(Drift{Score: 50, PreviousScore: 60, NewCritical: []string{"x: y"}}.Event()) // both routes, b once
	d.Notify(Disk{Mount: "/", UsedPercent: 95}.Event())                                  // no route
	for n, want := range map[string]string{
		"a": "SSH login: u from 192.0.2.1 | Audit score fell from 60 to 50 | New critical finding: x: y",
		"b": "SSH login: u from 192.0.2.1 | Audit score fell from 60 to 50 | New critical finding: x: y",
		"c": "New critical finding: x: y",
	} {
		if got := titles(drained(d, n)); got != want {
			t.Errorf("%s got %q, want %q", n, got, want)
		}
	}
}

// TestDefaultRoute: with no routes every event reaches every notifier.
func TestDefaultRoute(t *testing.T) {
	clock := &fakeClock{t: base}
	d := quietDispatcher(t, Config{Notifiers: map[string]Notifier{"a": {}, "b": {}}}, clock, time.UTC)
	d.Notify(Login{User: "u", Addr: "192.0.2.1"}.Event())
	d.Notify(Reboot{}.Event())
	for _, n := range []string{"a", "b"} {
		if got := len(drained(d, n)); got != 2 {
			t.Errorf("%s got %d events, want 2", n, got)
		}
	}
}

// TestReloadKeepsDigest: a reload that leaves a route alone keeps its
// open window; one that changes it sends the window out now.
func TestReloadKeepsDigest(t *testing.T) {
	clock := &fakeClock{t: base}
	c := Config{Notifiers: map[string]Notifier{"p": {}}, Digest: minutes(5), Routes: []Route{{Notifiers: []string{"p"}}}}
	d := quietDispatcher(t, c, clock, time.UTC)
	d.Notify(ban("sshd", "192.0.2.1", ""))
	d.Notify(ban("sshd", "192.0.2.2", ""))
	if err := d.Reload(c); err != nil {
		t.Fatal(err)
	}
	if len(drained(d, "p")) != 0 || !d.routes[0].digest.pending() {
		t.Fatal("an unchanged route lost its window")
	}
	c.Routes = []Route{{Notifiers: []string{"p"}, MinSeverity: "info"}}
	if err := d.Reload(c); err != nil {
		t.Fatal(err)
	}
	if got := titles(drained(d, "p")); got != "2 bans in 0s: sshd 2" {
		t.Errorf("changed route flushed %q", got)
	}
}
