package ban

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// A reader following the history by id sees each new offence once, in
// the order recorded, and an extension of a ban in force adds nothing.
func TestHistoryAfter(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openTest(t, "", c)
	ban := func(addr string, created time.Time) {
		t.Helper()
		p := netip.PrefixFrom(netip.MustParseAddr(addr), 32)
		if _, err := s.Ban(ctx, []Ban{{Prefix: p, Jail: "sshd", Created: created, Expires: t0.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	ban("192.0.2.1", t0.Add(-10*24*time.Hour)) // before the window
	ban("192.0.2.2", t0.Add(-time.Hour))
	ban("192.0.2.3", t0)
	got, err := s.HistoryAfter(ctx, 0, t0.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Prefix.Addr().String() != "192.0.2.2" || got[1].ID <= got[0].ID {
		t.Fatalf("first read: %+v", got)
	}
	last := got[1].ID
	ban("192.0.2.3", t0) // in force: extended at most, no new offence
	ban("192.0.2.4", t0.Add(-3*time.Hour))
	got, err = s.HistoryAfter(ctx, last, t0.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Prefix.Addr().String() != "192.0.2.4" || got[0].ID <= last {
		t.Fatalf("second read: %+v", got)
	}
	if got, _ := s.HistoryAfter(ctx, got[0].ID, time.Time{}); len(got) != 0 {
		t.Fatalf("third read: %+v", got)
	}
}
