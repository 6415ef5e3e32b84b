package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"keppel/internal/models"
)

// Usage is kept in the table tenant_usage, one row per auth tenant, and
// changed by the transactions that add or remove manifests and blobs, with
// one atomic upsert each (see addUsage). Reading it is a key lookup.

// usageUpsert adds $2 manifests and $3 bytes to the usage of the tenant
// that the SELECT's FROM … WHERE (appended by the caller, binding $1)
// yields. It is one statement: on PostgreSQL a concurrent transaction that
// upserts the same row waits for the row lock and then adds to the committed
// result, so no change is lost. (SQLite needs the WHERE clause to parse the
// ON CONFLICT after a SELECT unambiguously; every caller has one.)
const (
	usageUpsertHead = `INSERT INTO tenant_usage (auth_tenant_id, manifests, bytes)
		SELECT a.auth_tenant_id, CAST($2 AS BIGINT), CAST($3 AS BIGINT) `
	usageUpsertTail = `
		ON CONFLICT (auth_tenant_id) DO UPDATE SET
			manifests = tenant_usage.manifests + excluded.manifests,
			bytes = tenant_usage.bytes + excluded.bytes`
)

// addAccountUsage adds manifests and bytes (negative to subtract) to the
// usage of the tenant that owns the account.
func (s *Store) addAccountUsage(ctx context.Context, tx *sql.Tx, accountName string, manifests, bytes int64) error {
	return s.addUsage(ctx, tx, `FROM accounts a WHERE a.name = $1`, accountName, manifests, bytes)
}

// addRepoUsage adds manifests and bytes (negative to subtract) to the usage
// of the tenant that owns the repository's account.
func (s *Store) addRepoUsage(ctx context.Context, tx *sql.Tx, repoID int64, manifests, bytes int64) error {
	return s.addUsage(ctx, tx, `FROM repos r JOIN accounts a ON a.name = r.account_name WHERE r.id = $1`,
		repoID, manifests, bytes)
}

func (s *Store) addUsage(ctx context.Context, tx *sql.Tx, fromWhere string, key any, manifests, bytes int64) error {
	if manifests == 0 && bytes == 0 {
		return nil
	}
	res, err := tx.ExecContext(ctx, usageUpsertHead+fromWhere+usageUpsertTail, key, manifests, bytes)
	if err != nil {
		return fmt.Errorf("update tenant usage: %w", err)
	}
	ok, err := affectedOne(res)
	if err != nil {
		return fmt.Errorf("update tenant usage: %w", err)
	}
	if !ok {
		// The caller has just written rows that belong to the account,
		// so this cannot happen short of a bug.
		return fmt.Errorf("update tenant usage: no account found for %v", key)
	}
	return nil
}

// deleteBlobs deletes the blob rows that the condition (on table blobs,
// binding $1) selects and takes their sizes off their tenants' usage, in the
// caller's transaction. The foreign key from blob_mounts refuses to delete a
// mounted blob (ErrStillReferenced). The blobs' content in storage is the
// caller's business. DeleteAccount uses it for all blobs of an account; a
// garbage collector deletes single blobs with "id = $1".
func (s *Store) deleteBlobs(ctx context.Context, tx *sql.Tx, cond string, arg any) error {
	rows, err := tx.QueryContext(ctx, `DELETE FROM blobs WHERE `+cond+` RETURNING account_name, size_bytes`, arg)
	if err != nil {
		return fmt.Errorf("delete blobs: %w", s.mapErr(err, stmtDelete))
	}
	freed := map[string]int64{}
	var accounts []string // in the order found, for a deterministic lock order
	for rows.Next() {
		var (
			account string
			size    int64
		)
		if err := rows.Scan(&account, &size); err != nil {
			rows.Close()
			return fmt.Errorf("delete blobs: %w", err)
		}
		if _, seen := freed[account]; !seen {
			accounts = append(accounts, account)
		}
		freed[account] += size
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("delete blobs: %w", s.mapErr(err, stmtDelete))
	}
	for _, account := range accounts {
		if err := s.addAccountUsage(ctx, tx, account, 0, -freed[account]); err != nil {
			return err
		}
	}
	return nil
}

// deleteAccountBlobs deletes every blob row of the account; see deleteBlobs.
func (s *Store) deleteAccountBlobs(ctx context.Context, tx *sql.Tx, accountName string) error {
	return s.deleteBlobs(ctx, tx, `account_name = $1`, accountName)
}

// GetQuota implements db.TenancyStore. SizeBytes is -1 for "unlimited".
func (s *Store) GetQuota(ctx context.Context, tenantID string) (models.Quota, error) {
	q := models.Quota{AuthTenantID: tenantID}
	err := s.db.QueryRowContext(ctx, `SELECT manifests, bytes FROM quotas WHERE auth_tenant_id = $1`,
		tenantID).Scan(&q.ManifestCount, &q.SizeBytes)
	if err != nil {
		return models.Quota{}, fmt.Errorf("get quota of tenant %q: %w", tenantID, notFound(err))
	}
	return q, nil
}

// PutQuota implements db.TenancyStore. SizeBytes -1 means "unlimited".
func (s *Store) PutQuota(ctx context.Context, q models.Quota) error {
	err := s.write(ctx, func(qr querier) error {
		_, err := qr.ExecContext(ctx, `INSERT INTO quotas (auth_tenant_id, manifests, bytes) VALUES ($1, $2, $3)
			ON CONFLICT (auth_tenant_id) DO UPDATE SET manifests = excluded.manifests, bytes = excluded.bytes`,
			q.AuthTenantID, q.ManifestCount, q.SizeBytes)
		return err
	})
	if err != nil {
		return fmt.Errorf("put quota of tenant %q: %w", q.AuthTenantID, s.mapErr(err, stmtWrite))
	}
	return nil
}

// GetUsage implements db.TenancyStore.
func (s *Store) GetUsage(ctx context.Context, tenantID string) (models.Usage, error) {
	u := models.Usage{AuthTenantID: tenantID}
	err := s.db.QueryRowContext(ctx, `SELECT manifests, bytes FROM tenant_usage WHERE auth_tenant_id = $1`,
		tenantID).Scan(&u.ManifestCount, &u.SizeBytes)
	if errors.Is(err, sql.ErrNoRows) {
		return u, nil // no row: nothing used
	}
	if err != nil {
		return models.Usage{}, fmt.Errorf("get usage of tenant %q: %w", tenantID, err)
	}
	return u, nil
}
