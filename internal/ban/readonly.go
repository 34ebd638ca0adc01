package ban

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"
)

// ReadActive returns the bans in force at now from the database at path,
// opened read-only: it takes no lock and changes no data (SQLite may
// leave its empty -wal and -shm files), so `moat bans` works beside a
// running daemon or without one. A missing file has no bans and is not
// created.
func ReadActive(ctx context.Context, path string, now time.Time) ([]Ban, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("read ban store %s: %w", path, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT `+banColumns+` FROM bans WHERE expires = 0 OR expires > ? ORDER BY created, prefix`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read ban store %s: %w", path, classify(err))
	}
	bans, err := scanBans(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("read ban store %s: %w", path, err)
	}
	return bans, nil
}
