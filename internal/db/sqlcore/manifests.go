package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"keppel/internal/db"
	"keppel/internal/models"
)

const manifestColumns = `m.repo_id, m.digest, m.media_type, m.size_bytes, m.pushed_at, m.last_pulled_at,
	m.subject_digest, m.artifact_type, m.annotations_json, m.labels_json, m.gc_status_json, m.validation_error, m.vuln_status`

// refsPerStatement bounds the rows of one multi-row INSERT of references, to
// stay well below the databases' limits on bound parameters.
const refsPerStatement = 500

func manifestFields(m *models.Manifest, pushedAt *int64, lastPulledAt *sql.NullInt64) []any {
	return []any{&m.RepositoryID, &m.Digest, &m.MediaType, &m.SizeBytes, pushedAt, lastPulledAt,
		&m.SubjectDigest, &m.ArtifactType, &m.AnnotationsJSON, &m.LabelsJSON, &m.GCStatusJSON, &m.ValidationError, &m.VulnerabilityStatus}
}

func scanManifest(row interface{ Scan(...any) error }) (models.Manifest, error) {
	var (
		m            models.Manifest
		pushedAt     int64
		lastPulledAt sql.NullInt64
	)
	err := row.Scan(manifestFields(&m, &pushedAt, &lastPulledAt)...)
	m.PushedAt = fromUnix(pushedAt)
	m.LastPulledAt = fromNullUnix(lastPulledAt)
	return m, err
}

func scanManifestWithContent(row interface{ Scan(...any) error }) (models.ManifestWithContent, error) {
	var (
		m            models.ManifestWithContent
		pushedAt     int64
		lastPulledAt sql.NullInt64
	)
	err := row.Scan(append(manifestFields(&m.Manifest, &pushedAt, &lastPulledAt), &m.Content)...)
	m.PushedAt = fromUnix(pushedAt)
	m.LastPulledAt = fromNullUnix(lastPulledAt)
	return m, err
}

// GetManifest implements db.ManifestStore.
func (s *Store) GetManifest(ctx context.Context, repoID int64, digest string) (models.ManifestWithContent, error) {
	m, err := scanManifestWithContent(s.db.QueryRowContext(ctx, `SELECT `+manifestColumns+`, c.content
		FROM manifests m JOIN manifest_contents c ON c.repo_id = m.repo_id AND c.digest = m.digest
		WHERE m.repo_id = $1 AND m.digest = $2`, repoID, digest))
	if err != nil {
		return models.ManifestWithContent{}, fmt.Errorf("get manifest %s in repository %d: %w", digest, repoID, notFound(err))
	}
	return m, nil
}

// GetTaggedManifest implements db.ManifestStore.
func (s *Store) GetTaggedManifest(ctx context.Context, repoID int64, tag string) (models.ManifestWithContent, error) {
	m, err := scanManifestWithContent(s.db.QueryRowContext(ctx, `SELECT `+manifestColumns+`, c.content
		FROM tags t
		JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest
		JOIN manifest_contents c ON c.repo_id = m.repo_id AND c.digest = m.digest
		WHERE t.repo_id = $1 AND t.name = $2`, repoID, tag))
	if err != nil {
		return models.ManifestWithContent{}, fmt.Errorf("get manifest tagged %q in repository %d: %w", tag, repoID, notFound(err))
	}
	return m, nil
}

// PutManifest implements db.ManifestStore. Duplicate blob IDs and child
// digests are ignored. Re-tagging updates the tag's push time and, if the tag
// moves to another manifest, forgets its last pull. A manifest that is new in
// the repository counts one manifest more in its tenant's usage, in the same
// transaction.
func (s *Store) PutManifest(ctx context.Context, m models.ManifestWithContent, blobIDs []int64, childDigests []string, tag string, events ...models.AuditEvent) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO manifests (repo_id, digest, media_type, size_bytes,
			pushed_at, last_pulled_at, subject_digest, artifact_type, annotations_json, labels_json)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (repo_id, digest) DO NOTHING`,
			m.RepositoryID, m.Digest, m.MediaType, m.SizeBytes, toUnix(m.PushedAt), toNullUnix(m.LastPulledAt),
			m.SubjectDigest, m.ArtifactType, m.AnnotationsJSON, m.LabelsJSON)
		if err != nil {
			err = s.mapErr(err, stmtWrite)
			if errors.Is(err, db.ErrReferenceMissing) {
				err = fmt.Errorf("repository does not exist: %w", err)
			}
			return fmt.Errorf("insert manifest: %w", err)
		}
		isNew, err := affectedOne(res)
		if err != nil {
			return err
		}
		if isNew {
			if err := s.insertManifestRefs(ctx, tx, m, blobIDs, childDigests); err != nil {
				return err
			}
		} else if err := s.replaceCorruptManifest(ctx, tx, m); err != nil {
			return err
		}
		if tag != "" {
			_, err = tx.ExecContext(ctx, `INSERT INTO tags (repo_id, name, digest, pushed_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (repo_id, name) DO UPDATE SET
					digest = excluded.digest,
					pushed_at = excluded.pushed_at,
					last_pulled_at = CASE WHEN tags.digest = excluded.digest THEN tags.last_pulled_at ELSE NULL END`,
				m.RepositoryID, tag, m.Digest, toUnix(m.PushedAt))
			if err != nil {
				return fmt.Errorf("put tag %q: %w", tag, s.mapErr(err, stmtWrite))
			}
		}
		if err := s.insertAuditEvents(ctx, tx, events); err != nil {
			return err
		}
		if !isNew {
			return nil
		}
		// Last, so that the tenant's usage row, which every push of the
		// tenant updates, stays locked for as short a time as possible.
		return s.addRepoUsage(ctx, tx, m.RepositoryID, 1, 0)
	})
	if err != nil {
		return fmt.Errorf("put manifest %s in repository %d: %w", m.Digest, m.RepositoryID, err)
	}
	return nil
}

// replaceCorruptManifest gives an existing manifest whose stored content a
// re-validation found corrupt the content of a new push of it (which has
// the right digest), and clears the error.
func (s *Store) replaceCorruptManifest(ctx context.Context, tx *sql.Tx, m models.ManifestWithContent) error {
	res, err := tx.ExecContext(ctx, `UPDATE manifests SET validation_error = ''
		WHERE repo_id = $1 AND digest = $2 AND validation_error <> ''`, m.RepositoryID, m.Digest)
	if err != nil {
		return fmt.Errorf("clear validation error: %w", err)
	}
	if corrupt, err := affectedOne(res); err != nil || !corrupt {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE manifest_contents SET content = $3 WHERE repo_id = $1 AND digest = $2`,
		m.RepositoryID, m.Digest, m.Content)
	if err != nil {
		return fmt.Errorf("replace corrupt content: %w", err)
	}
	return nil
}

// insertManifestRefs stores the content and the references of a manifest
// that was just inserted. The foreign keys refuse blobs that are not mounted
// in the repository and children that do not exist in it.
func (s *Store) insertManifestRefs(ctx context.Context, tx *sql.Tx, m models.ManifestWithContent, blobIDs []int64, childDigests []string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO manifest_contents (repo_id, digest, content) VALUES ($1, $2, $3)`,
		m.RepositoryID, m.Digest, nonNil(m.Content))
	if err != nil {
		return fmt.Errorf("insert manifest content: %w", s.mapErr(err, stmtWrite))
	}

	blobArgs := make([]any, 0, len(blobIDs))
	for _, id := range dedup(blobIDs) {
		blobArgs = append(blobArgs, id)
	}
	err = s.insertRefs(ctx, tx, `INSERT INTO manifest_blob_refs (repo_id, digest, blob_id) VALUES `, m, blobArgs)
	if err != nil {
		return fmt.Errorf("a referenced blob is not mounted in the repository: %w", err)
	}

	childArgs := make([]any, 0, len(childDigests))
	for _, d := range dedup(childDigests) {
		childArgs = append(childArgs, d)
	}
	err = s.insertRefs(ctx, tx, `INSERT INTO manifest_manifest_refs (repo_id, parent_digest, child_digest) VALUES `, m, childArgs)
	if err != nil {
		return fmt.Errorf("a child manifest does not exist in the repository: %w", err)
	}
	return nil
}

// insertRefs inserts rows (repo ID, manifest digest, x) for every x in refs
// with as few statements as possible.
func (s *Store) insertRefs(ctx context.Context, tx *sql.Tx, insert string, m models.ManifestWithContent, refs []any) error {
	for len(refs) > 0 {
		chunk := refs[:min(len(refs), refsPerStatement)]
		refs = refs[len(chunk):]
		var query strings.Builder
		query.WriteString(insert)
		args := append(make([]any, 0, len(chunk)+2), m.RepositoryID, m.Digest)
		for i, ref := range chunk {
			if i > 0 {
				query.WriteString(", ")
			}
			fmt.Fprintf(&query, "($1, $2, $%d)", i+3)
			args = append(args, ref)
		}
		if _, err := tx.ExecContext(ctx, query.String(), args...); err != nil {
			return s.mapErr(err, stmtWrite)
		}
	}
	return nil
}

// dedup returns the distinct elements of xs in their first order.
func dedup[T comparable](xs []T) []T {
	seen := make(map[T]struct{}, len(xs))
	out := make([]T, 0, len(xs))
	for _, x := range xs {
		if _, ok := seen[x]; !ok {
			seen[x] = struct{}{}
			out = append(out, x)
		}
	}
	return out
}

// DeleteManifest implements db.ManifestStore. Tags, content and references of
// the manifest go with it (ON DELETE CASCADE), and its tenant's usage counts
// one manifest less, in the same transaction.
func (s *Store) DeleteManifest(ctx context.Context, repoID int64, digest string) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var parent string
		err := tx.QueryRowContext(ctx, `SELECT parent_digest FROM manifest_manifest_refs
			WHERE repo_id = $1 AND child_digest = $2 ORDER BY parent_digest LIMIT 1`, repoID, digest).Scan(&parent)
		switch {
		case err == nil:
			return fmt.Errorf("index %s refers to it: %w", parent, db.ErrStillReferenced)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("find referencing indexes: %w", err)
		}
		// The foreign key from manifest_manifest_refs refuses the delete as
		// well, should an index have come in since the check.
		res, err := tx.ExecContext(ctx, `DELETE FROM manifests WHERE repo_id = $1 AND digest = $2`, repoID, digest)
		if err != nil {
			return s.mapErr(err, stmtDelete)
		}
		ok, err := affectedOne(res)
		if err != nil {
			return err
		}
		if !ok {
			return db.ErrNotFound
		}
		return s.addRepoUsage(ctx, tx, repoID, -1, 0)
	})
	if err != nil {
		return fmt.Errorf("delete manifest %s in repository %d: %w", digest, repoID, err)
	}
	return nil
}

// ListReferrers implements db.ManifestStore.
func (s *Store) ListReferrers(ctx context.Context, repoID int64, subjectDigest string) ([]models.Manifest, error) {
	out := []models.Manifest{}
	if subjectDigest == "" {
		return out, nil // "" marks manifests without a subject
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+manifestColumns+` FROM manifests m
		WHERE m.repo_id = $1 AND m.subject_digest = $2 ORDER BY m.digest`, repoID, subjectDigest)
	if err != nil {
		return nil, fmt.Errorf("list referrers of %s in repository %d: %w", subjectDigest, repoID, err)
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanManifest(rows)
		if err != nil {
			return nil, fmt.Errorf("list referrers of %s in repository %d: %w", subjectDigest, repoID, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list referrers of %s in repository %d: %w", subjectDigest, repoID, err)
	}
	return out, nil
}

// ListTags implements db.ManifestStore.
func (s *Store) ListTags(ctx context.Context, repoID int64, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM tags WHERE repo_id = $1 AND name > $2
		ORDER BY name`+limitClause(limit), repoID, after)
	if err != nil {
		return nil, fmt.Errorf("list tags in repository %d: %w", repoID, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list tags in repository %d: %w", repoID, err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tags in repository %d: %w", repoID, err)
	}
	return out, nil
}

// DeleteTag implements db.ManifestStore.
func (s *Store) DeleteTag(ctx context.Context, repoID int64, name string) error {
	var deleted bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM tags WHERE repo_id = $1 AND name = $2`, repoID, name)
		if err != nil {
			return err
		}
		deleted, err = affectedOne(res)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete tag %q in repository %d: %w", name, repoID, s.mapErr(err, stmtDelete))
	}
	if !deleted {
		return fmt.Errorf("delete tag %q in repository %d: %w", name, repoID, db.ErrNotFound)
	}
	return nil
}
