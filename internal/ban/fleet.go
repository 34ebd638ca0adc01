package ban

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// fleetPrefix starts the origin of a ban another host of the fleet
// decided: "fleet:web-2".
const fleetPrefix = "fleet:"

// FleetOrigin is the origin of a ban decided by host in the fleet.
func FleetOrigin(host string) Origin { return Origin(fleetPrefix + host) }

// FleetHost returns the host that decided a fleet ban, and whether o is
// one.
func (o Origin) FleetHost() (string, bool) {
	return strings.CutPrefix(string(o), fleetPrefix)
}

// Lift lifts the active ban of exactly p (not the networks around or
// inside it, as Unban does) when ok approves it, as an unban: a
// tombstone in the store, the element out of the kernel, an EventUnban.
// The fleet lifts a ban only when its origin is the host that sent the
// unban. It reports whether a ban was lifted.
func (e *Enforcer) Lift(ctx context.Context, p netip.Prefix, ok func(Ban) bool) (bool, error) {
	p, valid := CanonicalPrefix(p)
	if !valid {
		return false, fmt.Errorf("lift: invalid prefix %v", p)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store.pendingLen() > 0 {
		return false, errors.New("lift: the ban store is writing decisions kept in memory; retry later")
	}
	var removed *Ban
	o := &op{}
	o.run = func(ctx context.Context) error {
		removed = nil
		b, err := scanBan(e.store.stmts.get.QueryRowContext(ctx, p.String()))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if !ok(b) {
			return nil
		}
		if _, err := e.store.stmts.del.ExecContext(ctx, p.String()); err != nil {
			return err
		}
		if _, err := e.store.stmts.tomb.ExecContext(ctx, p.String(), e.store.now().UnixMilli(), tombUnban); err != nil {
			return err
		}
		removed = &b
		return nil
	}
	o.apply = func() {
		if removed != nil {
			e.store.active.delete(removed.Prefix)
			e.store.tombs[removed.Prefix] = struct{}{}
		}
	}
	if err := e.store.do(ctx, o); err != nil {
		return false, fmt.Errorf("lift %s: %w", p, err)
	}
	if removed == nil {
		return false, nil
	}
	e.emit(EventUnban, *removed, e.now())
	if k := e.kernel(p); k == p || !e.stillNeeded(k) {
		if err := e.sets.Delete(ctx, []netip.Prefix{p}); err != nil {
			return true, fmt.Errorf("%w: remove %s (lifted in the store; the next reconcile retries): %w", ErrKernel, p, err)
		}
	}
	if err := e.uncover(ctx, []Ban{*removed}); err != nil {
		return true, fmt.Errorf("%w: %w", ErrKernel, err)
	}
	return true, nil
}
