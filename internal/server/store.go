package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"keppel/internal/config"
	"keppel/internal/db"
	"keppel/internal/db/dbcache"
	"keppel/internal/db/postgres"
	"keppel/internal/db/sqlite"
)

// openStore opens the configured metadata store behind the metadata cache
// (unless database.cache_max_bytes is -1), and starts what keeps the cache
// current: a LISTEN connection for PostgreSQL, a data_version watcher for a
// SQLite file. stop ends that; it must run before the store is closed.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store db.Store, stop func(), err error) {
	stop = func() {}
	if cfg.UsesPostgres() {
		store, err = postgres.Open(ctx, cfg.Database.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("opening PostgreSQL database: %w", err)
		}
		if cfg.Database.CacheMaxBytes < 0 {
			return store, stop, nil
		}
		cache := dbcache.New(store, dbcache.Options{MaxBytes: cfg.Database.CacheMaxBytes, Feed: true})
		listenCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		wg.Go(func() {
			postgres.Listen(listenCtx, cfg.Database.URL, cache, log.With("component", "metadata-cache"))
		})
		return cache, func() { cancel(); wg.Wait() }, nil
	}

	if err := os.MkdirAll(filepath.Dir(cfg.Database.SQLitePath), 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating directory for SQLite database: %w", err)
	}
	store, err = sqlite.Open(ctx, cfg.Database.SQLitePath)
	if err != nil {
		return nil, nil, fmt.Errorf("opening SQLite database: %w", err)
	}
	if cfg.Database.CacheMaxBytes < 0 {
		return store, stop, nil
	}
	opts := dbcache.Options{MaxBytes: cfg.Database.CacheMaxBytes}
	if cfg.Database.SQLitePath != sqlite.MemoryPath {
		// Another process may write to the same file; an in-memory
		// database is this process's alone, and every write to it goes
		// through the cache.
		watcher, err := sqlite.WatchVersion(ctx, store)
		if err != nil {
			store.Close()
			return nil, nil, fmt.Errorf("opening SQLite database: %w", err)
		}
		opts.Version = watcher.Version
		stop = func() {
			if err := watcher.Close(); err != nil {
				log.Warn("cannot stop watching the SQLite database", "error", err)
			}
		}
	}
	return dbcache.New(store, opts), stop, nil
}
