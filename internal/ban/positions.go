package ban

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Positions keeps log sources' read positions (file offsets, journal
// cursors) in the ban database, so that a restart resumes where the last
// run stopped. A position is opaque bytes: internal/logwatch's Position in
// its text form (MarshalText); the daemon adapts this to logwatch.Store.
type Positions struct{ s *Store }

// Positions returns the store's position table.
func (s *Store) Positions() Positions { return Positions{s} }

// Load returns the position saved for source; ok is false when none is.
func (p Positions) Load(source string) (pos []byte, ok bool, err error) {
	err = p.s.db.QueryRowContext(context.Background(), `SELECT pos FROM positions WHERE source = ?`, source).Scan(&pos)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("load position of %s: %w", source, err)
	}
	if pos == nil {
		pos = []byte{}
	}
	return pos, true, nil
}

// Save records source's position, in the same group commit as concurrent
// bans.
func (p Positions) Save(source string, pos []byte) error {
	pos = append([]byte{}, pos...) // the caller may reuse its buffer
	o := &op{run: func(ctx context.Context) error {
		_, err := p.s.stmts.savePos.ExecContext(ctx, source, pos, p.s.now().UnixMilli())
		return err
	}}
	if err := p.s.do(context.Background(), o); err != nil {
		return fmt.Errorf("save position of %s: %w", source, err)
	}
	return nil
}
