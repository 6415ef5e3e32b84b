package sqlcore

import (
	"context"
	"database/sql"
	"fmt"

	"keppel/internal/models"
)

// ListManifestInfos implements db.TenancyStore. Each manifest's tags are
// ordered by name; Tags is nil for an untagged manifest. One statement reads
// the page of manifests together with their tags, so that both come from the
// same snapshot.
func (s *Store) ListManifestInfos(ctx context.Context, repoID int64, after string, limit int) ([]models.ManifestInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+manifestColumns+`, t.name, t.pushed_at, t.last_pulled_at,
			(SELECT b.digest || ': ' || b.validation_error FROM manifest_blob_refs r JOIN blobs b ON b.id = r.blob_id
			WHERE r.repo_id = m.repo_id AND r.digest = m.digest AND b.validation_error <> ''
			ORDER BY b.digest LIMIT 1)
		FROM (SELECT * FROM manifests WHERE repo_id = $1 AND digest > $2 ORDER BY digest`+limitClause(limit)+`) m
		LEFT JOIN tags t ON t.repo_id = m.repo_id AND t.digest = m.digest
		ORDER BY m.digest, t.name`, repoID, after)
	if err != nil {
		return nil, fmt.Errorf("list manifests in repository %d: %w", repoID, err)
	}
	defer rows.Close()
	out := []models.ManifestInfo{}
	for rows.Next() {
		var (
			m                            models.Manifest
			pushedAt                     int64
			lastPulledAt                 sql.NullInt64
			tagName                      sql.NullString
			tagPushedAt, tagLastPulledAt sql.NullInt64
			corruptBlob                  sql.NullString
		)
		fields := append(manifestFields(&m, &pushedAt, &lastPulledAt), &tagName, &tagPushedAt, &tagLastPulledAt, &corruptBlob)
		if err := rows.Scan(fields...); err != nil {
			return nil, fmt.Errorf("list manifests in repository %d: %w", repoID, err)
		}
		if len(out) == 0 || out[len(out)-1].Digest != m.Digest {
			m.PushedAt = fromUnix(pushedAt)
			m.LastPulledAt = fromNullUnix(lastPulledAt)
			out = append(out, models.ManifestInfo{Manifest: m, CorruptBlob: corruptBlob.String})
		}
		if tagName.Valid {
			info := &out[len(out)-1]
			info.Tags = append(info.Tags, models.Tag{
				RepositoryID: m.RepositoryID,
				Name:         tagName.String,
				Digest:       m.Digest,
				PushedAt:     fromUnix(tagPushedAt.Int64),
				LastPulledAt: fromNullUnix(tagLastPulledAt),
			})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list manifests in repository %d: %w", repoID, err)
	}
	return out, nil
}

// GetTag implements db.TenancyStore.
func (s *Store) GetTag(ctx context.Context, repoID int64, name string) (models.Tag, error) {
	var (
		t            models.Tag
		pushedAt     int64
		lastPulledAt sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, `SELECT repo_id, name, digest, pushed_at, last_pulled_at
		FROM tags WHERE repo_id = $1 AND name = $2`, repoID, name,
	).Scan(&t.RepositoryID, &t.Name, &t.Digest, &pushedAt, &lastPulledAt)
	if err != nil {
		return models.Tag{}, fmt.Errorf("get tag %q in repository %d: %w", name, repoID, notFound(err))
	}
	t.PushedAt = fromUnix(pushedAt)
	t.LastPulledAt = fromNullUnix(lastPulledAt)
	return t, nil
}

// ListTagsOfManifest implements db.TenancyStore.
func (s *Store) ListTagsOfManifest(ctx context.Context, repoID int64, digest string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM tags WHERE repo_id = $1 AND digest = $2 ORDER BY name`, repoID, digest)
	if err != nil {
		return nil, fmt.Errorf("list tags of manifest %s in repository %d: %w", digest, repoID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list tags of manifest %s in repository %d: %w", digest, repoID, err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tags of manifest %s in repository %d: %w", digest, repoID, err)
	}
	return out, nil
}
