package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"keppel/internal/db"

	"keppel/internal/models"
)

const accountColumns = `name, auth_tenant_id, is_deleting, rbac_policies_json, gc_policies_json,
	tag_policies_json, validation_rule, platform_filter_json, is_managed, is_protected, created_at, replication_json,
	security_scan_policies_json`

func scanAccount(row interface{ Scan(...any) error }) (models.Account, error) {
	var (
		a         models.Account
		createdAt int64
	)
	err := row.Scan(&a.Name, &a.AuthTenantID, &a.IsDeleting, &a.RBACPoliciesJSON, &a.GCPoliciesJSON,
		&a.TagPoliciesJSON, &a.ValidationRule, &a.PlatformFilterJSON, &a.IsManaged, &a.IsProtected, &createdAt,
		&a.ReplicationJSON, &a.SecurityScanPoliciesJSON)
	a.CreatedAt = fromUnix(createdAt)
	return a, err
}

// CreateAccount implements db.AccountStore.
func (s *Store) CreateAccount(ctx context.Context, a models.Account) error {
	createdAt := a.CreatedAt
	if createdAt.IsZero() {
		createdAt = s.now()
	}
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			a.Name, a.AuthTenantID, a.IsDeleting, a.RBACPoliciesJSON, a.GCPoliciesJSON,
			a.TagPoliciesJSON, a.ValidationRule, a.PlatformFilterJSON, a.IsManaged, a.IsProtected,
			toUnix(createdAt), a.ReplicationJSON, a.SecurityScanPoliciesJSON)
		return err
	})
	if err != nil {
		return fmt.Errorf("create account %q: %w", a.Name, s.mapErr(err, stmtWrite))
	}
	return nil
}

// GetAccount implements db.AccountStore.
func (s *Store) GetAccount(ctx context.Context, name string) (models.Account, error) {
	a, err := scanAccount(s.db.QueryRowContext(ctx,
		`SELECT `+accountColumns+` FROM accounts WHERE name = $1`, name))
	if err != nil {
		return models.Account{}, fmt.Errorf("get account %q: %w", name, notFound(err))
	}
	return a, nil
}

// ListAccounts implements db.AccountStore.
func (s *Store) ListAccounts(ctx context.Context) ([]models.Account, error) {
	out, err := s.queryAccounts(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// queryAccounts runs a query that selects accountColumns.
func (s *Store) queryAccounts(ctx context.Context, query string, args ...any) ([]models.Account, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []models.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateAccount implements db.TenancyStore. It replaces every setting
// except the name, the auth tenant and the creation time. A non-empty
// a.AuthTenantID must match the stored one (ErrConflict otherwise), so
// that a caller cannot move an account to another tenant by accident; an
// empty one is not checked.
func (s *Store) UpdateAccount(ctx context.Context, a models.Account) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var tenantID string
		err := tx.QueryRowContext(ctx, `SELECT auth_tenant_id FROM accounts WHERE name = $1`+s.dialect.ForUpdate,
			a.Name).Scan(&tenantID)
		if err != nil {
			return notFound(err)
		}
		if a.AuthTenantID != "" && a.AuthTenantID != tenantID {
			return fmt.Errorf("the auth tenant cannot change from %q to %q: %w", tenantID, a.AuthTenantID, db.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET is_deleting = $2, rbac_policies_json = $3,
			gc_policies_json = $4, tag_policies_json = $5, validation_rule = $6, platform_filter_json = $7,
			is_managed = $8, is_protected = $9, replication_json = $10, security_scan_policies_json = $11
			WHERE name = $1`,
			a.Name, a.IsDeleting, a.RBACPoliciesJSON, a.GCPoliciesJSON, a.TagPoliciesJSON, a.ValidationRule,
			a.PlatformFilterJSON, a.IsManaged, a.IsProtected, a.ReplicationJSON, a.SecurityScanPoliciesJSON)
		return err
	})
	if err != nil {
		return fmt.Errorf("update account %q: %w", a.Name, err)
	}
	return nil
}

// DeleteAccount implements db.TenancyStore. Once the repositories are gone,
// the account's blobs cannot be mounted anywhere (blobs are mounted only
// within their account), so their rows are deleted with the account and the
// tenant's byte usage goes down by their sizes, in the same transaction. The
// blobs' content is not touched: the caller removes the account's storage
// area (while the account is marked as deleting, so that nothing new
// arrives) before it deletes the account. Should a blob still be mounted
// after all, the delete is refused with ErrStillReferenced.
func (s *Store) DeleteAccount(ctx context.Context, name string) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE name = $1`+s.dialect.ForUpdate,
			name).Scan(&exists)
		if err != nil {
			return notFound(err)
		}
		var repoName string
		err = tx.QueryRowContext(ctx, `SELECT name FROM repos WHERE account_name = $1 ORDER BY name LIMIT 1`,
			name).Scan(&repoName)
		switch {
		case err == nil:
			return fmt.Errorf("repository %q remains: %w", repoName, db.ErrStillReferenced)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("find repositories: %w", err)
		}
		if err := s.deleteAccountBlobs(ctx, tx, name); err != nil {
			return err
		}
		// The foreign keys from repos and blobs refuse the delete as
		// well, should a repository have come in since the check.
		if _, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE name = $1`, name); err != nil {
			return s.mapErr(err, stmtDelete)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete account %q: %w", name, err)
	}
	return nil
}

// ListAccountsOfTenants implements db.TenancyStore.
func (s *Store) ListAccountsOfTenants(ctx context.Context, tenantIDs []string) ([]models.Account, error) {
	out := []models.Account{}
	ids := dedup(tenantIDs)
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), refsPerStatement)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		accounts, err := s.queryAccounts(ctx, `SELECT `+accountColumns+` FROM accounts
			WHERE auth_tenant_id IN (`+placeholders(1, len(chunk))+`) ORDER BY name`, args...)
		if err != nil {
			return nil, fmt.Errorf("list accounts of %d tenants: %w", len(tenantIDs), err)
		}
		out = append(out, accounts...)
	}
	// Each chunk is sorted; together they need sorting again.
	slices.SortFunc(out, func(a, b models.Account) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// placeholders returns "$first, $first+1, …" with n entries.
func placeholders(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", first+i)
	}
	return b.String()
}
