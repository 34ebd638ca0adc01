package ban

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// SetElement is one element of the kernel's ban sets.
type SetElement struct {
	Prefix netip.Prefix
	// Timeout is how long the kernel keeps the element; 0 is forever. In
	// List's answer it is the time the element has left (nft's
	// "expires"), 0 for an element without a timeout.
	Timeout time.Duration
}

// Sets are the kernel's ban sets (internal/firewall's, connected by the
// daemon).
type Sets interface {
	// Add inserts elements or refreshes them: afterwards each is in the
	// sets with the given timeout, even if it was there before with
	// another (an nftables add leaves an existing element's timeout
	// alone, so the implementation deletes and adds in one transaction).
	Add(ctx context.Context, elems []SetElement) error
	// Delete removes elements; absent ones are not an error.
	Delete(ctx context.Context, prefixes []netip.Prefix) error
	// List returns the elements in the sets.
	List(ctx context.Context) ([]SetElement, error)
}

// EventKind is what happened to a ban.
type EventKind string

const (
	EventBan    EventKind = "ban"    // a new ban, automatic or manual
	EventExtend EventKind = "extend" // an active ban now ends later
	EventUnban  EventKind = "unban"  // the operator lifted a ban
	EventExpire EventKind = "expire" // a ban ended
)

// Event is a ban's change, for alerts.
type Event struct {
	Kind EventKind
	Ban  Ban
	At   time.Time
}

// EnforcerOptions tune an Enforcer.
type EnforcerOptions struct {
	// Events is the event channel's buffer (0 is 1024). When it is full,
	// events are dropped and counted rather than block the guard.
	Events int
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// KernelPrefix maps a banned prefix to the element the sets hold for
	// it, when the sets widen what they are given (IPv6 to the ban
	// prefix); nil means the sets hold prefixes as given. Reconcile
	// compares through it, so it neither fights the widening nor takes
	// the widened elements for strangers.
	KernelPrefix func(netip.Prefix) netip.Prefix
}

// Enforcer applies the store's bans to the kernel sets. It is safe for
// concurrent use; kernel changes are serialized.
type Enforcer struct {
	store   *Store
	sets    Sets
	now     func() time.Time
	events  chan Event
	dropped atomic.Uint64
	kernel  func(netip.Prefix) netip.Prefix
	mu      sync.Mutex // orders kernel changes after their store writes
}

// NewEnforcer returns an Enforcer of store's bans through sets.
func NewEnforcer(store *Store, sets Sets, opts EnforcerOptions) *Enforcer {
	if opts.Events <= 0 {
		opts.Events = 1024
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KernelPrefix == nil {
		opts.KernelPrefix = func(p netip.Prefix) netip.Prefix { return p }
	}
	return &Enforcer{store: store, sets: sets, now: opts.Now, events: make(chan Event, opts.Events), kernel: opts.KernelPrefix}
}

// Events delivers ban events. Read it promptly: it never blocks the
// guard, so a full buffer drops events (see Dropped).
func (e *Enforcer) Events() <-chan Event { return e.events }

// Dropped returns the number of events dropped on a full buffer.
func (e *Enforcer) Dropped() uint64 { return e.dropped.Load() }

func (e *Enforcer) emit(kind EventKind, b Ban, at time.Time) {
	select {
	case e.events <- Event{Kind: kind, Ban: b, At: at}:
	default:
		e.dropped.Add(1)
	}
}

// Apply stores bans (one transaction) and puts the new and extended ones
// into the kernel with their remaining time as timeout. The store is
// written first: if the kernel refuses, the bans are recorded and the next
// Reconcile puts them in. It returns the changes made.
func (e *Enforcer) Apply(ctx context.Context, bans []Ban) ([]Change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	changes, err := e.store.Ban(ctx, bans)
	if err != nil {
		return nil, err
	}
	now := e.now()
	elems := make([]SetElement, 0, len(changes))
	for _, c := range changes {
		if d, ok := e.elementTimeout(c.Ban, now); ok {
			elems = append(elems, SetElement{Prefix: c.Ban.Prefix, Timeout: d})
		}
		kind := EventBan
		if c.Extended {
			kind = EventExtend
		}
		e.emit(kind, c.Ban, now)
	}
	if len(elems) > 0 {
		if err := e.sets.Add(ctx, elems); err != nil {
			return changes, fmt.Errorf("add %d bans to the kernel sets (recorded; the next reconcile retries): %w", len(elems), err)
		}
	}
	return changes, nil
}

// BanManual is the operator's ban of p for d (0: until unbanned).
func (e *Enforcer) BanManual(ctx context.Context, p netip.Prefix, d time.Duration, reason string) (Change, error) {
	if d < 0 {
		return Change{}, errors.New("ban: negative duration")
	}
	now := e.now()
	b := Ban{Prefix: p, Reason: reason, Origin: OriginManual, Created: now}
	if d > 0 {
		b.Expires = now.Add(d)
	}
	changes, err := e.Apply(ctx, []Ban{b})
	if len(changes) == 0 {
		if err == nil {
			// An existing ban already lasts longer: report it.
			if q, ok := CanonicalPrefix(p); ok {
				err = fmt.Errorf("ban %s: already banned for longer", q)
			} else {
				err = fmt.Errorf("ban: invalid prefix %v", p)
			}
		}
		return Change{}, err
	}
	return changes[0], err
}

// Unban lifts the active bans overlapping p (an address lifts the networks
// containing it) in the store, then in the kernel, and returns them.
func (e *Enforcer) Unban(ctx context.Context, p netip.Prefix) ([]Ban, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	removed, err := e.store.Unban(ctx, p)
	if err != nil || len(removed) == 0 {
		return removed, err
	}
	now := e.now()
	prefixes := make([]netip.Prefix, 0, len(removed))
	for _, b := range removed {
		e.emit(EventUnban, b, now)
		// Where the sets widen, another ban may still need the element.
		if k := e.kernel(b.Prefix); k == b.Prefix || !e.stillNeeded(k) {
			prefixes = append(prefixes, b.Prefix)
		}
	}
	if len(prefixes) == 0 {
		return removed, nil
	}
	if err := e.sets.Delete(ctx, prefixes); err != nil {
		return removed, fmt.Errorf("remove %d bans from the kernel sets (forgotten; the next reconcile retries): %w", len(prefixes), err)
	}
	return removed, nil
}

// elementTimeout is the timeout of b's kernel element: b's time left or,
// where the sets widen b, the longest time left of the bans sharing the
// element. ok is false when b has ended.
func (e *Enforcer) elementTimeout(b Ban, now time.Time) (time.Duration, bool) {
	d, ok := b.Remaining(now)
	k := e.kernel(b.Prefix)
	if !ok || d == 0 || k == b.Prefix {
		return d, ok
	}
	for _, q := range e.store.overlappingBans(k) {
		if e.kernel(q.Prefix) != k {
			continue
		}
		switch qd, qok := q.Remaining(now); {
		case !qok:
		case qd == 0:
			return 0, true
		default:
			d = max(d, qd)
		}
	}
	return d, true
}

// stillNeeded reports whether an active ban maps to kernel element k.
func (e *Enforcer) stillNeeded(k netip.Prefix) bool {
	for _, q := range e.store.overlappingBans(k) {
		if e.kernel(q.Prefix) == k {
			return true
		}
	}
	return false
}

// Expire forgets the bans that ended. The kernel drops their elements by
// itself when their timeouts run out.
func (e *Enforcer) Expire(ctx context.Context) ([]Ban, error) {
	now := e.now()
	removed, err := e.store.Expire(ctx, now)
	for _, b := range removed {
		e.emit(EventExpire, b, now)
	}
	return removed, err
}

// Reconciled counts what Reconcile changed in the kernel.
type Reconciled struct {
	// Added are stored bans missing from the kernel (after a reboot, or a
	// failed Add).
	Added int `json:"added"`
	// Refreshed are elements whose kernel timeout disagreed with the
	// stored expiry by more than refreshSlack.
	Refreshed int `json:"refreshed"`
	// Removed are kernel elements with no active stored ban: unbanned or
	// expired while moat was down, or added by hand.
	Removed int `json:"removed"`
	// Expired are stored bans that had ended.
	Expired int `json:"expired"`
}

// refreshSlack is how far a kernel timeout may drift from the stored
// expiry before Reconcile corrects it.
const refreshSlack = 5 * time.Second

// Reconcile makes the kernel sets match the store, which wins: it is the
// durable record of what was decided, the sets a cache of it that a reboot
// or `nft flush` loses. It expires ended bans, adds stored bans the kernel
// lacks, corrects timeouts, and removes elements the store does not know.
// A stored ban inside a wider one the kernel keeps at least as long needs
// no element of its own (interval sets cannot hold both). The daemon runs
// it on start and periodically.
func (e *Enforcer) Reconcile(ctx context.Context) (Reconciled, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r Reconciled
	expired, err := e.Expire(ctx)
	if err != nil {
		return r, fmt.Errorf("reconcile: %w", err)
	}
	r.Expired = len(expired)
	active, err := e.store.Active(ctx)
	if err != nil {
		return r, fmt.Errorf("reconcile: %w", err)
	}
	kernel, err := e.sets.List(ctx)
	if err != nil {
		return r, fmt.Errorf("reconcile: list kernel ban sets: %w", err)
	}
	now := e.now()
	// What the kernel should hold: each stored ban's element, with the
	// longest time any ban needs it for (0: forever).
	want := make(map[netip.Prefix]time.Duration, len(active))
	for _, b := range active {
		d, ok := b.Remaining(now)
		if !ok {
			continue
		}
		p, ok := CanonicalPrefix(e.kernel(b.Prefix))
		if !ok {
			continue
		}
		if old, seen := want[p]; !seen || (old != 0 && (d == 0 || d > old)) {
			want[p] = d
		}
	}
	var wantSet prefixSet // by expiry, to find elements a wider one covers
	for p, d := range want {
		wantSet.set(p, expiryNano(now, d))
	}
	have := make(map[netip.Prefix]time.Duration, len(kernel))
	var remove []netip.Prefix
	for _, el := range kernel {
		p, ok := CanonicalPrefix(el.Prefix)
		if !ok {
			continue
		}
		if _, wanted := want[p]; !wanted {
			remove = append(remove, el.Prefix)
			continue
		}
		have[p] = el.Timeout
	}
	var add []SetElement
	for p, d := range want {
		h, there := have[p]
		switch {
		case there && timeoutsMatch(h, d):
			continue
		case there:
			r.Refreshed++
		default:
			if exp, ok := wantSet.covering(p); ok && (exp == 0 || d != 0 && exp >= expiryNano(now, d)) {
				continue
			}
			r.Added++
		}
		add = append(add, SetElement{Prefix: p, Timeout: d})
	}
	var errs []error
	if len(remove) > 0 {
		if err := e.sets.Delete(ctx, remove); err != nil {
			errs = append(errs, fmt.Errorf("remove %d unknown elements: %w", len(remove), err))
		} else {
			r.Removed = len(remove)
		}
	}
	if len(add) > 0 {
		if err := e.sets.Add(ctx, add); err != nil {
			errs = append(errs, fmt.Errorf("add %d stored bans: %w", len(add), err))
			r.Added, r.Refreshed = 0, 0
		}
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("reconcile kernel ban sets: %w", err)
	}
	return r, nil
}

// timeoutsMatch reports whether a kernel timeout have matches a wanted
// one within refreshSlack, 0 (forever) only 0.
func timeoutsMatch(have, want time.Duration) bool {
	if (have == 0) != (want == 0) {
		return false
	}
	return have >= want-refreshSlack && have <= want+refreshSlack
}

// expiryNano is when a timeout from now ends, 0 for none.
func expiryNano(now time.Time, d time.Duration) int64 {
	if d == 0 {
		return 0
	}
	return now.Add(d).UnixNano()
}
