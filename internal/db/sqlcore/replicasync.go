package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"keppel/internal/models"
)

// ClaimReplicaSync implements db.GCStore.
func (s *Store) ClaimReplicaSync(ctx context.Context, now, next time.Time) (models.Account, models.Repository, bool, error) {
	var (
		repo    models.Repository
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		repo, claimed = models.Repository{}, false
		err := tx.QueryRowContext(ctx, `SELECT r.id, r.account_name, r.name FROM repos r
			JOIN accounts a ON a.name = r.account_name
			WHERE a.replication_json <> '' AND NOT a.is_deleting
				AND (r.next_replica_sync_at IS NULL OR r.next_replica_sync_at <= $1)
			ORDER BY r.next_replica_sync_at NULLS FIRST, r.id LIMIT 1`+s.dialect.ClaimRowOf("r"),
			toUnix(now)).Scan(&repo.ID, &repo.AccountName, &repo.Name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim repository: %w", err)
		}
		claimed = true
		s.claimed("repos", fmt.Sprint(repo.ID))
		_, err = tx.ExecContext(ctx, `UPDATE repos SET next_replica_sync_at = $2 WHERE id = $1`, repo.ID, toUnix(next))
		return err
	})
	if err != nil || !claimed {
		return models.Account{}, models.Repository{}, false, wrapErr("claim replica sync", err)
	}
	a, err := s.GetAccount(ctx, repo.AccountName)
	if err != nil {
		return models.Account{}, models.Repository{}, false, fmt.Errorf("claim replica sync: %w", err)
	}
	return a, repo, true, nil
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
