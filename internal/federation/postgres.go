package federation

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgtype"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Postgres keeps the claims of all instances in one PostgreSQL database
// (its own, or a schema every instance reaches), in the table
// keppel_federation_claims, which it creates if needed.
type Postgres struct {
	db *sql.DB
	// self is this instance's public host name.
	self string
}

var _ Driver = (*Postgres)(nil)

const claimsSchema = `CREATE TABLE IF NOT EXISTS keppel_federation_claims (
	account_name        TEXT PRIMARY KEY,
	primary_hostname    TEXT NOT NULL,
	replica_hostnames   TEXT[] NOT NULL DEFAULT '{}',
	sublease_token_hash TEXT NOT NULL DEFAULT '',
	claimed_at          TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// NewPostgres connects to the claims database at url as the instance with
// the public host name self.
func NewPostgres(ctx context.Context, url, self string) (*Postgres, error) {
	if self == "" {
		return nil, errors.New("federation: this registry's public host name is required")
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("federation: opening the claims database: %w", err)
	}
	if _, err := db.ExecContext(ctx, claimsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("federation: creating the claims table: %w", err)
	}
	return &Postgres{db: db, self: self}, nil
}

// Close closes the database connections.
func (p *Postgres) Close() error { return p.db.Close() }

type claim struct {
	primary   string
	replicas  []string
	tokenHash string
}

// lockClaim reads the claim of name in tx, locking its row (found is false
// if there is none).
func lockClaim(ctx context.Context, tx *sql.Tx, name string) (c claim, found bool, err error) {
	err = tx.QueryRowContext(ctx, `SELECT primary_hostname, replica_hostnames, sublease_token_hash
		FROM keppel_federation_claims WHERE account_name = $1 FOR UPDATE`, name).
		Scan(&c.primary, pgtype.NewMap().SQLScanner(&c.replicas), &c.tokenHash)
	if errors.Is(err, sql.ErrNoRows) {
		return claim{}, false, nil
	}
	if err != nil {
		return claim{}, false, fmt.Errorf("reading the claim of %s: %w", name, err)
	}
	return c, true, nil
}

// inTx runs fn in a transaction.
func (p *Postgres) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("federation: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("federation: %w", err)
	}
	return nil
}

// ClaimAccountName implements Driver.
func (p *Postgres) ClaimAccountName(ctx context.Context, name, upstream, token string) error {
	if upstream == "" {
		if _, err := p.db.ExecContext(ctx, `INSERT INTO keppel_federation_claims (account_name, primary_hostname)
			VALUES ($1, $2) ON CONFLICT (account_name) DO NOTHING`, name, p.self); err != nil {
			return fmt.Errorf("federation: claiming %s: %w", name, err)
		}
		primary, err := p.FindPrimaryAccount(ctx, name)
		if err != nil {
			return err
		}
		if primary != p.self {
			return fmt.Errorf("%w: %s holds the account %s", ErrNameTaken, primary, name)
		}
		return nil
	}
	return p.inTx(ctx, func(tx *sql.Tx) error {
		c, found, err := lockClaim(ctx, tx, name)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("%w: %s holds no account %s to replicate", ErrBadSubleaseToken, upstream, name)
		case c.primary == p.self:
			return fmt.Errorf("%w: this registry holds the primary account %s", ErrNameTaken, name)
		case c.primary != upstream:
			return fmt.Errorf("%w: %s, not %s, holds the account %s", ErrNameTaken, c.primary, upstream, name)
		case slices.Contains(c.replicas, p.self):
			return nil
		}
		t, err := parseSubleaseToken(token)
		if err != nil {
			return err
		}
		if t.Account != name || t.Primary != upstream || c.tokenHash == "" ||
			subtle.ConstantTimeCompare([]byte(hashSecret(t.Secret)), []byte(c.tokenHash)) != 1 {
			return fmt.Errorf("%w: the token is not the current one of %s at %s (each token is good for one replica)", ErrBadSubleaseToken, name, upstream)
		}
		_, err = tx.ExecContext(ctx, `UPDATE keppel_federation_claims
			SET sublease_token_hash = '', replica_hostnames = array_append(replica_hostnames, $2)
			WHERE account_name = $1`, name, p.self)
		if err != nil {
			return fmt.Errorf("federation: recording the replica of %s: %w", name, err)
		}
		return nil
	})
}

// IssueSubleaseToken implements Driver. A new token replaces an unused
// earlier one.
func (p *Postgres) IssueSubleaseToken(ctx context.Context, name string) (string, error) {
	token, hash := newSubleaseToken(name, p.self)
	res, err := p.db.ExecContext(ctx, `UPDATE keppel_federation_claims SET sublease_token_hash = $3
		WHERE account_name = $1 AND primary_hostname = $2`, name, p.self, hash)
	if err != nil {
		return "", fmt.Errorf("federation: issuing a sublease token for %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", fmt.Errorf("%w: %s", ErrNotPrimary, name)
	}
	return token, nil
}

// ForfeitAccountName implements Driver.
func (p *Postgres) ForfeitAccountName(ctx context.Context, name string) error {
	_, err := p.db.ExecContext(ctx, `DELETE FROM keppel_federation_claims WHERE account_name = $1 AND primary_hostname = $2`, name, p.self)
	if err == nil {
		_, err = p.db.ExecContext(ctx, `UPDATE keppel_federation_claims
			SET replica_hostnames = array_remove(replica_hostnames, $2) WHERE account_name = $1`, name, p.self)
	}
	if err != nil {
		return fmt.Errorf("federation: forfeiting %s: %w", name, err)
	}
	return nil
}

// FindPrimaryAccount implements Driver.
func (p *Postgres) FindPrimaryAccount(ctx context.Context, name string) (string, error) {
	var primary string
	err := p.db.QueryRowContext(ctx, `SELECT primary_hostname FROM keppel_federation_claims WHERE account_name = $1`, name).Scan(&primary)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return "", fmt.Errorf("federation: looking up %s: %w", name, err)
	}
	return primary, nil
}

// RecordExistingAccount implements Driver.
func (p *Postgres) RecordExistingAccount(ctx context.Context, name, upstream string) error {
	if upstream == "" {
		return p.ClaimAccountName(ctx, name, "", "")
	}
	_, err := p.db.ExecContext(ctx, `INSERT INTO keppel_federation_claims (account_name, primary_hostname, replica_hostnames)
		VALUES ($1, $2, ARRAY[$3]) ON CONFLICT (account_name) DO UPDATE
		SET replica_hostnames = array_append(keppel_federation_claims.replica_hostnames, $3)
		WHERE keppel_federation_claims.primary_hostname = $2
		AND NOT $3 = ANY(keppel_federation_claims.replica_hostnames)`, name, upstream, p.self)
	if err != nil {
		return fmt.Errorf("federation: recording the replica %s: %w", name, err)
	}
	primary, err := p.FindPrimaryAccount(ctx, name)
	if err != nil {
		return err
	}
	if primary != upstream {
		return fmt.Errorf("%w: %s, not %s, holds the account %s", ErrNameTaken, primary, upstream, name)
	}
	return nil
}
