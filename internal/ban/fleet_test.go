package ban

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestLift: a fleet unban lifts only the ban of exactly its prefix, and
// only when the condition (the ban's origin is the sender) holds; the
// bans around and inside it stay, in the store and the kernel.
func TestLift(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	s := openTest(t, "", c)
	k := newFakeSets(c)
	e := NewEnforcer(s, k, EnforcerOptions{Now: c.Now})
	fromA := auto("192.0.2.7/32", t0, time.Hour)
	fromA.Origin = FleetOrigin("a")
	local := auto("192.0.2.0/24", t0, time.Hour)
	fromB := auto("198.51.100.1/32", t0, time.Hour)
	fromB.Origin = FleetOrigin("b")
	if _, err := e.Apply(ctx, []Ban{local, fromA, fromB}); err != nil {
		t.Fatal(err)
	}
	isFrom := func(h string) func(Ban) bool {
		return func(b Ban) bool { o, ok := b.Origin.FleetHost(); return ok && o == h }
	}
	// A may not lift B's ban, nor the local /24 around its own.
	if ok, err := e.Lift(ctx, pfx("198.51.100.1/32"), isFrom("a")); err != nil || ok {
		t.Fatalf("A lifted B's ban: %v %v", ok, err)
	}
	if ok, err := e.Lift(ctx, pfx("192.0.2.0/24"), isFrom("a")); err != nil || ok {
		t.Fatalf("A lifted a local ban: %v %v", ok, err)
	}
	if ok, err := e.Lift(ctx, pfx("192.0.2.7/32"), isFrom("a")); err != nil || !ok {
		t.Fatalf("A could not lift its own ban: %v %v", ok, err)
	}
	active, _ := s.Active(ctx)
	if len(active) != 2 {
		t.Fatalf("after lift: %v", active)
	}
	if _, ok := k.timeout("192.0.2.0/24"); !ok {
		t.Fatal("the local /24 left the kernel")
	}
	if _, ok := k.timeout("198.51.100.1/32"); !ok {
		t.Fatal("B's ban left the kernel")
	}
	if !s.Tombstoned(pfx("192.0.2.7/32")) {
		t.Fatal("no tombstone: a reconcile would adopt the element back")
	}
	if b := (Ban{Prefix: pfx("192.0.2.7/32"), Jail: "sshd", Origin: FleetOrigin("a")}); b.Line(t0) == "" || !strings.Contains(b.Line(t0), "sshd@a") {
		t.Fatalf("line %q does not name the origin", b.Line(t0))
	}
}
