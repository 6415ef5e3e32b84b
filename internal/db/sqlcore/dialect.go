// Package sqlcore implements db.Store over database/sql. The SQL it issues is
// the common subset of PostgreSQL and SQLite (numbered "$n" placeholders,
// INSERT … ON CONFLICT, RETURNING); what differs between the two databases is
// described by a Dialect, which the postgres and sqlite packages provide
// together with their migrations.
package sqlcore

import (
	"strings"
	"time"
)

// ErrorKind is the class of a driver error, as far as the store cares.
type ErrorKind int

const (
	// KindOther is any error that needs no special treatment.
	KindOther ErrorKind = iota
	// KindUnique is a violated unique or primary key constraint.
	KindUnique
	// KindForeignKey is a violated foreign key constraint. The store turns
	// it into db.ErrReferenceMissing on insert and update and into
	// db.ErrStillReferenced on delete.
	KindForeignKey
	// KindRetry is a transient failure (deadlock, serialization failure)
	// after which the whole transaction may simply be run again.
	KindRetry
)

// Dialect describes what differs between the databases that the store
// supports.
type Dialect struct {
	// Name identifies the database in error messages, e.g. "sqlite".
	Name string
	// Classify tells what kind of failure err (possibly wrapped) is. If
	// nil, every error is KindOther.
	Classify func(err error) ErrorKind
	// SerializeWrites makes the store run at most one write at a time
	// within this process. Databases with a single writer lock (SQLite)
	// set it, so that writers queue up in Go instead of polling the lock.
	SerializeWrites bool
	// ForUpdate is appended to a SELECT inside a write transaction to lock
	// the selected rows until the transaction ends, e.g. " FOR UPDATE".
	// Databases that serialize writes (SQLite) leave it empty.
	ForUpdate string
	// ClaimRow is appended to a SELECT that claims a row for a background
	// job: a lock that leaves foreign-key checks of concurrent writers
	// alone and skips rows that another job holds, e.g.
	// " FOR NO KEY UPDATE SKIP LOCKED". Databases that serialize writes
	// leave it empty.
	ClaimRow string
}

// ClaimRowOf is ClaimRow limited to the rows of one table of a join (given
// by its alias), so that the tables joined for reading stay unlocked.
func (d Dialect) ClaimRowOf(alias string) string {
	if d.ClaimRow == "" {
		return ""
	}
	return strings.Replace(d.ClaimRow, " SKIP LOCKED", " OF "+alias+" SKIP LOCKED", 1)
}

// Option configures a Store.
type Option func(*config)

type config struct {
	now       func() time.Time
	claimHook func(table, key string)
}

// WithClock sets the clock that supplies CreatedAt for accounts and users
// passed in with a zero CreatedAt. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithClaimHook makes every garbage-collection sweep call hook right after
// it claimed its row (table "repos" or "accounts", and the row's key),
// inside the claiming transaction. Tests use it to hold claims open.
func WithClaimHook(hook func(table, key string)) Option {
	return func(c *config) { c.claimHook = hook }
}
