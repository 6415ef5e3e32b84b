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
