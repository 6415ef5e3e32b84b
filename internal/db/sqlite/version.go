package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"keppel/internal/db"
	"keppel/internal/db/sqlcore"
)

// VersionWatcher reports SQLite's data_version as seen by a connection of
// its own, which never writes: the value changes whenever any other
// connection, of this process or of another one, commits a change. Caches
// (internal/db/dbcache) compare it to detect changes they did not make.
//
// Concurrent callers share reads: a caller gets the result of a read that
// started after it called, so it never misses a change committed before
// its call, yet one read serves every caller that arrived while the
// previous read ran.
type VersionWatcher struct {
	mu       sync.Mutex
	done     *sync.Cond
	conn     *sql.Conn
	stmt     *sql.Stmt
	started  uint64 // number of reads started
	finished uint64 // number of the last read that finished
	reading  bool
	value    uint64
	ok       bool
}

// WatchVersion takes one connection of store's pool (which must come from
// Open with a database file) for a VersionWatcher, and adds one to the
// pool's limit so that reads keep their parallelism.
func WatchVersion(ctx context.Context, store db.Store) (*VersionWatcher, error) {
	s, ok := store.(*sqlcore.Store)
	if !ok {
		return nil, errors.New("sqlite: watch version: not a store of this package")
	}
	sqlDB := s.DB()
	limit := sqlDB.Stats().MaxOpenConnections
	if limit == 1 {
		return nil, errors.New("sqlite: watch version: an in-memory database has a single connection")
	}
	if limit > 0 {
		sqlDB.SetMaxOpenConns(limit + 1)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: watch version: %w", err)
	}
	stmt, err := conn.PrepareContext(ctx, `PRAGMA data_version`)
	if err != nil {
		_ = conn.Close() // report the original problem
		return nil, fmt.Errorf("sqlite: watch version: %w", err)
	}
	w := &VersionWatcher{conn: conn, stmt: stmt}
	w.done = sync.NewCond(&w.mu)
	return w, nil
}

// Version returns the current data_version; ok is false if it could not be
// read.
func (w *VersionWatcher) Version(ctx context.Context) (version uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A read that is running already may have started before this call.
	target := w.started + 1
	for w.finished < target {
		if w.reading {
			w.done.Wait()
			continue
		}
		w.started++
		w.reading = true
		w.mu.Unlock()
		// One caller's cancellation must not fail the others.
		v, ok := w.read(context.WithoutCancel(ctx))
		w.mu.Lock()
		w.reading = false
		w.finished, w.value, w.ok = w.started, v, ok
		w.done.Broadcast()
	}
	return w.value, w.ok
}

func (w *VersionWatcher) read(ctx context.Context) (uint64, bool) {
	if w.stmt == nil {
		return 0, false
	}
	var v int64
	if err := w.stmt.QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, false
	}
	return uint64(v), true
}

// Close returns the connection to the pool.
func (w *VersionWatcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.reading {
		w.done.Wait()
	}
	if w.stmt == nil {
		return nil
	}
	err := errors.Join(w.stmt.Close(), w.conn.Close())
	w.stmt, w.conn = nil, nil
	if err != nil {
		return fmt.Errorf("sqlite: stop watching version: %w", err)
	}
	return nil
}
