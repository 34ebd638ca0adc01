package ban

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("ban store closed")

// maxBatchOps bounds how many concurrent calls share one transaction.
const maxBatchOps = 256

// Options tune a Store.
type Options struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// BusyTimeout is how long a write waits for another process holding
	// the database (0 is 5s).
	BusyTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to write
	// decisions kept in memory after a failed write (0: 1s and 30s).
	RetryMin, RetryMax time.Duration
}

// Store is the ban database: active bans, history and log positions in
// SQLite, with the active bans and per-prefix ban counts mirrored in
// memory. It is safe for concurrent use. Writes go through one goroutine
// that commits every call waiting at the time in one transaction (group
// commit), each call in its own savepoint, so one bad call fails alone.
type Store struct {
	db    *sql.DB
	w     *sql.Conn // the writer's connection
	stmts stmts
	now   func() time.Time

	ops     chan *op
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once

	mu      sync.RWMutex // guards active, history, tombs and the pending state
	active  prefixSet
	history map[prefixKey]uint32
	// tombs are the prefixes unbanned or expired whose kernel elements
	// may outlive them: reconcile deletes those instead of adopting them.
	tombs map[netip.Prefix]struct{}

	pend               pendingState // decisions not yet written (durable.go)
	kick               chan struct{}
	retryMin, retryMax time.Duration
	recovered          string // what Open did with a damaged file
}

// op is one call's work in a write transaction.
type op struct {
	ctx context.Context
	// run does the call's statements; it may read the in-memory state
	// (as of the last commit) but not change it.
	run func(ctx context.Context) error
	// apply makes the call's effect on the in-memory state after commit.
	apply func()
	done  chan error
}

// Open opens (creating if need be) the database at path and loads the
// active bans and ban counts into memory. The file and a missing parent
// directory are made private to root's group (0600, 0700).
//
// A damaged file (not a database, bad pages, rows that do not parse) is
// never fatal and never silently dropped: it is kept beside the new one
// as path.corrupt-<time> and Recovered says what happened. The caller's
// reconcile then rebuilds the active bans from the kernel sets.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s, err := open(path, opts)
	var ce *corruptError
	if err == nil || !errors.As(err, &ce) {
		return s, err
	}
	aside, merr := moveAside(path, opts.Now())
	if merr != nil {
		return nil, fmt.Errorf("open ban store %s: %v; moving it aside failed: %w (move it away by hand and restart)", path, ce, merr)
	}
	s, err = open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("open ban store %s after moving a damaged one aside to %s: %w", path, aside, err)
	}
	s.recovered = fmt.Sprintf("ban store %s was damaged (%s); kept it as %s and started a new one: the bans in the kernel sets are adopted, ban history and log positions start afresh", path, ce.what, aside)
	return s, nil
}

func open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Second, opts.RetryMin)
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open ban store: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	// NORMAL in WAL mode survives a crash of moat; a power loss may lose
	// the last transactions, which the next reconcile or failure redoes.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open ban store %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(0)
	s := &Store{
		db:       db,
		now:      opts.Now,
		ops:      make(chan *op),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
		history:  map[prefixKey]uint32{},
		tombs:    map[netip.Prefix]struct{}{},
		kick:     make(chan struct{}, 1),
		retryMin: opts.RetryMin, retryMax: opts.RetryMax,
	}
	if err := s.init(path); err != nil {
		if s.w != nil {
			s.stmts.close()
			s.w.Close()
		}
		db.Close()
		return nil, err
	}
	go s.writer()
	go s.retryLoop()
	return s, nil
}

// Recovered says what Open did with a damaged database ("" when it found
// none): the daemon logs it loudly and raises a condition.
func (s *Store) Recovered() string { return s.recovered }

func (s *Store) init(path string) error {
	ctx := context.Background()
	w, err := s.db.Conn(ctx)
	if err != nil {
		return classify(fmt.Errorf("open ban store %s: %w (is the directory writable?)", path, err))
	}
	s.w = w
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return classify(fmt.Errorf("open ban store %s: %w", path, err))
	}
	if mode != "wal" {
		return fmt.Errorf("open ban store %s: journal mode %q, want wal (is the file on a filesystem without shared memory?)", path, mode)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("open ban store: %w", err)
	}
	if err := quickCheck(ctx, w); err != nil {
		return err
	}
	if err := migrate(ctx, w); err != nil {
		return classify(fmt.Errorf("open ban store %s: %w", path, err))
	}
	if err := s.stmts.prepare(ctx, w); err != nil {
		return classify(fmt.Errorf("open ban store %s: %w", path, err))
	}
	if err := s.salvageRows(ctx, path); err != nil {
		return classify(fmt.Errorf("open ban store %s: %w", path, err))
	}
	if err := s.load(ctx); err != nil {
		return classify(fmt.Errorf("open ban store %s: %w", path, err))
	}
	return nil
}

// load fills the in-memory mirror from the database.
func (s *Store) load(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT prefix, expires FROM bans`)
	if err != nil {
		return fmt.Errorf("load bans: %w", err)
	}
	for rows.Next() {
		var p string
		var exp int64
		if err := rows.Scan(&p, &exp); err != nil {
			rows.Close()
			return fmt.Errorf("load bans: %w", err)
		}
		pp, err := parsePrefix(p)
		if err != nil {
			rows.Close()
			return fmt.Errorf("load bans: %w", err)
		}
		s.active.set(pp, msToNano(exp))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load bans: %w", err)
	}
	if err := s.loadTombs(ctx); err != nil {
		return err
	}
	return s.loadHistory(ctx)
}

func (s *Store) loadHistory(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT prefix, count(*) FROM history GROUP BY prefix`)
	if err != nil {
		return fmt.Errorf("load history: %w", err)
	}
	defer rows.Close()
	h := map[prefixKey]uint32{}
	for rows.Next() {
		var p string
		var n uint32
		if err := rows.Scan(&p, &n); err != nil {
			return fmt.Errorf("load history: %w", err)
		}
		if pp, err := parsePrefix(p); err == nil {
			h[keyOf(pp)] = n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load history: %w", err)
	}
	s.mu.Lock()
	s.history = h
	s.mu.Unlock()
	return nil
}

// Close writes what is kept in memory if it can, waits for the write in
// progress and closes the database. Calls after Close return ErrClosed.
func (s *Store) Close() error {
	var ferr error
	if s.pendingLen() > 0 {
		if ferr = s.flush(); ferr != nil {
			ferr = fmt.Errorf("close ban store: %d decisions were never written: %w", s.pendingLen(), ferr)
		}
	}
	s.once.Do(func() { close(s.quit) })
	<-s.stopped
	s.stmts.close()
	err := s.w.Close()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return errors.Join(ferr, err)
}

// do runs o in the writer and waits for its commit. A call whose context
// ends before the writer takes it is not run; once taken, it runs to its
// commit or rollback.
func (s *Store) do(ctx context.Context, o *op) error {
	o.ctx = ctx
	o.done = make(chan error, 1)
	select {
	case s.ops <- o:
	case <-s.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-o.done
}

func (s *Store) writer() {
	defer close(s.stopped)
	batch := make([]*op, 0, maxBatchOps)
	for {
		select {
		case o := <-s.ops:
			batch = append(batch[:0], o)
		case <-s.quit:
			return
		}
	gather:
		for len(batch) < maxBatchOps {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break gather
			}
		}
		s.commit(batch)
	}
}

// commit runs a batch of calls in one transaction, each in a savepoint.
func (s *Store) commit(batch []*op) {
	// The writer's statements do not take the callers' contexts: an
	// interrupted statement can roll back the whole transaction, and with
	// it the other callers' work.
	ctx := context.Background()
	errs := make([]error, len(batch))
	fail := func(err error) {
		for _, o := range batch {
			o.done <- err
		}
	}
	if _, err := s.w.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := s.w.ExecContext(ctx, `SAVEPOINT op`); err != nil {
			errs[i] = err
			continue
		}
		if err := o.run(ctx); err != nil {
			errs[i] = err
			if _, rerr := s.w.ExecContext(ctx, `ROLLBACK TO op`); rerr != nil {
				s.w.ExecContext(ctx, `ROLLBACK`)
				fail(fmt.Errorf("roll back a failed write (%v): %w", err, rerr))
				return
			}
		}
		s.w.ExecContext(ctx, `RELEASE op`)
	}
	if _, err := s.w.ExecContext(ctx, `COMMIT`); err != nil {
		s.w.ExecContext(ctx, `ROLLBACK`)
		fail(fmt.Errorf("commit: %w", err))
		return
	}
	s.mu.Lock()
	for i, o := range batch {
		if errs[i] == nil && o.apply != nil {
			o.apply()
		}
	}
	s.mu.Unlock()
	for i, o := range batch {
		o.done <- errs[i]
	}
}

// stmts are the writer's prepared statements.
type stmts struct {
	get, insert, put, extend, del, record, expire, savePos, tomb, untomb *sql.Stmt
}

const banColumns = `prefix, jail, reason, origin, created, expires, failures, offence`

func (st *stmts) prepare(ctx context.Context, c *sql.Conn) error {
	for _, p := range []struct {
		s **sql.Stmt
		q string
	}{
		{&st.get, `SELECT ` + banColumns + ` FROM bans WHERE prefix = ?`},
		{&st.insert, `INSERT INTO bans (` + banColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (prefix) DO NOTHING`},
		{&st.put, `INSERT OR REPLACE INTO bans (` + banColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.extend, `UPDATE bans SET jail = ?, reason = ?, origin = ?, expires = ?, failures = ? WHERE prefix = ?`},
		{&st.del, `DELETE FROM bans WHERE prefix = ? RETURNING ` + banColumns},
		{&st.record, `INSERT INTO history (` + banColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.expire, `DELETE FROM bans WHERE expires != 0 AND expires <= ? RETURNING ` + banColumns},
		{&st.savePos, `INSERT OR REPLACE INTO positions (source, pos, updated) VALUES (?, ?, ?)`},
		{&st.tomb, `INSERT OR REPLACE INTO tombstones (prefix, at, kind) VALUES (?, ?, ?)`},
		{&st.untomb, `DELETE FROM tombstones WHERE prefix = ?`},
	} {
		stmt, err := c.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.q, err)
		}
		*p.s = stmt
	}
	return nil
}

func (st *stmts) close() {
	for _, s := range []*sql.Stmt{st.get, st.insert, st.put, st.extend, st.del, st.record, st.expire, st.savePos, st.tomb, st.untomb} {
		if s != nil {
			s.Close()
		}
	}
}
