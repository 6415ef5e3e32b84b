package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// ClaimGCPolicyRun implements db.GCStore.
func (s *Store) ClaimGCPolicyRun(ctx context.Context, now, next time.Time) (models.Repository, bool, error) {
	var (
		r       models.Repository
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		claimed = false
		err := tx.QueryRowContext(ctx, `SELECT r.id, r.account_name, r.name FROM repos r
			JOIN accounts a ON a.name = r.account_name
			WHERE a.gc_policies_json <> '' AND NOT a.is_deleting
			AND (r.next_gc_at IS NULL OR r.next_gc_at <= $1)
			ORDER BY r.next_gc_at NULLS FIRST, r.id LIMIT 1`+s.dialect.ClaimRowOf("r"),
			toUnix(now)).Scan(&r.ID, &r.AccountName, &r.Name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim repository: %w", err)
		}
		claimed = true
		s.claimed("repos", strconv.FormatInt(r.ID, 10))
		_, err = tx.ExecContext(ctx, `UPDATE repos SET next_gc_at = $2 WHERE id = $1`, r.ID, toUnix(next))
		return err
	})
	if err != nil {
		return models.Repository{}, false, fmt.Errorf("claim GC policy run: %w", err)
	}
	return r, claimed, nil
}

// ListGCCandidates implements db.GCStore.
func (s *Store) ListGCCandidates(ctx context.Context, repoID int64) ([]db.GCCandidate, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.digest, m.pushed_at, m.last_pulled_at,
			EXISTS (SELECT 1 FROM manifest_manifest_refs r WHERE r.repo_id = m.repo_id AND r.child_digest = m.digest),
			EXISTS (SELECT 1 FROM manifests s WHERE s.repo_id = m.repo_id AND s.subject_digest = m.digest),
			t.name
		FROM manifests m LEFT JOIN tags t ON t.repo_id = m.repo_id AND t.digest = m.digest
		WHERE m.repo_id = $1 ORDER BY m.digest, t.name`, repoID)
	if err != nil {
		return nil, fmt.Errorf("list GC candidates of repository %d: %w", repoID, err)
	}
	defer rows.Close()
	var out []db.GCCandidate
	for rows.Next() {
		var (
			c            db.GCCandidate
			pushedAt     int64
			lastPulledAt sql.NullInt64
			tag          sql.NullString
		)
		if err := rows.Scan(&c.Digest, &pushedAt, &lastPulledAt, &c.IsChild, &c.IsSubject, &tag); err != nil {
			return nil, fmt.Errorf("list GC candidates of repository %d: %w", repoID, err)
		}
		if len(out) == 0 || out[len(out)-1].Digest != c.Digest {
			c.PushedAt = fromUnix(pushedAt)
			if lastPulledAt.Valid {
				c.LastPulledAt = fromUnix(lastPulledAt.Int64)
			}
			out = append(out, c)
		}
		if tag.Valid {
			last := &out[len(out)-1]
			last.Tags = append(last.Tags, tag.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list GC candidates of repository %d: %w", repoID, err)
	}
	return out, nil
}

// SetGCStatuses implements db.GCStore.
func (s *Store) SetGCStatuses(ctx context.Context, repoID int64, statuses map[string]string) error {
	if len(statuses) == 0 {
		return nil
	}
	digests := make([]string, 0, len(statuses))
	for d := range statuses {
		digests = append(digests, d)
	}
	slices.Sort(digests) // a fixed lock order
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		for _, d := range digests {
			_, err := tx.ExecContext(ctx, `UPDATE manifests SET gc_status_json = $3
				WHERE repo_id = $1 AND digest = $2 AND gc_status_json <> $3`, repoID, d, statuses[d])
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store GC statuses in repository %d: %w", repoID, err)
	}
	return nil
}
