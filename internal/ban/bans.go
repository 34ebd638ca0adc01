package ban

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Origin says who decided a ban.
type Origin string

const (
	// OriginAuto is a jail's decision.
	OriginAuto Origin = "auto"
	// OriginManual is the operator's (moat ban).
	OriginManual Origin = "manual"
	// OriginKernel is a ban found in the kernel sets that the store did
	// not know (a lost or replaced store), adopted by reconcile.
	OriginKernel Origin = "kernel"
)

// Ban is one ban of a prefix, active or in the history.
type Ban struct {
	// Prefix is the banned network: an address is a /32 or /128.
	Prefix netip.Prefix `json:"prefix"`
	// Jail names the jail that decided it; empty for a manual ban.
	Jail   string `json:"jail,omitempty"`
	Reason string `json:"reason,omitempty"`
	Origin Origin `json:"origin"`
	// Created is when the ban started; Expires when it ends (the zero
	// Time: never).
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	// Failures is the count that triggered it (0 for a manual ban).
	Failures int `json:"failures,omitempty"`
	// Offence is 1 for the prefix's first ban, 2 for its second, and so
	// on; Store.Ban counts it from the history when left 0.
	Offence int `json:"offence"`
}

// Permanent reports whether the ban never expires.
func (b Ban) Permanent() bool { return b.Expires.IsZero() }

// Left says how long the ban has left at now, for people: "permanent",
// "ended", or a duration rounded to the second with " left".
func (b Ban) Left(now time.Time) string {
	if b.Permanent() {
		return "permanent"
	}
	d, ok := b.Remaining(now)
	if !ok {
		return "ended"
	}
	return max(d.Round(time.Second), time.Second).String() + " left"
}

// Line renders the ban on one line, for `moat bans` and `moat ban`.
func (b Ban) Line(now time.Time) string {
	who := b.Jail
	if who == "" {
		who = string(b.Origin)
	} else if h, ok := b.Origin.FleetHost(); ok {
		who += "@" + h // decided by another host of the fleet
	}
	return strings.TrimSpace(fmt.Sprintf("%-20s %-10s %-14s offence %d  %s", b.Prefix, who, b.Left(now), b.Offence, b.Reason))
}

// Remaining is the ban's time left at now: 0 once expired, and 0 with ok
// true for a permanent ban.
func (b Ban) Remaining(now time.Time) (d time.Duration, ok bool) {
	if b.Permanent() {
		return 0, true
	}
	if d = b.Expires.Sub(now); d <= 0 {
		return 0, false
	}
	return d, true
}

// Change is the effect of one ban on the store.
type Change struct {
	// Ban is the ban as stored now.
	Ban Ban
	// Extended is set when the prefix was already banned and the new ban
	// only moved its expiry later.
	Extended bool
}

// CanonicalPrefix returns p masked, with an IPv4-mapped prefix written as
// IPv4, and reports whether p is valid.
func CanonicalPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return netip.Prefix{}, false
		}
		a, bits = a.Unmap(), bits-96
	}
	q, err := a.Prefix(bits)
	return q, err == nil
}

// Ban records bans in one transaction and returns the changes made. A ban
// of a prefix not banned (or whose ban expired) is a new offence: it is
// recorded in the history and replaces any expired row. A ban of a prefix
// already banned only extends it, when it ends later, and adds no history;
// a ban that ends sooner than the one in force changes nothing and is left
// out of the result.
func (s *Store) Ban(ctx context.Context, bans []Ban) ([]Change, error) {
	bans = slices.Clone(bans)
	for i := range bans {
		p, ok := CanonicalPrefix(bans[i].Prefix)
		if !ok {
			return nil, fmt.Errorf("ban: invalid prefix %v", bans[i].Prefix)
		}
		bans[i].Prefix = p
		if bans[i].Origin == "" {
			bans[i].Origin = OriginAuto
		}
		if bans[i].Created.IsZero() {
			bans[i].Created = s.now()
		}
	}
	if s.pendingLen() > 0 {
		// Writes are failing: keep order by queueing behind them.
		return s.banInMemory(bans), nil
	}
	var changes []Change
	newCount := map[prefixKey]int{}
	o := &op{}
	o.run = func(ctx context.Context) error {
		changes = changes[:0]
		clear(newCount)
		now := s.now().UnixMilli()
		for _, b := range bans {
			c, isNew, err := s.ban(ctx, b, now, newCount)
			if err != nil {
				return err
			}
			if c != nil {
				changes = append(changes, *c)
				if isNew {
					newCount[keyOf(c.Ban.Prefix)]++
				}
			}
		}
		return nil
	}
	o.apply = func() {
		for _, c := range changes {
			s.active.set(c.Ban.Prefix, msToNano(timeToMs(c.Ban.Expires)))
			delete(s.tombs, c.Ban.Prefix)
		}
		for k, n := range newCount {
			s.history[k] += uint32(n)
		}
	}
	if err := s.do(ctx, o); err != nil {
		if !isStorageError(err) {
			return nil, fmt.Errorf("store bans: %w", err)
		}
		// The decision stands: keep it in memory and write it when the
		// disk allows (see Health).
		s.failed(err)
		return s.banInMemory(bans), nil
	}
	return changes, nil
}

// ban writes one ban in the writer's transaction. inBatch counts the new
// bans of this call so far, for offences within one call.
func (s *Store) ban(ctx context.Context, b Ban, now int64, inBatch map[prefixKey]int) (c *Change, isNew bool, err error) {
	key := b.Prefix.String()
	if b.Offence <= 0 {
		// The writer alone changes history, so memory is current here.
		s.mu.RLock()
		b.Offence = int(s.history[keyOf(b.Prefix)]) + inBatch[keyOf(b.Prefix)] + 1
		s.mu.RUnlock()
	}
	exp := timeToMs(b.Expires)
	args := []any{key, b.Jail, b.Reason, string(b.Origin), timeToMs(b.Created), exp, b.Failures, b.Offence}
	// Most bans are of prefixes not banned: try the insert first.
	res, err := s.stmts.insert.ExecContext(ctx, args...)
	if err != nil {
		return nil, false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, false, err
	} else if n == 0 {
		old, err := scanBan(s.stmts.get.QueryRowContext(ctx, key))
		if err != nil {
			return nil, false, err
		}
		oldExp := timeToMs(old.Expires)
		switch {
		case oldExp != 0 && oldExp <= now: // ended, not yet expired: a new offence
			if _, err := s.stmts.put.ExecContext(ctx, args...); err != nil {
				return nil, false, err
			}
		case oldExp != 0 && (exp == 0 || exp > oldExp):
			if _, err := s.stmts.extend.ExecContext(ctx, b.Jail, b.Reason, string(b.Origin), exp, b.Failures, key); err != nil {
				return nil, false, err
			}
			old.Jail, old.Reason, old.Origin, old.Expires, old.Failures = b.Jail, b.Reason, b.Origin, b.Expires, b.Failures
			return &Change{Ban: old, Extended: true}, false, nil
		default: // the ban in force lasts at least as long
			return nil, false, nil
		}
	}
	if _, err := s.stmts.record.ExecContext(ctx, args...); err != nil {
		return nil, false, err
	}
	if _, err := s.stmts.untomb.ExecContext(ctx, key); err != nil {
		return nil, false, err
	}
	return &Change{Ban: b}, true, nil
}

// Unban removes the active bans overlapping p (an address unbans the
// networks that contain it) and returns them.
func (s *Store) Unban(ctx context.Context, p netip.Prefix) ([]Ban, error) {
	p, ok := CanonicalPrefix(p)
	if !ok {
		return nil, errors.New("unban: invalid prefix")
	}
	if s.pendingLen() > 0 {
		return s.unbanInMemory(p, tombUnban), nil
	}
	var removed []Ban
	o := &op{}
	o.run = func(ctx context.Context) error {
		removed = removed[:0]
		s.mu.RLock()
		cands := s.active.overlapping(p)
		s.mu.RUnlock()
		at := s.now().UnixMilli()
		for _, q := range cands {
			b, err := scanBan(s.stmts.del.QueryRowContext(ctx, q.String()))
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := s.stmts.tomb.ExecContext(ctx, q.String(), at, tombUnban); err != nil {
				return err
			}
			removed = append(removed, b)
		}
		return nil
	}
	o.apply = func() {
		for _, b := range removed {
			s.active.delete(b.Prefix)
			s.tombs[b.Prefix] = struct{}{}
		}
	}
	if err := s.do(ctx, o); err != nil {
		if !isStorageError(err) {
			return nil, fmt.Errorf("unban %s: %w", p, err)
		}
		s.failed(err)
		return s.unbanInMemory(p, tombUnban), nil
	}
	return removed, nil
}

// Expire removes the bans ended at now and returns them.
func (s *Store) Expire(ctx context.Context, now time.Time) ([]Ban, error) {
	if s.pendingLen() > 0 {
		return s.expireInMemory(now), nil
	}
	var removed []Ban
	o := &op{}
	o.run = func(ctx context.Context) error {
		removed = removed[:0]
		rows, err := s.stmts.expire.QueryContext(ctx, now.UnixMilli())
		if err != nil {
			return err
		}
		if removed, err = scanBans(rows, removed); err != nil {
			return err
		}
		at := now.UnixMilli()
		for _, b := range removed {
			if _, err := s.stmts.tomb.ExecContext(ctx, b.Prefix.String(), at, tombExpire); err != nil {
				return err
			}
		}
		return nil
	}
	o.apply = func() {
		for _, b := range removed {
			s.active.delete(b.Prefix)
			s.tombs[b.Prefix] = struct{}{}
		}
	}
	if err := s.do(ctx, o); err != nil {
		if !isStorageError(err) {
			return nil, fmt.Errorf("expire bans: %w", err)
		}
		s.failed(err)
		return s.expireInMemory(now), nil
	}
	return removed, nil
}

// Active returns the bans in force, oldest first.
func (s *Store) Active(ctx context.Context) ([]Ban, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+banColumns+` FROM bans WHERE expires = 0 OR expires > ? ORDER BY created, prefix`, s.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	bans, err := scanBans(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	return s.overlayPending(bans), nil
}

// Contains reports whether a is inside an active ban. It reads memory
// only, for the gateway's every request.
func (s *Store) Contains(a netip.Addr) bool {
	s.mu.RLock()
	exp, ok := s.active.lookup(a.Unmap())
	s.mu.RUnlock()
	return ok && (exp == 0 || exp > s.now().UnixNano())
}

// overlappingBans returns the bans in force overlapping p, from memory:
// their prefixes and expiries only.
func (s *Store) overlappingBans(p netip.Prefix) []Ban {
	now := s.now().UnixNano()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Ban
	for _, q := range s.active.overlapping(p) {
		if exp, _ := s.active.get(q); exp == 0 || exp > now {
			b := Ban{Prefix: q}
			if exp != 0 {
				b.Expires = time.Unix(0, exp)
			}
			out = append(out, b)
		}
	}
	return out
}

// Len returns the number of bans in memory, including ended ones not yet
// expired.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.active.len()
}

// PreviousBans returns how often p was banned before, from the history
// (jail.History). It reads memory only.
func (s *Store) PreviousBans(p netip.Prefix) int {
	p, ok := CanonicalPrefix(p)
	if !ok {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int(s.history[keyOf(p)])
}

// HistoryQuery selects history entries; zero fields select all.
type HistoryQuery struct {
	// Prefix selects one prefix's bans.
	Prefix netip.Prefix
	// Since selects bans created at or after it.
	Since time.Time
	// Limit keeps the newest Limit entries.
	Limit int
}

// History returns past and present bans, newest first.
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]Ban, error) {
	query := `SELECT ` + banColumns + ` FROM history WHERE created >= ?`
	args := []any{timeToMs(q.Since)}
	if q.Prefix.IsValid() {
		p, _ := CanonicalPrefix(q.Prefix)
		query += ` AND prefix = ?`
		args = append(args, p.String())
	}
	query += ` ORDER BY created DESC, id DESC`
	if q.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("ban history: %w", err)
	}
	bans, err := scanBans(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("ban history: %w", err)
	}
	return bans, nil
}

// PruneHistory forgets history entries created before before, so old
// offences stop growing bantimes, and returns how many it removed.
func (s *Store) PruneHistory(ctx context.Context, before time.Time) (int, error) {
	var n int64
	h := map[prefixKey]uint32{}
	o := &op{}
	o.run = func(ctx context.Context) error {
		res, err := s.w.ExecContext(ctx, `DELETE FROM history WHERE created < ?`, before.UnixMilli())
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		clear(h)
		rows, err := s.w.QueryContext(ctx, `SELECT prefix, count(*) FROM history GROUP BY prefix`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p string
			var c uint32
			if err := rows.Scan(&p, &c); err != nil {
				return err
			}
			if pp, err := parsePrefix(p); err == nil {
				h[keyOf(pp)] = c
			}
		}
		return rows.Err()
	}
	o.apply = func() {
		if n > 0 {
			s.history = h
		}
	}
	if err := s.do(ctx, o); err != nil {
		return 0, fmt.Errorf("prune ban history: %w", err)
	}
	return int(n), nil
}

// prefixKey is a pointer-free map key for a prefix.
type prefixKey struct {
	addr [16]byte
	bits uint8
	v4   bool
}

func keyOf(p netip.Prefix) prefixKey {
	return prefixKey{p.Addr().As16(), uint8(p.Bits()), p.Addr().Is4()}
}

type scanner interface{ Scan(...any) error }

func scanBan(r scanner) (Ban, error) {
	var b Ban
	var p, origin string
	var created, expires int64
	if err := r.Scan(&p, &b.Jail, &b.Reason, &origin, &created, &expires, &b.Failures, &b.Offence); err != nil {
		return Ban{}, err
	}
	pp, err := parsePrefix(p)
	if err != nil {
		return Ban{}, err
	}
	b.Prefix, b.Origin, b.Created, b.Expires = pp, Origin(origin), msToTime(created), msToTime(expires)
	return b, nil
}

func scanBans(rows *sql.Rows, dst []Ban) ([]Ban, error) {
	defer rows.Close()
	for rows.Next() {
		b, err := scanBan(rows)
		if err != nil {
			return dst, err
		}
		dst = append(dst, b)
	}
	return dst, rows.Err()
}

// parsePrefix reads a stored prefix. Only the form moat writes is
// accepted (masked, IPv4 not mapped, no zone, written as String writes
// it): anything else was not written by moat and is damage.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("stored prefix %q: %w", s, err)
	}
	if c, ok := CanonicalPrefix(p); !ok || c != p || c.String() != s {
		return netip.Prefix{}, fmt.Errorf("stored prefix %q: not in the form moat writes", s)
	}
	return p, nil
}

// Times are unix milliseconds in the database, 0 for the zero Time.
func timeToMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func msToTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func msToNano(ms int64) int64 { return ms * int64(time.Millisecond) }
