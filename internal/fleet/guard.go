package fleet

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Guard decides whether another host's decision may be applied here. It
// refuses, whatever the sender says: decisions of an origin this host
// does not trust (and its own, echoed back), and bans overlapping the
// never-ban list (the host's own addresses, its VPN ranges, the admin
// sources, guard.ignore, loopback and the operator's SSH session: the list
// the guard's jails use, guard.Ignore), so no other host can cut this one
// off from its operator.
type Guard struct {
	cfg Config
	ver *verifier

	mu    sync.RWMutex
	never []netip.Prefix
}

// NewGuard returns a Guard for cfg with the never-ban list never.
func NewGuard(cfg Config, never []netip.Prefix) *Guard {
	g := &Guard{cfg: cfg, ver: newVerifier(cfg)}
	g.SetNever(never)
	return g
}

// SetNever replaces the never-ban list (the operator's sessions and the
// host's addresses change while moat runs).
func (g *Guard) SetNever(never []netip.Prefix) {
	g.mu.Lock()
	g.never = append([]netip.Prefix(nil), never...)
	g.mu.Unlock()
}

// Verify returns why d is not authentic or current (a *VerifyError), or
// nil: see verifier.
func (g *Guard) Verify(d Decision, now time.Time) error { return g.ver.verify(d, now) }

// VerifySig is Verify's signature half (pure: run in parallel).
func (g *Guard) VerifySig(d Decision) error { return g.ver.verifySig(d) }

// VerifyFresh is Verify's other half: the clock and replay checks, in
// the stream's order.
func (g *Guard) VerifyFresh(d Decision, now time.Time) error { return g.ver.verifyFresh(d, now) }

// Check returns why d must not be applied here, or nil. It does not
// verify the signature: Verify does.
func (g *Guard) Check(d Decision) error {
	if d.Origin == g.cfg.Origin() {
		return fmt.Errorf("decision from this host's own origin %s", d.Origin)
	}
	if !g.cfg.Trusts(d.Origin) {
		return fmt.Errorf("origin %s is not in fleet.trust", d.Origin)
	}
	if d.Op != OpBan {
		return nil // a tombstone lifts only the origin's own ban (see the daemon)
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, p := range g.never {
		if p.Overlaps(d.Prefix) {
			return fmt.Errorf("ban of %s from %s covers %s, which this host never bans (its own addresses, VPN, admin sources, guard.ignore, the operator's session)", d.Prefix, d.Origin, p)
		}
	}
	return nil
}
