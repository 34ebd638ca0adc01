package ban

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] takes the schema from version i to i+1. Append only: a
// released migration never changes.
var migrations = []string{
	// 1: active bans, their history, and log positions. Times are unix
	// milliseconds; expires 0 means never.
	`CREATE TABLE bans (
		prefix   TEXT PRIMARY KEY,
		jail     TEXT NOT NULL,
		reason   TEXT NOT NULL,
		origin   TEXT NOT NULL,
		created  INTEGER NOT NULL,
		expires  INTEGER NOT NULL,
		failures INTEGER NOT NULL,
		offence  INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE INDEX bans_expires ON bans (expires) WHERE expires != 0;
	CREATE TABLE history (
		id       INTEGER PRIMARY KEY,
		prefix   TEXT NOT NULL,
		jail     TEXT NOT NULL,
		reason   TEXT NOT NULL,
		origin   TEXT NOT NULL,
		created  INTEGER NOT NULL,
		expires  INTEGER NOT NULL,
		failures INTEGER NOT NULL,
		offence  INTEGER NOT NULL
	);
	CREATE INDEX history_prefix ON history (prefix);
	CREATE INDEX history_created ON history (created);
	CREATE TABLE positions (
		source  TEXT PRIMARY KEY,
		pos     BLOB NOT NULL,
		updated INTEGER NOT NULL
	) WITHOUT ROWID;`,
	// 2: tombstones: prefixes unbanned or expired, so that a start-up
	// reconcile deletes their kernel elements instead of adopting them.
	// kind is unban or expire; at is unix milliseconds.
	`CREATE TABLE tombstones (
		prefix TEXT PRIMARY KEY,
		at     INTEGER NOT NULL,
		kind   TEXT NOT NULL
	) WITHOUT ROWID;`,
}

// SchemaVersion is the schema version this build writes.
var SchemaVersion = len(migrations)

// migrate brings the database on conn to SchemaVersion, one transaction
// per step, and refuses a database from a newer moat.
func migrate(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var v int
	err := conn.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case err == sql.ErrNoRows:
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("init schema_version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("database schema version %d is newer than this moat's %d: upgrade moat", v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		if err := step(ctx, conn, v); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	return nil
}

func step(ctx context.Context, conn *sql.Conn, v int) (err error) {
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.Background(), `ROLLBACK`)
		}
	}()
	if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, `COMMIT`)
	return err
}
