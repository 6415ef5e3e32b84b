// Package sqlite is the metadata store on SQLite, for the embedded,
// zero-setup mode. It uses the pure-Go driver modernc.org/sqlite, so the
// binary needs no C toolchain.
//
// The database runs in WAL mode, so that readers never wait for the writer,
// with foreign keys enforced. Write transactions start with BEGIN IMMEDIATE
// and, within one process, queue up for a single write token; a writer in
// another process is waited for up to the busy timeout.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"keppel/internal/db"
	"keppel/internal/db/sqlcore"
)

// MemoryPath opens a private in-memory database that lives as long as the
// store; for tests.
const MemoryPath = ":memory:"

// busyTimeout is how long a statement waits for a lock held by another
// connection (possibly in another process) before it fails.
const busyTimeout = 10 * time.Second

//go:embed migrations/*.sql
var migrationFiles embed.FS

// dialect describes SQLite to sqlcore.
func dialect() sqlcore.Dialect {
	return sqlcore.Dialect{
		Name:            "sqlite",
		Classify:        classify,
		SerializeWrites: true,
	}
}

// Open opens (creating if needed) the SQLite database in the file at path, or
// an in-memory database for MemoryPath, and brings its schema up to date.
func Open(ctx context.Context, path string, opts ...sqlcore.Option) (db.Store, error) {
	sqlDB, _, err := open(ctx, path)
	if err != nil {
		return nil, err
	}
	return sqlcore.New(sqlDB, dialect(), opts...), nil
}

// Migrate brings the schema of the database in the file at path up to
// date, as Open does, and returns the migrations that it applied.
func Migrate(ctx context.Context, path string) ([]sqlcore.Migration, error) {
	sqlDB, applied, err := open(ctx, path)
	if err != nil {
		return nil, err
	}
	return applied, sqlDB.Close()
}

// MigrationStatus tells which migrations the database in the file at path
// has, without changing it (nor creating it: a missing file has none).
func MigrationStatus(ctx context.Context, path string) ([]sqlcore.MigrationStatus, error) {
	migrations, err := sqlcore.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	if path == "" || path == MemoryPath {
		return nil, fmt.Errorf("sqlite: no database file given (%q)", path)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		out := make([]sqlcore.MigrationStatus, 0, len(migrations))
		for _, m := range migrations {
			out = append(out, sqlcore.MigrationStatus{Migration: m})
		}
		return out, nil
	}
	sqlDB, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer sqlDB.Close()
	st, err := sqlcore.MigrationStatuses(ctx, sqlDB,
		`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`, migrations)
	if err != nil {
		return st, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return st, nil
}

// open opens the database and migrates its schema; it returns the
// migrations that it applied.
func open(ctx context.Context, path string) (*sql.DB, []sqlcore.Migration, error) {
	if path == "" {
		return nil, nil, errors.New("sqlite: no database path given")
	}
	inMemory := path == MemoryPath
	connector, err := sqlite.NewConnector(dsn(path, inMemory))
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	sqlDB := sql.OpenDB(stmtCachingConnector{connector})
	if inMemory {
		// Every connection would get a database of its own, and the
		// database would vanish with its connection.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxIdleTime(0)
		sqlDB.SetConnMaxLifetime(0)
	} else {
		// Writes are serialized anyway; more connections let reads run
		// in parallel with the writer.
		n := max(4, runtime.GOMAXPROCS(0))
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxIdleTime(0)
		sqlDB.SetConnMaxLifetime(0)
	}

	applied, err := prepare(ctx, sqlDB, inMemory)
	if err != nil {
		_ = sqlDB.Close() // report the original problem
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return sqlDB, applied, nil
}

// dsn builds the driver's connection string: a SQLite URI with the pragmas
// that every connection of the pool needs.
func dsn(path string, inMemory bool) string {
	params := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
		// FULL syncs the WAL on every commit: a commit that a client was
		// told about survives a power loss (NORMAL would only survive a
		// crash of the process).
		"_pragma=synchronous(FULL)",
		"_txlock=immediate",
	}
	if !inMemory {
		params = append(params, "_pragma=journal_mode(WAL)")
	}
	// Escaping keeps "?", "#" and "%" in file names from being read as
	// URI syntax.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + strings.Join(params, "&")
}

// prepare checks the connection settings and migrates the schema; it
// returns the migrations that it applied.
func prepare(ctx context.Context, sqlDB *sql.DB, inMemory bool) ([]sqlcore.Migration, error) {
	var foreignKeys int
	if err := sqlDB.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&foreignKeys); err != nil {
		return nil, fmt.Errorf("check foreign_keys: %w", err)
	}
	if foreignKeys != 1 {
		return nil, errors.New("foreign keys could not be enabled")
	}
	if !inMemory {
		var mode string
		if err := sqlDB.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			return nil, fmt.Errorf("check journal_mode: %w", err)
		}
		if !strings.EqualFold(mode, "wal") {
			return nil, fmt.Errorf("journal mode is %q, not WAL", mode)
		}
	}
	migrations, err := sqlcore.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return sqlcore.Migrate(ctx, sqlDB, migrations)
}

// classify sorts SQLite errors by their extended result code.
func classify(err error) sqlcore.ErrorKind {
	var sqliteErr *sqlite.Error
	if !errors.As(err, &sqliteErr) {
		return sqlcore.KindOther
	}
	switch sqliteErr.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlcore.KindUnique
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlcore.KindForeignKey
	default:
		return sqlcore.KindOther
	}
}
