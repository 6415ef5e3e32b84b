package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"keppel/internal/db"
)

// maxTxAttempts is how often a write transaction is tried when the database
// reports a transient failure (KindRetry).
const maxTxAttempts = 3

// Store implements db.Store over a *sql.DB. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time
	// claimHook is called after a sweep claimed its row (tests only).
	claimHook func(table, key string)
	// writeSem holds one token while a write runs, if the dialect
	// serializes writes; it is nil otherwise.
	writeSem chan struct{}
}

var _ db.Store = (*Store)(nil)

// New returns a Store that uses sqlDB, whose schema must be migrated already.
// The Store takes ownership of sqlDB: Close closes it.
func New(sqlDB *sql.DB, d Dialect, opts ...Option) *Store {
	cfg := config{now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if d.Classify == nil {
		d.Classify = func(error) ErrorKind { return KindOther }
	}
	s := &Store{db: sqlDB, dialect: d, now: cfg.now, claimHook: cfg.claimHook}
	if d.SerializeWrites {
		s.writeSem = make(chan struct{}, 1)
	}
	return s
}

// DB returns the underlying connection pool, for backend-specific tests and
// maintenance; callers must not close it.
func (s *Store) DB() *sql.DB {
	return s.db
}

// Ping implements db.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: ping: %w", s.dialect.Name, err)
	}
	return nil
}

// Close implements db.Store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", s.dialect.Name, err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// lockWrites waits for the in-process write token if the dialect asks for
// serialized writes. The returned function releases it.
func (s *Store) lockWrites(ctx context.Context) (func(), error) {
	if s.writeSem == nil {
		return func() {}, nil
	}
	select {
	case s.writeSem <- struct{}{}:
		return func() { <-s.writeSem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// writeTx runs fn in a write transaction and commits it if fn returns nil.
// Transient failures are retried with a fresh transaction.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, fn)
		if err == nil || attempt >= maxTxAttempts || s.dialect.Classify(err) != KindRetry {
			return err
		}
	}
}

func (s *Store) runTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one that matters
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// write runs fn, which issues a single write statement, outside of an
// explicit transaction (but in the write queue, if writes are serialized).
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		err := fn(s.db)
		if err == nil || attempt >= maxTxAttempts || s.dialect.Classify(err) != KindRetry {
			return err
		}
	}
}

// stmtKind tells mapErr whether a foreign key violation happened while adding
// a reference or while removing the referenced row.
type stmtKind int

const (
	stmtWrite  stmtKind = iota // INSERT or UPDATE
	stmtDelete                 // DELETE
)

// mapErr attaches the db sentinel error that matches a driver error, keeping
// the driver error in the chain.
func (s *Store) mapErr(err error, kind stmtKind) error {
	switch s.dialect.Classify(err) {
	case KindUnique:
		return fmt.Errorf("%w: %w", db.ErrConflict, err)
	case KindForeignKey:
		if kind == stmtDelete {
			return fmt.Errorf("%w: %w", db.ErrStillReferenced, err)
		}
		return fmt.Errorf("%w: %w", db.ErrReferenceMissing, err)
	default:
		return err
	}
}

// notFound turns sql.ErrNoRows into db.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return db.ErrNotFound
	}
	return err
}

// affectedOne reports whether the statement changed at least one row.
func affectedOne(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("rows affected: %w", err)
	}
	return n > 0, nil
}

// limitClause returns the LIMIT clause for a list limit (none for NoLimit or
// any other negative value).
func limitClause(limit int) string {
	if limit < 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d", limit)
}

// Timestamps are stored as unix seconds.

func toUnix(t time.Time) int64 {
	return t.Unix()
}

func fromUnix(sec int64) time.Time {
	return time.Unix(sec, 0).UTC()
}

func toNullUnix(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

func fromNullUnix(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromUnix(n.Int64)
	return &t
}

// nonNil returns b, or an empty slice instead of nil, for NOT NULL binary
// columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
