// Package postgres is the metadata store on PostgreSQL, for the distributed
// mode in which many API and janitor processes share one database. It uses
// pgx through database/sql.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"keppel/internal/db"
	"keppel/internal/db/sqlcore"
)

// migrationLockKey is the pg_advisory_lock key that serializes schema
// migrations of processes starting at the same time ("keppel" in ASCII).
const migrationLockKey int64 = 0x6b657070656c

// Error codes of PostgreSQL (SQLSTATE) that the store tells apart.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// dialect describes PostgreSQL to sqlcore.
func dialect() sqlcore.Dialect {
	return sqlcore.Dialect{
		Name:      "postgres",
		Classify:  classify,
		ForUpdate: " FOR UPDATE",
		ClaimRow:  " FOR NO KEY UPDATE SKIP LOCKED",
	}
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string) and brings its schema up to date. Several processes
// may open the same database at once: they migrate one after the other.
func Open(ctx context.Context, url string, opts ...sqlcore.Option) (db.Store, error) {
	sqlDB, cfg, err := openDB(url)
	if err != nil {
		return nil, err
	}
	if _, err := migrate(ctx, sqlDB); err != nil {
		_ = sqlDB.Close() // report the original problem
		return nil, fmt.Errorf("postgres: open database %q on %s: %w", cfg.Database, cfg.Host, err)
	}
	return sqlcore.New(sqlDB, dialect(), opts...), nil
}

// openDB opens the connection pool of the database at url.
func openDB(url string) (*sql.DB, *pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The error text may quote the URL, password included.
		return nil, nil, errors.New("postgres: cannot parse the database URL")
	}
	sqlDB := stdlib.OpenDB(*cfg)
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetMaxIdleConns(10)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	sqlDB.SetConnMaxLifetime(time.Hour)
	return sqlDB, cfg, nil
}

// Migrate brings the schema of the database at url up to date, as Open
// does, and returns the migrations that it applied.
func Migrate(ctx context.Context, url string) ([]sqlcore.Migration, error) {
	sqlDB, cfg, err := openDB(url)
	if err != nil {
		return nil, err
	}
	defer sqlDB.Close()
	applied, err := migrate(ctx, sqlDB)
	if err != nil {
		return applied, fmt.Errorf("postgres: migrate database %q on %s: %w", cfg.Database, cfg.Host, err)
	}
	return applied, nil
}

// MigrationStatus tells which migrations the database at url has, without
// changing it.
func MigrationStatus(ctx context.Context, url string) ([]sqlcore.MigrationStatus, error) {
	migrations, err := sqlcore.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	sqlDB, cfg, err := openDB(url)
	if err != nil {
		return nil, err
	}
	defer sqlDB.Close()
	st, err := sqlcore.MigrationStatuses(ctx, sqlDB,
		`SELECT 1 WHERE to_regclass('schema_migrations') IS NOT NULL`, migrations)
	if err != nil {
		return st, fmt.Errorf("postgres: database %q on %s: %w", cfg.Database, cfg.Host, err)
	}
	return st, nil
}

// migrate applies the migrations while holding the advisory lock, on one
// connection, since the lock belongs to the session. It returns the
// migrations that it applied.
func migrate(ctx context.Context, sqlDB *sql.DB) ([]sqlcore.Migration, error) {
	migrations, err := sqlcore.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		_, unlockErr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
		if unlockErr != nil {
			// Ending the session releases the lock too: make the
			// pool close this connection instead of keeping it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return sqlcore.Migrate(ctx, conn, migrations)
}

// classify sorts PostgreSQL errors by their SQLSTATE.
func classify(err error) sqlcore.ErrorKind {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return sqlcore.KindOther
	}
	switch pgErr.Code {
	case codeUniqueViolation:
		return sqlcore.KindUnique
	case codeForeignKeyViolation:
		return sqlcore.KindForeignKey
	case codeSerializationFailure, codeDeadlockDetected:
		return sqlcore.KindRetry
	default:
		return sqlcore.KindOther
	}
}
