package ban

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Log receives what Reconcile adopts; nil discards.
	Log *slog.Logger
	// KernelGrace lengthens every kernel timeout; Expire then deletes
	// the elements itself when their bans end. The kernel's own expiry is
	// a safety net for when moat is not running: an interval set keeps a
	// timed-out interval's remains until its garbage collection runs, and
	// those can cut short or refuse a new interval across them. 0 leaves
	// expiry to the kernel alone.
	KernelGrace time.Duration
}

// DefaultKernelGrace is the daemon's KernelGrace.
const DefaultKernelGrace = time.Minute

// Enforcer applies the store's bans to the kernel sets. It is safe for
// concurrent use; kernel changes are serialized.
type Enforcer struct {
	store   *Store
	sets    Sets
	now     func() time.Time
	events  chan Event
	dropped atomic.Uint64
	kernel  func(netip.Prefix) netip.Prefix
	log     *slog.Logger
	grace   time.Duration
	mu      sync.Mutex // orders kernel changes and their store writes
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
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Enforcer{store: store, sets: sets, now: opts.Now, events: make(chan Event, opts.Events), kernel: opts.KernelPrefix, log: opts.Log, grace: max(opts.KernelGrace, 0)}
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

// ErrKernel marks an error of the kernel sets alone: the store has the
// decision (and the next reconcile retries the kernel).
var ErrKernel = errors.New("kernel ban sets not updated")

// Apply puts bans into the kernel sets first, with their remaining time
// as timeout (that is what protects the host), then records them in the
// store in the same call. A store that cannot write keeps them in memory
// and writes them later (Store.Health says so); a kernel that refuses
// leaves them recorded for the next Reconcile. It returns the changes
// made.
func (e *Enforcer) Apply(ctx context.Context, bans []Ban) ([]Change, error) {
	for _, b := range bans {
		if _, ok := CanonicalPrefix(b.Prefix); !ok {
			return nil, fmt.Errorf("ban: invalid prefix %v", b.Prefix)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var elems []SetElement
	for _, b := range e.store.plan(bans, now) {
		if d, ok := e.elementTimeout(b, now); ok {
			elems = append(elems, SetElement{Prefix: b.Prefix, Timeout: d})
		}
	}
	var kerr error
	if len(elems) > 0 {
		kerr = e.sets.Add(ctx, elems)
	}
	changes, err := e.store.Ban(ctx, bans)
	if err != nil {
		// The caller gave up (or the store closed); what reached the
		// kernel is adopted by the next reconcile.
		return nil, errors.Join(err, kerr)
	}
	for _, c := range changes {
		kind := EventBan
		if c.Extended {
			kind = EventExtend
		}
		e.emit(kind, c.Ban, now)
	}
	if kerr != nil {
		return changes, fmt.Errorf("%w: add %d bans (recorded; the next reconcile retries): %w", ErrKernel, len(elems), kerr)
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
// containing it) in the store, leaving a tombstone so that no reconcile
// adopts them back, then in the kernel, and returns them. An error
// wrapping ErrKernel means the store's part succeeded.
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
		return removed, fmt.Errorf("%w: remove %d bans (lifted in the store; the next reconcile retries): %w", ErrKernel, len(prefixes), err)
	}
	if err := e.uncover(ctx, removed); err != nil {
		return removed, fmt.Errorf("%w: %w", ErrKernel, err)
	}
	return removed, nil
}

// uncover puts back the bans still in force that overlap ended ones: an
// interval set cannot hold a ban inside a wider one, so the narrower had
// no element of its own while the wider stood.
func (e *Enforcer) uncover(ctx context.Context, ended []Ban) error {
	now := e.now()
	seen := map[netip.Prefix]bool{}
	var elems []SetElement
	for _, r := range ended {
		for _, q := range e.store.overlappingBans(r.Prefix) {
			k := e.kernel(q.Prefix)
			if seen[k] {
				continue
			}
			seen[k] = true
			if d, ok := e.elementTimeout(q, now); ok {
				elems = append(elems, SetElement{Prefix: q.Prefix, Timeout: d})
			}
		}
	}
	if len(elems) == 0 {
		return nil
	}
	if err := e.sets.Add(ctx, elems); err != nil {
		return fmt.Errorf("put back %d bans a lifted one covered: %w", len(elems), err)
	}
	return nil
}

// elementTimeout is the timeout of b's kernel element: b's time left or,
// where the sets widen b, the longest time left of the bans sharing the
// element. ok is false when b has ended.
func (e *Enforcer) elementTimeout(b Ban, now time.Time) (time.Duration, bool) {
	d, ok := e.remaining(b, now)
	k := e.kernel(b.Prefix)
	if !ok || d == 0 || k == b.Prefix {
		return d, ok
	}
	for _, q := range e.store.overlappingBans(k) {
		if e.kernel(q.Prefix) != k {
			continue
		}
		switch qd, qok := e.remaining(q, now); {
		case !qok:
		case qd == 0:
			return 0, true
		default:
			d = max(d, qd)
		}
	}
	return d, true
}

// remaining is b's time left as a kernel timeout: with the grace.
func (e *Enforcer) remaining(b Ban, now time.Time) (time.Duration, bool) {
	d, ok := b.Remaining(now)
	if ok && d > 0 {
		d += e.grace
	}
	return d, ok
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

// Expire forgets the bans that ended and puts back the narrower bans
// still in force that they covered. The kernel drops the ended elements by
// itself when their timeouts run out.
func (e *Enforcer) Expire(ctx context.Context) ([]Ban, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.expire(ctx)
}

func (e *Enforcer) expire(ctx context.Context) ([]Ban, error) {
	now := e.now()
	removed, err := e.store.Expire(ctx, now)
	for _, b := range removed {
		e.emit(EventExpire, b, now)
	}
	if err != nil || len(removed) == 0 {
		return removed, err
	}
	if e.grace > 0 {
		var gone []netip.Prefix
		for _, b := range removed {
			if k := e.kernel(b.Prefix); k == b.Prefix || !e.stillNeeded(k) {
				gone = append(gone, b.Prefix)
			}
		}
		if len(gone) > 0 {
			if derr := e.sets.Delete(ctx, gone); derr != nil {
				return removed, fmt.Errorf("%w: remove %d ended bans (the kernel's timeouts end them %s later): %w", ErrKernel, len(gone), e.grace, derr)
			}
		}
	}
	if uerr := e.uncover(ctx, removed); uerr != nil {
		err = fmt.Errorf("%w: %w", ErrKernel, uerr)
	}
	return removed, err
}

// Reconciled counts what Reconcile changed in the kernel and the store.
type Reconciled struct {
	// Added are stored bans missing from the kernel (after a reboot, or a
	// failed Add).
	Added int `json:"added"`
	// Refreshed are elements whose kernel timeout disagreed with the
	// stored expiry by more than refreshSlack.
	Refreshed int `json:"refreshed"`
	// Adopted are kernel elements the store did not know: recorded as
	// bans with their remaining kernel timeout, never lifted.
	Adopted int `json:"adopted"`
	// Removed are kernel elements of bans the store holds a tombstone
	// for: unbanned or expired while their element stayed.
	Removed int `json:"removed"`
	// Expired are stored bans that had ended.
	Expired int `json:"expired"`
}

// refreshSlack is how far a kernel timeout may drift from the stored
// expiry before Reconcile corrects it.
const refreshSlack = 5 * time.Second

// Reconcile makes the kernel sets and the store agree, as a union: a ban
// in either is kept. It expires ended bans, adds stored bans the kernel
// lacks (a reboot or `nft flush` loses the sets), corrects timeouts, and
// adopts kernel elements the store does not know (a store lost, emptied
// or replaced must never lift a ban) with their remaining kernel timeout.
// Only an element whose ban the store ended (a tombstone: an unban, an
// expiry) is removed. A stored ban inside a wider one the kernel keeps at
// least as long needs no element of its own (interval sets cannot hold
// both). The daemon runs it on start and periodically.
func (e *Enforcer) Reconcile(ctx context.Context) (Reconciled, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r Reconciled
	expired, err := e.expire(ctx)
	if err != nil && !errors.Is(err, ErrKernel) {
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
		d, ok := e.remaining(b, now)
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
	inKernel := make(map[netip.Prefix]bool, len(kernel))
	var remove []netip.Prefix
	var adopt []Ban
	for _, el := range kernel {
		p, ok := CanonicalPrefix(el.Prefix)
		if !ok {
			continue
		}
		inKernel[p] = true
		switch _, wanted := want[p]; {
		case wanted:
			have[p] = el.Timeout
		case e.store.Tombstoned(p):
			remove = append(remove, el.Prefix)
		default:
			if _, covered := wantSet.covering(p); covered {
				// A piece of a wanted wider element (a range the kernel
				// merged or a damaged encoding): adding the wider one
				// below replaces it.
				continue
			}
			b := Ban{Prefix: p, Origin: OriginKernel, Reason: "found in the kernel ban set, unknown to the store", Created: now}
			if el.Timeout > 0 {
				b.Expires = now.Add(el.Timeout)
			}
			adopt = append(adopt, b)
		}
	}
	if len(adopt) > 0 {
		if _, err := e.store.Ban(ctx, adopt); err != nil {
			return r, fmt.Errorf("reconcile: adopt %d kernel bans: %w", len(adopt), err)
		}
		r.Adopted = len(adopt)
		if len(active) == 0 {
			e.log.Error("the ban store knew none of the bans in the kernel sets (a new, emptied or replaced moat.db?): adopted them all, none lifted",
				"adopted", len(adopt))
		} else {
			e.log.Warn("adopted kernel bans the store did not know", "adopted", len(adopt))
		}
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
			errs = append(errs, fmt.Errorf("remove %d lifted bans: %w", len(remove), err))
		} else {
			r.Removed = len(remove)
			for _, p := range remove {
				delete(inKernel, p)
			}
		}
	}
	if len(add) > 0 {
		if err := e.sets.Add(ctx, add); err != nil {
			errs = append(errs, fmt.Errorf("add %d stored bans: %w", len(add), err))
			r.Added, r.Refreshed = 0, 0
		}
	}
	if len(errs) == 0 {
		if err := e.store.ForgetTombstones(ctx, func(p netip.Prefix) bool { return inKernel[p] }); err != nil {
			errs = append(errs, err)
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
