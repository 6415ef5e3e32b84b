package sqlcore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"keppel/internal/db"
)

// ListManifestsNotInStorage implements db.ManifestStore.
func (s *Store) ListManifestsNotInStorage(ctx context.Context, pushedBefore time.Time, limit int) ([]db.ManifestCopy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.repo_id, m.digest, a.auth_tenant_id, r.account_name, r.name, c.content
		FROM manifests m
		JOIN repos r ON r.id = m.repo_id
		JOIN accounts a ON a.name = r.account_name
		JOIN manifest_contents c ON c.repo_id = m.repo_id AND c.digest = m.digest
		WHERE m.in_storage = FALSE AND m.pushed_at < $1
		ORDER BY m.pushed_at, m.repo_id, m.digest
		LIMIT $2`, toUnix(pushedBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("list manifests not in storage: %w", err)
	}
	defer rows.Close()
	out := []db.ManifestCopy{}
	for rows.Next() {
		var c db.ManifestCopy
		if err := rows.Scan(&c.RepositoryID, &c.Digest, &c.Storage.AuthTenantID, &c.Storage.AccountName,
			&c.RepoName, &c.Content); err != nil {
			return nil, fmt.Errorf("list manifests not in storage: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list manifests not in storage: %w", err)
	}
	return out, nil
}

// MarkManifestsInStorage implements db.ManifestStore, in one transaction.
func (s *Store) MarkManifestsInStorage(ctx context.Context, keys []db.ManifestKey) ([]db.ManifestKey, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var missing []db.ManifestKey
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		missing = missing[:0]
		for _, k := range keys {
			res, err := tx.ExecContext(ctx, `UPDATE manifests SET in_storage = TRUE WHERE repo_id = $1 AND digest = $2`,
				k.RepositoryID, k.Digest)
			if err != nil {
				return err
			}
			found, err := affectedOne(res)
			if err != nil {
				return err
			}
			if !found {
				missing = append(missing, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark %d manifest(s) as in storage: %w", len(keys), s.mapErr(err, stmtWrite))
	}
	return missing, nil
}
