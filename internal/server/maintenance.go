package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"keppel/internal/config"
	"keppel/internal/db"
	"keppel/internal/db/postgres"
	"keppel/internal/db/sqlcore"
	"keppel/internal/db/sqlite"
	"keppel/internal/storage"
)

// Stores are the metadata store and the content storage of a
// configuration, opened without the rest of the server, for maintenance
// commands (`keppel server check`). The metadata store has no cache: every
// read goes to the database.
type Stores struct {
	DB      db.Store
	Storage storage.Driver
}

// OpenStores opens the configured metadata store (migrating its schema, as
// the server does) and content storage.
func OpenStores(ctx context.Context, cfg config.Config) (*Stores, error) {
	var (
		store db.Store
		err   error
	)
	if cfg.UsesPostgres() {
		if store, err = postgres.Open(ctx, cfg.Database.URL); err != nil {
			return nil, fmt.Errorf("opening PostgreSQL database: %w", err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(cfg.Database.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("creating directory for SQLite database: %w", err)
		}
		if store, err = sqlite.Open(ctx, cfg.Database.SQLitePath); err != nil {
			return nil, fmt.Errorf("opening SQLite database: %w", err)
		}
	}
	drv, err := openStorage(ctx, cfg.Storage)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening storage: %w", err), store.Close())
	}
	return &Stores{DB: store, Storage: drv}, nil
}

// Close closes the metadata store.
func (s *Stores) Close() error { return s.DB.Close() }

// Migration is a schema migration of the metadata store.
type Migration = sqlcore.MigrationStatus

// MigrateDatabase brings the schema of the configured metadata store up to
// date and returns the migrations that it applied.
func MigrateDatabase(ctx context.Context, cfg config.Config) ([]Migration, error) {
	var (
		applied []sqlcore.Migration
		err     error
	)
	if cfg.UsesPostgres() {
		applied, err = postgres.Migrate(ctx, cfg.Database.URL)
	} else {
		if err := os.MkdirAll(filepath.Dir(cfg.Database.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("creating directory for SQLite database: %w", err)
		}
		applied, err = sqlite.Migrate(ctx, cfg.Database.SQLitePath)
	}
	out := make([]Migration, 0, len(applied))
	for _, m := range applied {
		out = append(out, Migration{Migration: m, Applied: true})
	}
	return out, err
}

// DatabaseMigrations lists the schema migrations that this program knows,
// with whether the configured metadata store has them; it changes nothing.
func DatabaseMigrations(ctx context.Context, cfg config.Config) ([]Migration, error) {
	if cfg.UsesPostgres() {
		return postgres.MigrationStatus(ctx, cfg.Database.URL)
	}
	return sqlite.MigrationStatus(ctx, cfg.Database.SQLitePath)
}
