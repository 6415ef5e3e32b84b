package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migration is one versioned schema change.
type Migration struct {
	// Version orders the migrations; it is the number the file name starts with.
	Version int64
	// Name is the file name, for messages.
	Name string
	// SQL is the script, possibly several statements.
	SQL string
}

// LoadMigrations reads the migrations in the directory dir of fsys: every
// file named "<version>_<description>.sql", e.g. "0001_initial.sql".
// Versions must be positive and unique.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	seen := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		prefix, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name must be <version>_<description>.sql", e.Name())
		}
		version, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: version %q is not a positive number", e.Name(), prefix)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version", other, e.Name())
		}
		seen[version] = e.Name()
		content, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: version, Name: e.Name(), SQL: string(content)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrator is what Migrate needs from a database handle: *sql.DB and
// *sql.Conn both qualify. Backends that guard migrations with a session lock
// pass the *sql.Conn that holds the lock.
type Migrator interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Migrate brings the schema up to date: it records applied versions in the
// table schema_migrations and applies every missing migration in its own
// transaction, checking again inside that transaction that no one else has
// applied it meanwhile. It refuses to work on a database whose schema is
// newer than the newest known migration. It returns the migrations that it
// applied (none if the schema was current).
func Migrate(ctx context.Context, m Migrator, migrations []Migration) ([]Migration, error) {
	_, err := m.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT NOT NULL PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`)
	if err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	var current sql.NullInt64
	if err := m.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&current); err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	if len(migrations) > 0 && current.Int64 > migrations[len(migrations)-1].Version {
		return nil, fmt.Errorf("database schema version %d is newer than this program knows (%d)",
			current.Int64, migrations[len(migrations)-1].Version)
	}
	applied := []Migration{}
	for _, mig := range migrations {
		done, err := applyMigration(ctx, m, mig)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, mig)
		}
	}
	return applied, nil
}

// MigrationStatus is a known migration and whether (and when) the database
// has it.
type MigrationStatus struct {
	Migration
	Applied   bool
	AppliedAt time.Time
}

// MigrationStatuses tells which of the migrations the database has,
// without changing anything. hasTable is a query that yields one row if
// the table schema_migrations exists and none otherwise (a database that
// was never migrated).
func MigrationStatuses(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, hasTable string, migrations []Migration) ([]MigrationStatus, error) {
	rows, err := q.QueryContext(ctx, hasTable)
	if err != nil {
		return nil, fmt.Errorf("look for schema_migrations: %w", err)
	}
	exists := rows.Next()
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look for schema_migrations: %w", err)
	}
	appliedAt := map[int64]time.Time{}
	if exists {
		rows, err := q.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations`)
		if err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var version, at int64
			if err := rows.Scan(&version, &at); err != nil {
				return nil, fmt.Errorf("read schema_migrations: %w", err)
			}
			appliedAt[version] = time.Unix(at, 0)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
	}
	out := make([]MigrationStatus, 0, len(migrations))
	for _, mig := range migrations {
		at, ok := appliedAt[mig.Version]
		out = append(out, MigrationStatus{Migration: mig, Applied: ok, AppliedAt: at})
		delete(appliedAt, mig.Version)
	}
	for version := range appliedAt {
		return out, fmt.Errorf("database schema has version %d, which this program does not know", version)
	}
	return out, nil
}

// applyMigration applies one migration unless the database has it, and
// reports whether it did.
func applyMigration(ctx context.Context, m Migrator, mig Migration) (applied bool, err error) {
	tx, err := m.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migration %s: begin: %w", mig.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // err says what went wrong
		}
	}()
	var present int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = $1`, mig.Version).Scan(&present)
	switch {
	case err == nil:
		return false, tx.Commit() // nothing to do
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("migration %s: check version: %w", mig.Name, err)
	}
	if _, err = tx.ExecContext(ctx, mig.SQL); err != nil {
		return false, fmt.Errorf("migration %s: %w", mig.Name, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		mig.Version, mig.Name, time.Now().Unix())
	if err != nil {
		return false, fmt.Errorf("migration %s: record version: %w", mig.Name, err)
	}
	if err = tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %s: commit: %w", mig.Name, err)
	}
	return true, nil
}
