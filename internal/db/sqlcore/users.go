package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

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

// ListUsers implements db.TenancyStore.
func (s *Store) ListUsers(ctx context.Context) ([]models.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, password_hash, is_admin, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []models.User{}
	for rows.Next() {
		var (
			u         models.User
			createdAt int64
		)
		if err := rows.Scan(&u.Name, &u.PasswordHash, &u.IsAdmin, &createdAt); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt = fromUnix(createdAt)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// DeleteUser implements db.TenancyStore. Roles and API keys go with the
// user (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	var deleted bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM users WHERE name = $1`, name)
		if err != nil {
			return err
		}
		deleted, err = affectedOne(res)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", name, s.mapErr(err, stmtDelete))
	}
	if !deleted {
		return fmt.Errorf("delete user %q: %w", name, db.ErrNotFound)
	}
	return nil
}

// SetRole implements db.TenancyStore. A role other than viewer, pusher,
// admin or "" is refused (with an error that matches no sentinel). Removing
// a role that the user does not have is not an error, but the user must
// exist either way.
func (s *Store) SetRole(ctx context.Context, username, tenantID string, role models.Role) error {
	switch role {
	case "", models.RoleViewer, models.RolePusher, models.RoleAdmin:
	default:
		return fmt.Errorf("set role of user %q in tenant %q: invalid role %q", username, tenantID, role)
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if role != "" {
			_, err := tx.ExecContext(ctx, `INSERT INTO tenant_roles (user_name, auth_tenant_id, role) VALUES ($1, $2, $3)
				ON CONFLICT (user_name, auth_tenant_id) DO UPDATE SET role = excluded.role`,
				username, tenantID, string(role))
			err = s.mapErr(err, stmtWrite)
			if errors.Is(err, db.ErrReferenceMissing) {
				err = fmt.Errorf("user does not exist: %w", err)
			}
			return err
		}
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name = $1`, username).Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user does not exist: %w", db.ErrReferenceMissing)
		}
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tenant_roles WHERE user_name = $1 AND auth_tenant_id = $2`,
			username, tenantID)
		return err
	})
	if err != nil {
		return fmt.Errorf("set role of user %q in tenant %q: %w", username, tenantID, err)
	}
	return nil
}

// ListRoles implements db.TenancyStore.
func (s *Store) ListRoles(ctx context.Context, username string) (map[string]models.Role, error) {
	out, err := s.queryRoles(ctx, `SELECT auth_tenant_id, role FROM tenant_roles WHERE user_name = $1`, username)
	if err != nil {
		return nil, fmt.Errorf("list roles of user %q: %w", username, err)
	}
	return out, nil
}

// ListTenantMembers implements db.TenancyStore.
func (s *Store) ListTenantMembers(ctx context.Context, tenantID string) (map[string]models.Role, error) {
	out, err := s.queryRoles(ctx, `SELECT user_name, role FROM tenant_roles WHERE auth_tenant_id = $1`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list members of tenant %q: %w", tenantID, err)
	}
	return out, nil
}

// queryRoles runs a query for (key, role) pairs and returns them as a map.
func (s *Store) queryRoles(ctx context.Context, query string, arg string) (map[string]models.Role, error) {
	rows, err := s.db.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]models.Role{}
	for rows.Next() {
		var key, role string
		if err := rows.Scan(&key, &role); err != nil {
			return nil, err
		}
		out[key] = models.Role(role)
	}
	return out, rows.Err()
}

const apiKeyColumns = `id, user_name, name, secret_hash, created_at, expires_at, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (models.APIKey, error) {
	var (
		k                    models.APIKey
		createdAt            int64
		expiresAt, revokedAt sql.NullInt64
	)
	err := row.Scan(&k.ID, &k.Username, &k.Name, &k.SecretHash, &createdAt, &expiresAt, &revokedAt)
	k.CreatedAt = fromUnix(createdAt)
	k.ExpiresAt = fromNullUnix(expiresAt)
	k.RevokedAt = fromNullUnix(revokedAt)
	return k, err
}

// CreateAPIKey implements db.TenancyStore. A zero CreatedAt means now.
func (s *Store) CreateAPIKey(ctx context.Context, k models.APIKey) error {
	createdAt := k.CreatedAt
	if createdAt.IsZero() {
		createdAt = s.now()
	}
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Username, k.Name, k.SecretHash, toUnix(createdAt), toNullUnix(k.ExpiresAt), toNullUnix(k.RevokedAt))
		return err
	})
	if err != nil {
		err = s.mapErr(err, stmtWrite)
		if errors.Is(err, db.ErrReferenceMissing) {
			err = fmt.Errorf("user %q does not exist: %w", k.Username, err)
		}
		return fmt.Errorf("create API key %q: %w", k.ID, err)
	}
	return nil
}

// GetAPIKey implements db.TenancyStore.
func (s *Store) GetAPIKey(ctx context.Context, id string) (models.APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1`, id))
	if err != nil {
		return models.APIKey{}, fmt.Errorf("get API key %q: %w", id, notFound(err))
	}
	return k, nil
}

// ListAPIKeys implements db.TenancyStore. Keys created in the same second
// are ordered by ID, descending.
func (s *Store) ListAPIKeys(ctx context.Context, username string) ([]models.APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE user_name = $1
		ORDER BY created_at DESC, id DESC`, username)
	if err != nil {
		return nil, fmt.Errorf("list API keys of user %q: %w", username, err)
	}
	defer rows.Close()
	out := []models.APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list API keys of user %q: %w", username, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API keys of user %q: %w", username, err)
	}
	return out, nil
}

// RevokeAPIKey implements db.TenancyStore. Revoking a revoked key again
// succeeds and keeps the first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, username, id string, at time.Time) error {
	var found bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3)
			WHERE id = $1 AND user_name = $2`, id, username, toUnix(at))
		if err != nil {
			return err
		}
		found, err = affectedOne(res)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke API key %q of user %q: %w", id, username, s.mapErr(err, stmtWrite))
	}
	if !found {
		return fmt.Errorf("revoke API key %q of user %q: %w", id, username, db.ErrNotFound)
	}
	return nil
}
