package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"keppel/internal/db"
	"keppel/internal/models"
)

// repoFullName is the expression that ListRepositories sorts and pages by.
// Both backends have an index on exactly this expression.
const repoFullName = `(account_name || '/' || name)`

// GetRepository implements db.RepositoryStore.
func (s *Store) GetRepository(ctx context.Context, accountName, name string) (models.Repository, error) {
	r, err := s.getRepository(ctx, s.db, accountName, name)
	if err != nil {
		return models.Repository{}, fmt.Errorf("get repository %s/%s: %w", accountName, name, notFound(err))
	}
	return r, nil
}

func (s *Store) getRepository(ctx context.Context, q querier, accountName, name string) (models.Repository, error) {
	r := models.Repository{AccountName: accountName, Name: name}
	err := q.QueryRowContext(ctx, `SELECT id FROM repos WHERE account_name = $1 AND name = $2`,
		accountName, name).Scan(&r.ID)
	return r, err
}

// FindOrCreateRepository implements db.RepositoryStore. An existing
// repository is found without writing anything.
func (s *Store) FindOrCreateRepository(ctx context.Context, accountName, name string) (models.Repository, error) {
	r, err := s.getRepository(ctx, s.db, accountName, name)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return models.Repository{}, fmt.Errorf("find repository %s/%s: %w", accountName, name, err)
	}

	created := false
	err = s.write(ctx, func(q querier) error {
		err := q.QueryRowContext(ctx, `INSERT INTO repos (account_name, name) VALUES ($1, $2)
			ON CONFLICT (account_name, name) DO NOTHING RETURNING id`,
			accountName, name).Scan(&r.ID)
		switch {
		case err == nil:
			created = true
			return nil
		case errors.Is(err, sql.ErrNoRows):
			return nil // created concurrently, read it below
		default:
			return err
		}
	})
	if err != nil {
		err = s.mapErr(err, stmtWrite)
		if errors.Is(err, db.ErrReferenceMissing) {
			err = fmt.Errorf("account %q does not exist: %w", accountName, err)
		}
		return models.Repository{}, fmt.Errorf("create repository %s/%s: %w", accountName, name, err)
	}
	if created {
		return r, nil
	}
	r, err = s.getRepository(ctx, s.db, accountName, name)
	if err != nil {
		return models.Repository{}, fmt.Errorf("find repository %s/%s after concurrent creation: %w", accountName, name, notFound(err))
	}
	return r, nil
}

// ListRepositories implements db.RepositoryStore.
func (s *Store) ListRepositories(ctx context.Context, afterFullName string, limit int) ([]models.Repository, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, account_name, name FROM repos
		WHERE `+repoFullName+` > $1 ORDER BY `+repoFullName+limitClause(limit), afterFullName)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	out := []models.Repository{}
	for rows.Next() {
		var r models.Repository
		if err := rows.Scan(&r.ID, &r.AccountName, &r.Name); err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return out, nil
}

// ListRepositoryStats implements db.TenancyStore. SizeBytes is the sum of
// the sizes of the distinct blobs that the repository's manifests reference
// (a layer shared by several manifests counts once); the manifests' own
// bytes are not included. PushedAt is the newest manifest's push time, nil
// for a repository without manifests.
func (s *Store) ListRepositoryStats(ctx context.Context, accountName, after string, limit int) ([]models.RepositoryStats, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.id, r.name,
			(SELECT COUNT(*) FROM manifests m WHERE m.repo_id = r.id),
			(SELECT COUNT(*) FROM tags t WHERE t.repo_id = r.id),
			(SELECT CAST(COALESCE(SUM(b.size_bytes), 0) AS BIGINT) FROM blobs b
				WHERE b.id IN (SELECT mbr.blob_id FROM manifest_blob_refs mbr WHERE mbr.repo_id = r.id)),
			(SELECT MAX(m.pushed_at) FROM manifests m WHERE m.repo_id = r.id)
		FROM repos r WHERE r.account_name = $1 AND r.name > $2
		ORDER BY r.name`+limitClause(limit), accountName, after)
	if err != nil {
		return nil, fmt.Errorf("list repository statistics of account %q: %w", accountName, err)
	}
	defer rows.Close()
	out := []models.RepositoryStats{}
	for rows.Next() {
		st := models.RepositoryStats{Repository: models.Repository{AccountName: accountName}}
		var pushedAt sql.NullInt64
		if err := rows.Scan(&st.ID, &st.Name, &st.ManifestCount, &st.TagCount, &st.SizeBytes, &pushedAt); err != nil {
			return nil, fmt.Errorf("list repository statistics of account %q: %w", accountName, err)
		}
		st.PushedAt = fromNullUnix(pushedAt)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list repository statistics of account %q: %w", accountName, err)
	}
	return out, nil
}

// DeleteRepository implements db.TenancyStore. It takes the repository's
// blob mounts and uploads with it (the blobs themselves stay in the account,
// so usage does not change). Without manifests the repository has no
// references, so nothing RESTRICTs the deletion of its mounts. On PostgreSQL
// the repository row is locked first: a manifest push that comes in at the
// same moment then either commits before (and the delete is refused) or
// fails to find the repository, and is never deleted by the cascade from
// repos without its usage being taken back.
func (s *Store) DeleteRepository(ctx context.Context, repoID int64) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM repos WHERE id = $1`+s.dialect.ForUpdate, repoID).Scan(&exists)
		if err != nil {
			return notFound(err)
		}
		var digest string
		err = tx.QueryRowContext(ctx, `SELECT digest FROM manifests WHERE repo_id = $1 ORDER BY digest LIMIT 1`,
			repoID).Scan(&digest)
		switch {
		case err == nil:
			return fmt.Errorf("manifest %s remains: %w", digest, db.ErrStillReferenced)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("find manifests: %w", err)
		}
		for _, table := range []string{"blob_mounts", "uploads"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE repo_id = $1`, repoID); err != nil {
				return fmt.Errorf("delete %s: %w", table, s.mapErr(err, stmtDelete))
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM repos WHERE id = $1`, repoID); err != nil {
			return s.mapErr(err, stmtDelete)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete repository %d: %w", repoID, err)
	}
	return nil
}

// maxVisibleTenants bounds the tenants of one catalog query; users with
// roles in more tenants than this see the first ones only.
const maxVisibleTenants = refsPerStatement - 2

// ListRepositoriesOfTenants implements db.TenancyStore.
func (s *Store) ListRepositoriesOfTenants(ctx context.Context, tenantIDs []string, afterFullName string, limit int) ([]models.Repository, error) {
	ids := dedup(tenantIDs)
	if len(ids) == 0 {
		return []models.Repository{}, nil
	}
	ids = ids[:min(len(ids), maxVisibleTenants)]
	args := []any{afterFullName}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, account_name, name FROM repos
		WHERE `+repoFullName+` > $1 AND account_name IN
			(SELECT a.name FROM accounts a WHERE a.auth_tenant_id IN (`+placeholders(2, len(ids))+`))
		ORDER BY `+repoFullName+limitClause(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list repositories of %d tenants: %w", len(ids), err)
	}
	defer rows.Close()
	out := []models.Repository{}
	for rows.Next() {
		var r models.Repository
		if err := rows.Scan(&r.ID, &r.AccountName, &r.Name); err != nil {
			return nil, fmt.Errorf("list repositories of tenants: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list repositories of tenants: %w", err)
	}
	return out, nil
}
