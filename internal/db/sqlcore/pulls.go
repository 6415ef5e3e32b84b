package sqlcore

import (
	"context"
	"database/sql"
	"fmt"

	"keppel/internal/db"
)

// RecordPulls implements db.TenancyStore. It only ever moves
// last_pulled_at forward, so batches may be applied in any order.
func (s *Store) RecordPulls(ctx context.Context, pulls []db.Pull) error {
	if len(pulls) == 0 {
		return nil
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		for _, p := range pulls {
			at := toUnix(p.At)
			if _, err := tx.ExecContext(ctx, `UPDATE manifests SET last_pulled_at = $3
				WHERE repo_id = $1 AND digest = $2 AND (last_pulled_at IS NULL OR last_pulled_at < $3)`,
				p.RepositoryID, p.Digest, at); err != nil {
				return err
			}
			if p.Tag == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE tags SET last_pulled_at = $3
				WHERE repo_id = $1 AND name = $2 AND (last_pulled_at IS NULL OR last_pulled_at < $3)`,
				p.RepositoryID, p.Tag, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d pulls: %w", len(pulls), s.mapErr(err, stmtWrite))
	}
	return nil
}
