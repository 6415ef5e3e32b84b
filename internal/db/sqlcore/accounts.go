package sqlcore

import (
	"context"
	"fmt"

	"keppel/internal/models"
)

const accountColumns = `name, auth_tenant_id, is_deleting, rbac_policies_json, gc_policies_json,
	tag_policies_json, validation_rule, platform_filter_json, created_at`

func scanAccount(row interface{ Scan(...any) error }) (models.Account, error) {
	var (
		a         models.Account
		createdAt int64
	)
	err := row.Scan(&a.Name, &a.AuthTenantID, &a.IsDeleting, &a.RBACPoliciesJSON, &a.GCPoliciesJSON,
		&a.TagPoliciesJSON, &a.ValidationRule, &a.PlatformFilterJSON, &createdAt)
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
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			a.Name, a.AuthTenantID, a.IsDeleting, a.RBACPoliciesJSON, a.GCPoliciesJSON,
			a.TagPoliciesJSON, a.ValidationRule, a.PlatformFilterJSON, toUnix(createdAt))
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
	rows, err := s.db.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	out := []models.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// GetUser implements db.UserStore.
func (s *Store) GetUser(ctx context.Context, name string) (models.User, error) {
	var (
		u         models.User
		createdAt int64
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT name, password_hash, is_admin, created_at FROM users WHERE name = $1`, name,
	).Scan(&u.Name, &u.PasswordHash, &u.IsAdmin, &createdAt)
	if err != nil {
		return models.User{}, fmt.Errorf("get user %q: %w", name, notFound(err))
	}
	u.CreatedAt = fromUnix(createdAt)
	return u, nil
}

// PutUser implements db.UserStore. When the user exists, its password hash
// and admin flag are replaced and its creation time is kept.
func (s *Store) PutUser(ctx context.Context, u models.User) error {
	createdAt := u.CreatedAt
	if createdAt.IsZero() {
		createdAt = s.now()
	}
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO users (name, password_hash, is_admin, created_at)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET
				password_hash = excluded.password_hash, is_admin = excluded.is_admin`,
			u.Name, u.PasswordHash, u.IsAdmin, toUnix(createdAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("put user %q: %w", u.Name, s.mapErr(err, stmtWrite))
	}
	return nil
}
