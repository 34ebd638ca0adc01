package ban

import (
	"context"
	"fmt"
	"time"
)

// HistoryEntry is a history entry with its id: ids grow with each entry
// recorded, so a reader can follow the history (the status page does).
type HistoryEntry struct {
	ID int64
	Ban
}

// HistoryAfter returns the entries recorded after the one with id after,
// in the order they were recorded; with after 0, those created at or
// after since. The history only grows (and is pruned from its old
// end), so a reader that remembers the last id it saw reads each entry
// once.
func (s *Store) HistoryAfter(ctx context.Context, after int64, since time.Time) ([]HistoryEntry, error) {
	// After the first read, the rowid range alone: with both terms SQLite
	// may walk the created index through the whole window instead.
	query, args := `SELECT id, `+banColumns+` FROM history WHERE id > ? ORDER BY id`, []any{after}
	if after == 0 {
		query, args = `SELECT id, `+banColumns+` FROM history WHERE created >= ? ORDER BY id`, []any{timeToMs(since)}
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("ban history: %w", err)
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var e HistoryEntry
		var p, origin string
		var created, expires int64
		if err := rows.Scan(&e.ID, &p, &e.Jail, &e.Reason, &origin, &created, &expires, &e.Failures, &e.Offence); err != nil {
			return nil, fmt.Errorf("ban history: %w", err)
		}
		pp, err := parsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("ban history: %w", err)
		}
		e.Prefix, e.Origin, e.Created, e.Expires = pp, Origin(origin), msToTime(created), msToTime(expires)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ban history: %w", err)
	}
	return out, nil
}
