package sqlcore

import (
	"context"
	"fmt"
	"strings"

	"keppel/internal/db"
	"keppel/internal/models"
)

// ListBlobsOfAccount implements db.InventoryStore.
func (s *Store) ListBlobsOfAccount(ctx context.Context, accountName string) ([]models.Blob, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+blobColumns+` FROM blobs b
		WHERE b.account_name = $1 ORDER BY b.digest`, accountName)
	if err != nil {
		return nil, fmt.Errorf("list blobs of account %q: %w", accountName, err)
	}
	defer rows.Close()
	out := []models.Blob{}
	for rows.Next() {
		b, err := scanBlob(rows)
		if err != nil {
			return nil, fmt.Errorf("list blobs of account %q: %w", accountName, err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list blobs of account %q: %w", accountName, err)
	}
	return out, nil
}

// ListManifestsOfAccount implements db.InventoryStore.
func (s *Store) ListManifestsOfAccount(ctx context.Context, accountName string) ([]db.ManifestCopyKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.repo_id, r.name, m.digest, m.in_storage
		FROM manifests m JOIN repos r ON r.id = m.repo_id
		WHERE r.account_name = $1
		ORDER BY r.name, m.digest`, accountName)
	if err != nil {
		return nil, fmt.Errorf("list manifests of account %q: %w", accountName, err)
	}
	defer rows.Close()
	out := []db.ManifestCopyKey{}
	for rows.Next() {
		var k db.ManifestCopyKey
		if err := rows.Scan(&k.RepositoryID, &k.RepoName, &k.Digest, &k.InStorage); err != nil {
			return nil, fmt.Errorf("list manifests of account %q: %w", accountName, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list manifests of account %q: %w", accountName, err)
	}
	return out, nil
}

// ListUnknownObjects implements db.InventoryStore.
func (s *Store) ListUnknownObjects(ctx context.Context, accountName string) ([]db.UnknownObject, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, name, can_be_deleted_at FROM unknown_objects
		WHERE account_name = $1 ORDER BY kind, name`, accountName)
	if err != nil {
		return nil, fmt.Errorf("list unknown objects of account %q: %w", accountName, err)
	}
	defer rows.Close()
	out := []db.UnknownObject{}
	for rows.Next() {
		var (
			kind, name string
			deadline   int64
		)
		if err := rows.Scan(&kind, &name, &deadline); err != nil {
			return nil, fmt.Errorf("list unknown objects of account %q: %w", accountName, err)
		}
		o := db.UnknownObject{CanBeDeletedAt: fromUnix(deadline)}
		if kind == "blob" {
			o.StorageID = name
		} else {
			// See objectName: "<repo>@<digest>"; repository names
			// contain no "@".
			o.RepoName, o.Digest, _ = strings.Cut(name, "@")
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list unknown objects of account %q: %w", accountName, err)
	}
	return out, nil
}

// ForgetBlobContent implements db.InventoryStore.
func (s *Store) ForgetBlobContent(ctx context.Context, blobID int64, storageID string) (bool, error) {
	var changed bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE blobs SET storage_id = '', validation_error = '', validated_at = NULL
			WHERE id = $1 AND storage_id = $2`, blobID, storageID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		changed = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("forget content of blob %d: %w", blobID, err)
	}
	return changed, nil
}
