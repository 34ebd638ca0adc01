package jail

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/moat-sh/moat/internal/prefix"
)

// DefaultMaxTracked is the default cap on sources a jail tracks.
const DefaultMaxTracked = 1 << 20

// DefaultIPv6Prefix is the default prefix IPv6 sources are counted and
// banned by: a /64 is what one customer or one host usually gets, so
// banning a /128 only makes an attacker pick the next address.
const DefaultIPv6Prefix = 64

// maxAhead is how far past the clock a failure's timestamp may be.
const maxAhead = time.Minute

// maxMaxRetry bounds maxretry so a slot's count fits and its memory stays
// small (blocks of maxretry-2 times per source with two or more failures).
const maxMaxRetry = 1000

// History tells how often a prefix was banned before, for incremental
// bantime. internal/ban's Store implements it.
type History interface {
	PreviousBans(p netip.Prefix) int
}

// Banned reports whether an address is banned right now. Failures of a
// banned source (lines still in flight when its ban landed) count nothing,
// so they cannot trigger a second decision and a longer bantime.
// internal/ban's Store implements it.
type Banned interface {
	Contains(a netip.Addr) bool
}

// Options are a jail engine's parameters that come from outside its jail
// config: the daemon computes them from the whole moat.yaml and the host.
type Options struct {
	// IPv6Prefix is the prefix length IPv6 sources are counted and banned
	// by, from firewall.ban.ipv6_prefix (0 means DefaultIPv6Prefix).
	IPv6Prefix int
	// Ignore lists the sources never banned: guard.ignore, the host's own
	// addresses, the VPN ranges, the admin sources and the operator's
	// current SSH client address. Failures from them are counted apart.
	// Lookups scan the list: it is meant for tens of entries.
	Ignore []netip.Prefix
	// MaxTracked caps the sources tracked (0 means DefaultMaxTracked).
	MaxTracked int
	// History gives the ban history for incremental bantime; nil means no
	// previous bans.
	History History
	// Banned, when set, drops failures from sources already banned.
	Banned Banned
	// Now is the clock for failures without a timestamp; nil is time.Now.
	Now func() time.Time
}

// Event is one failure as the jail sees it (internal/filter's Failure,
// reduced to what counting needs).
type Event struct {
	// Addr is the source; the zero Addr marks a failure without one
	// (unattributable: counted, never banned).
	Addr netip.Addr
	// Time is the failure's own timestamp, so replays count as live runs
	// did; the zero Time means now.
	Time time.Time
	// Attempts is how many failures the event stands for (a "Too many
	// authentication failures" line, a repeated message); below 1 means 1.
	Attempts int
}

// Decision is a jail's verdict: ban Prefix for BanTime.
type Decision struct {
	Jail string
	// Prefix is the source widened to the ban prefix (/32 for IPv4, the
	// configured IPv6 prefix), or the address alone where the widened
	// prefix would cover an ignored source.
	Prefix netip.Prefix
	// Addr is the address of the failure that triggered the decision.
	Addr netip.Addr
	// Failures is the number counted in the window, this one included.
	Failures int
	// BanTime is the jail's bantime grown by the prefix's history.
	BanTime time.Duration
	// At is the triggering failure's time; the ban runs from there.
	At time.Time
	// Offence is 1 for a first ban, 2 for the second, and so on.
	Offence int
}

// Stats are a jail's counters since it started.
type Stats struct {
	// Failures counts attributable failure events looked at.
	Failures uint64 `json:"failures"`
	// Ignored counts failures from ignored sources.
	Ignored uint64 `json:"ignored"`
	// Unattributable counts failures without a source address.
	Unattributable uint64 `json:"unattributable"`
	// WhileBanned counts failures from sources already banned.
	WhileBanned uint64 `json:"while_banned"`
	// Stale counts failures older than the window when they arrived.
	Stale uint64 `json:"stale"`
	// Ahead counts failures dated more than a minute ahead of the clock,
	// counted as of then.
	Ahead uint64 `json:"ahead"`
	// Decisions counts bans decided.
	Decisions uint64 `json:"decisions"`
	// Expired counts sources forgotten because their window passed.
	Expired uint64 `json:"expired"`
	// Evicted counts sources pushed out at the cap; Dropped counts new
	// sources not tracked because the table was full of sources with more
	// failures. Either growing means the jail is under a spray.
	Evicted uint64 `json:"evicted"`
	Dropped uint64 `json:"dropped"`
	// Tracked is the number of sources with failures in their window, of
	// at most MaxTracked.
	Tracked    int `json:"tracked"`
	MaxTracked int `json:"max_tracked"`
}

// Engine counts one jail's failures per source in a sliding window of
// findtime and decides bans. It is safe for concurrent use; each call holds
// one mutex briefly, so a batch (ObserveAll) is cheaper than many calls.
type Engine struct {
	mu     sync.Mutex
	name   string
	cfg    Jail
	opts   Options
	ignore []netip.Prefix
	t      *table
	stats  Stats
	future int64 // unix ns: failures dated later are counted at this time
	// decided holds the prefixes decided in the ObserveAll running.
	decided map[netip.Prefix]struct{}
}

// New returns the engine for jail name, with the config's unset fields
// defaulted.
func New(name string, cfg Jail, opts Options) (*Engine, error) {
	e := &Engine{name: name}
	if err := e.configure(cfg, opts); err != nil {
		return nil, err
	}
	e.t = newTable(e.cfg.MaxRetry, int64(e.cfg.FindTime), e.opts.MaxTracked)
	return e, nil
}

func (e *Engine) configure(cfg Jail, opts Options) error {
	cfg = JailDefaults(e.name, cfg)
	if cfg.MaxRetry < 1 || cfg.MaxRetry > maxMaxRetry {
		return fmt.Errorf("jail %s: maxretry %d: expected 1 to %d", e.name, cfg.MaxRetry, maxMaxRetry)
	}
	if cfg.FindTime <= 0 || cfg.BanTime <= 0 {
		return fmt.Errorf("jail %s: findtime and bantime must be positive", e.name)
	}
	if opts.IPv6Prefix == 0 {
		opts.IPv6Prefix = DefaultIPv6Prefix
	}
	if opts.IPv6Prefix < 1 || opts.IPv6Prefix > 128 {
		return fmt.Errorf("jail %s: ipv6 prefix /%d: expected 1 to 128", e.name, opts.IPv6Prefix)
	}
	if opts.MaxTracked == 0 {
		opts.MaxTracked = DefaultMaxTracked
	}
	if opts.MaxTracked < 1 {
		return errors.New("jail " + e.name + ": max_tracked must be positive")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ignore := make([]netip.Prefix, 0, len(opts.Ignore))
	for _, p := range opts.Ignore {
		if p.IsValid() {
			ignore = append(ignore, canonicalPrefix(p))
		}
	}
	e.cfg, e.opts, e.ignore = cfg, opts, ignore
	e.future = 0
	return nil
}

// Name returns the jail's name.
func (e *Engine) Name() string { return e.name }

// Config returns the jail config in force, defaults filled in.
func (e *Engine) Config() Jail {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg
}

// Observe counts one failure and returns the decision it triggers, if any.
func (e *Engine) Observe(addr netip.Addr, at time.Time, attempts int) (Decision, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observe(Event{Addr: addr, Time: at, Attempts: attempts})
}

// ObserveAll counts a batch of failures in order under one lock and
// appends the decisions they trigger to dst.
//
// The batch's decisions reach opts.Banned only after it returns: until
// then a source decided in the batch counts as banned, so its later
// failures in the same batch are failures while banned, not a second
// decision (as if the ban had been enforced at once).
func (e *Engine) ObserveAll(evs []Event, dst []Decision) []Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.decided)
	for _, ev := range evs {
		if d, ok := e.observe(ev); ok {
			dst = append(dst, d)
			if e.decided == nil {
				e.decided = map[netip.Prefix]struct{}{}
			}
			e.decided[d.Prefix] = struct{}{}
		}
	}
	clear(e.decided)
	return dst
}

// decidedNow reports whether addr falls in a decision of the batch being
// observed.
func (e *Engine) decidedNow(addr netip.Addr) bool {
	if len(e.decided) == 0 {
		return false
	}
	_, wide := e.decided[e.widen(addr)]
	_, alone := e.decided[netip.PrefixFrom(addr, addr.BitLen())]
	return wide || alone
}

func (e *Engine) observe(ev Event) (Decision, bool) {
	if !ev.Addr.IsValid() {
		e.stats.Unattributable++
		return Decision{}, false
	}
	addr := ev.Addr.Unmap().WithZone("")
	if e.ignored(addr) {
		e.stats.Ignored++
		return Decision{}, false
	}
	e.stats.Failures++
	if e.decidedNow(addr) || e.opts.Banned != nil && e.opts.Banned.Contains(addr) {
		e.stats.WhileBanned++
		return Decision{}, false
	}
	at := ev.Time
	if at.IsZero() {
		at = e.opts.Now()
	} else if ns := at.UnixNano(); ns > e.future {
		// A timestamp ahead of the clock (a zone mix-up, a bad year
		// guess) must not carry the window's clock into the future, where
		// every real failure would look stale. The clock is read only
		// when a timestamp passes the last bound: about once a minute.
		e.future = e.opts.Now().Add(maxAhead).UnixNano()
		if ns > e.future {
			at = time.Unix(0, e.future)
			e.stats.Ahead++
		}
	}
	attempts := max(ev.Attempts, 1)
	wide := e.widen(addr)
	out, n := e.t.observe(keyOf(wide.Addr()), at.UnixNano(), min(attempts, e.cfg.MaxRetry))
	switch out {
	case stale:
		e.stats.Stale++
	case banned:
		if attempts > e.cfg.MaxRetry {
			n += attempts - e.cfg.MaxRetry // report what the event claimed
		}
		return e.decide(addr, wide, at, n), true
	}
	return Decision{}, false
}

// decide builds the decision for a source that reached maxretry.
func (e *Engine) decide(addr netip.Addr, wide netip.Prefix, at time.Time, failures int) Decision {
	p := wide
	if p.Bits() < addr.BitLen() && e.overlapsIgnored(p) {
		// Banning the whole prefix would lock out an ignored neighbour.
		p = netip.PrefixFrom(addr, addr.BitLen())
	}
	prev := 0
	if e.opts.History != nil {
		prev = max(e.opts.History.PreviousBans(p), 0)
	}
	e.stats.Decisions++
	return Decision{
		Jail:     e.name,
		Prefix:   p,
		Addr:     addr,
		Failures: failures,
		BanTime:  e.cfg.BanTimeFor(prev),
		At:       at,
		Offence:  prev + 1,
	}
}

// Failures returns the failures counted for addr's source in its window.
func (e *Engine) Failures(addr netip.Addr) int {
	if !addr.IsValid() {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.t.lookup(keyOf(e.widen(addr.Unmap().WithZone("")).Addr()))
}

// Sweep forgets every source whose window has passed at now and returns
// how many. Observe expires sources as it goes; the daemon calls Sweep
// periodically so memory is returned when failures stop arriving.
func (e *Engine) Sweep(now time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.t.sweep(now.UnixNano())
}

// Stats returns the jail's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Expired, s.Evicted, s.Dropped = e.t.expired, e.t.evicted, e.t.dropped
	s.Tracked, s.MaxTracked = e.t.len(), e.t.capacity
	return s
}

// Reconfigure applies a new jail config and options (SIGHUP) keeping the
// failures counted so far. Counts are re-keyed when the IPv6 prefix
// changes, sources now ignored are forgotten, and a source at or above a
// lowered maxretry keeps its newest maxretry-1 failures, so its next
// failure bans it. On error nothing changes.
func (e *Engine) Reconfigure(cfg Jail, opts Options) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	oldCfg, oldOpts, oldIgnore := e.cfg, e.opts, e.ignore
	if err := e.configure(cfg, opts); err != nil {
		e.cfg, e.opts, e.ignore = oldCfg, oldOpts, oldIgnore
		return err
	}
	u := newTable(e.cfg.MaxRetry, int64(e.cfg.FindTime), e.opts.MaxTracked)
	u.clock, u.expired, u.evicted, u.dropped = e.t.clock, e.t.expired, e.t.evicted, e.t.dropped
	keep := e.cfg.MaxRetry - 1
	e.t.each(func(k key, times []int64) {
		a := netip.AddrFrom16(k).Unmap()
		if e.ignored(a) {
			return
		}
		nk := keyOf(e.widen(a).Addr())
		if len(times) > keep {
			times = times[len(times)-keep:]
		}
		for _, at := range times {
			// Failures observed one by one, oldest first, rebuild the same
			// window; merged sources (a shorter IPv6 prefix) may reach
			// the new maxretry, and then keep its newest maxretry-1.
			if out, _ := u.observe(nk, at, 1); out == banned {
				u.observe(nk, at, keep)
			}
		}
	})
	e.t = u
	return nil
}

func (e *Engine) ignored(a netip.Addr) bool {
	for _, p := range e.ignore {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (e *Engine) overlapsIgnored(p netip.Prefix) bool {
	for _, q := range e.ignore {
		if q.Overlaps(p) {
			return true
		}
	}
	return false
}

// widen returns the prefix a source is counted and banned by.
func (e *Engine) widen(a netip.Addr) netip.Prefix { return prefix.Widen(a, e.opts.IPv6Prefix) }

func keyOf(a netip.Addr) key { return a.As16() }

// canonicalPrefix masks p and writes IPv4-mapped prefixes as IPv4, so that
// Contains matches the unmapped addresses Observe looks up; a mapped
// prefix wider than IPv4 stays as it is.
func canonicalPrefix(p netip.Prefix) netip.Prefix {
	if c, ok := prefix.Canonical(p); ok {
		return c
	}
	return p.Masked()
}
