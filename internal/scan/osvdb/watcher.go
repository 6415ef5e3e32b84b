package osvdb

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// Watcher keeps the DB of a directory current, so that operators update the
// advisories by dropping new files in, without a restart. Check reloads the
// DB when a file below the directory has changed (by name, size or
// modification time); until a new DB has been loaded, and when loading
// fails, readers keep getting the previous one. A Watcher is safe for
// concurrent use.
//
// Check has the signature of a janitor job's Run, so the composition root
// runs it among the background jobs at the interval it chooses.
type Watcher struct {
	dir string
	log *slog.Logger

	current atomic.Pointer[DB]

	// mu serialises Check and guards the fields below.
	mu sync.Mutex
	// loaded is the fingerprint of the files that the current DB was
	// loaded from.
	loaded [sha256.Size]byte
	// failed is the fingerprint of the files whose load failed last, and
	// failure the error, which Check returns again for as long as the files
	// stay as they are.
	failed  [sha256.Size]byte
	failure error
}

// NewWatcher loads the DB of dir (see Open). log, if not nil, gets a message
// for each load and for each document that was skipped.
func NewWatcher(dir string, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{dir: dir, log: log}
	fp, err := fingerprint(dir)
	if err != nil {
		return nil, err
	}
	db, err := Open(dir)
	if err != nil {
		return nil, err
	}
	w.install(fp, db)
	return w, nil
}

// DB returns the current database.
func (w *Watcher) DB() *DB {
	return w.current.Load()
}

// Check reloads the DB if a file below the directory has changed since the
// current DB was loaded, and reports whether it did. If the new files do
// not load, the current DB is kept and the error is returned, by this and
// every later Check until the files change again.
func (w *Watcher) Check(ctx context.Context) (reloaded bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fp, err := fingerprint(w.dir)
	if err != nil {
		return false, err
	}
	switch {
	case fp == w.loaded:
		return false, nil
	case w.failure != nil && fp == w.failed:
		return false, w.failure
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("osvdb: reloading: %w", err)
	}
	db, err := Open(w.dir)
	if err != nil {
		w.failed, w.failure = fp, fmt.Errorf("keeping the previous advisory database: %w", err)
		return false, w.failure
	}
	w.install(fp, db)
	return true, nil
}

// install makes db the current database and logs what it holds.
func (w *Watcher) install(fp [sha256.Size]byte, db *DB) {
	w.loaded, w.failure = fp, nil
	w.current.Store(db)
	stats := db.Stats()
	attrs := make([]any, 0, 2*len(stats)+2)
	attrs = append(attrs, "dir", w.dir)
	for eco, n := range stats {
		attrs = append(attrs, slog.Int(eco, n))
	}
	w.log.Info("loaded the OSV advisory database", attrs...)
	for _, s := range db.Skipped() {
		w.log.Warn("skipped an OSV document", "file", s.File, "reason", s.Reason)
	}
}

// fingerprint hashes the names, sizes and modification times of the files
// that Open reads below dir.
func fingerprint(dir string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	h := sha256.New()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out, fmt.Errorf("osvdb: reading the advisory directory: %w", err)
	}
	for _, ent := range entries {
		if ignored(ent.Name()) {
			continue
		}
		sub := filepath.Join(dir, ent.Name())
		fi, err := os.Stat(sub)
		if err != nil {
			return out, fmt.Errorf("osvdb: %w", err)
		}
		if !fi.IsDir() {
			continue
		}
		files, err := os.ReadDir(sub)
		if err != nil {
			return out, fmt.Errorf("osvdb: %w", err)
		}
		for _, f := range files {
			n := f.Name()
			if ignored(n) || f.IsDir() || !(strings.HasSuffix(n, ".zip") || strings.HasSuffix(n, ".json")) {
				continue
			}
			info, err := os.Stat(filepath.Join(sub, n)) // follows links, as Open does
			if err != nil {
				return out, fmt.Errorf("osvdb: %w", err)
			}
			// NUL cannot occur in names, so the records cannot run together.
			_, _ = io.WriteString(h, ent.Name()+"/"+n+"\x00")
			_, _ = fmt.Fprintf(h, "%d %d\x00", info.Size(), info.ModTime().UnixNano())
		}
	}
	h.Sum(out[:0])
	return out, nil
}
