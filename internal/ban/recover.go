package ban

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// corruptError is a database moat cannot trust: Open moves it aside and
// starts afresh instead of failing (the kernel sets still hold the bans).
type corruptError struct {
	what string
	err  error
}

func (e *corruptError) Error() string { return e.what }
func (e *corruptError) Unwrap() error { return e.err }

// SQLite's primary result codes for a damaged or foreign file.
const (
	sqliteCorrupt = 11 // SQLITE_CORRUPT
	sqliteNotADB  = 26 // SQLITE_NOTADB
)

// classify turns SQLite's "damaged file" errors into corruptError and
// leaves the others (permissions, a newer schema) as they are.
func classify(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteCorrupt:
			return &corruptError{what: "bad pages: " + se.Error(), err: err}
		case sqliteNotADB:
			return &corruptError{what: "not a database: " + se.Error(), err: err}
		}
	}
	return err
}

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// checkHeader refuses a file that is not empty and does not start as a
// database does: SQLite would say only "file is not a database" at the
// first query, or worse, take a truncated header for an empty database.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open ban store %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 100) // the database header
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0:
		return nil // an empty file is an empty database
	case err != nil:
		return &corruptError{what: fmt.Sprintf("bad header: the file is %d bytes, shorter than a database header (truncated?)", n)}
	case !bytes.Equal(head[:len(sqliteHeader)], sqliteHeader):
		return &corruptError{what: "bad header: the file does not start as an SQLite database"}
	}
	return nil
}

// quickCheck runs SQLite's page and index check: linear in the file's
// size, a few milliseconds per megabyte.
func quickCheck(ctx context.Context, c *sql.Conn) error {
	rows, err := c.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return classify(fmt.Errorf("check ban store: %w", err))
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return classify(fmt.Errorf("check ban store: %w", err))
		}
		if r != "ok" {
			problems = append(problems, r)
		}
	}
	if err := rows.Err(); err != nil {
		return classify(fmt.Errorf("check ban store: %w", err))
	}
	if len(problems) > 0 {
		return &corruptError{what: "bad pages: " + strings.Join(problems, "; ")}
	}
	return nil
}

// moveAside renames path and its WAL and shared-memory files to
// path.corrupt-<UTC time>, and returns the new name of the database.
func moveAside(path string, now time.Time) (string, error) {
	aside := path + ".corrupt-" + now.UTC().Format("20060102T150405.000Z")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Rename(path+suffix, aside+suffix)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return aside, nil
}

// salvageRows finds rows whose prefix does not parse (or is not in the
// canonical form moat writes). It keeps a copy of the whole database as
// path.corrupt-<time> for the record, then deletes those rows, so that one
// bad row neither hides at load nor breaks every later reconcile. The
// rest of the database (history, positions) stays.
func (s *Store) salvageRows(ctx context.Context, path string) error {
	type bad struct{ table, prefix string }
	var found []bad
	for _, table := range []string{"bans", "history", "tombstones"} {
		rows, err := s.w.QueryContext(ctx, `SELECT DISTINCT prefix FROM `+table)
		if err != nil {
			return fmt.Errorf("check %s rows: %w", table, err)
		}
		for rows.Next() {
			var p sql.RawBytes
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return fmt.Errorf("check %s rows: %w", table, err)
			}
			if _, err := parsePrefix(string(p)); err != nil {
				found = append(found, bad{table, string(p)})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("check %s rows: %w", table, err)
		}
	}
	if len(found) == 0 {
		return nil
	}
	aside := path + ".corrupt-" + s.now().UTC().Format("20060102T150405.000Z")
	if _, err := s.w.ExecContext(ctx, `VACUUM INTO ?`, aside); err != nil {
		return fmt.Errorf("keep a copy of the ban store before removing %d bad rows: %w", len(found), err)
	}
	var shown []string
	for _, b := range found {
		if _, err := s.w.ExecContext(ctx, `DELETE FROM `+b.table+` WHERE prefix = ?`, b.prefix); err != nil {
			return fmt.Errorf("remove a bad row: %w", err)
		}
		if len(shown) < 3 {
			shown = append(shown, fmt.Sprintf("%s %q", b.table, b.prefix))
		}
	}
	s.recovered = fmt.Sprintf("ban store %s held %d rows with an unreadable prefix (%s); kept a copy as %s and removed them: a ban they stood for is adopted back from the kernel sets", path, len(found), strings.Join(shown, ", "), aside)
	return nil
}

// loadTombs reads the tombstones into memory.
func (s *Store) loadTombs(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT prefix FROM tombstones`)
	if err != nil {
		return fmt.Errorf("load tombstones: %w", err)
	}
	defer rows.Close()
	t := map[netip.Prefix]struct{}{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return fmt.Errorf("load tombstones: %w", err)
		}
		pp, err := parsePrefix(p)
		if err != nil {
			return fmt.Errorf("load tombstones: %w", err)
		}
		t[pp] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load tombstones: %w", err)
	}
	s.mu.Lock()
	s.tombs = t
	s.mu.Unlock()
	return nil
}
