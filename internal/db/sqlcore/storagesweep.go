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

// ClaimStorageSweep implements db.GCStore.
func (s *Store) ClaimStorageSweep(ctx context.Context, now, next time.Time) (models.StorageRef, bool, error) {
	var (
		ref     models.StorageRef
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		ref, claimed = models.StorageRef{}, false
		err := tx.QueryRowContext(ctx, `SELECT name, auth_tenant_id FROM accounts
			WHERE NOT is_deleting AND (next_storage_sweep_at IS NULL OR next_storage_sweep_at <= $1)
			ORDER BY next_storage_sweep_at NULLS FIRST, name LIMIT 1`+s.dialect.ClaimRow,
			toUnix(now)).Scan(&ref.AccountName, &ref.AuthTenantID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim account: %w", err)
		}
		claimed = true
		s.claimed("accounts", ref.AccountName)
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET next_storage_sweep_at = $2 WHERE name = $1`,
			ref.AccountName, toUnix(next))
		return err
	})
	if err != nil {
		return models.StorageRef{}, false, fmt.Errorf("claim storage sweep: %w", err)
	}
	return ref, claimed, nil
}

// objectName is the name of an object in the table unknown_objects.
func objectName(o db.StorageObject) (kind, name string) {
	if o.IsBlob() {
		return "blob", o.StorageID
	}
	return "manifest", o.RepoName + "@" + o.Digest
}

// ReconcileUnknownObjects implements db.GCStore.
func (s *Store) ReconcileUnknownObjects(ctx context.Context, account string, found []db.StorageObject, now time.Time, grace time.Duration) ([]db.StorageObject, error) {
	var expired []db.StorageObject
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		expired = expired[:0]
		known := map[string]bool{}
		if err := collect(ctx, tx, known, `SELECT 'blob', storage_id FROM blobs WHERE account_name = $1`, account); err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		if err := collect(ctx, tx, known, `SELECT 'manifest', r.name || '@' || m.digest
			FROM manifests m JOIN repos r ON r.id = m.repo_id WHERE r.account_name = $1`, account); err != nil {
			return fmt.Errorf("list manifests: %w", err)
		}
		marked := map[string]time.Time{}
		rows, err := tx.QueryContext(ctx, `SELECT kind, name, can_be_deleted_at FROM unknown_objects
			WHERE account_name = $1`, account)
		if err != nil {
			return fmt.Errorf("list unknown objects: %w", err)
		}
		for rows.Next() {
			var (
				kind, name string
				deadline   int64
			)
			if err := rows.Scan(&kind, &name, &deadline); err != nil {
				rows.Close()
				return fmt.Errorf("list unknown objects: %w", err)
			}
			marked[kind+"\x00"+name] = time.Unix(deadline, 0)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list unknown objects: %w", err)
		}

		// Everything marked is forgotten unless it is still found unknown
		// and not yet expired.
		if _, err := tx.ExecContext(ctx, `DELETE FROM unknown_objects WHERE account_name = $1`, account); err != nil {
			return fmt.Errorf("forget unknown objects: %w", err)
		}
		for _, o := range found {
			kind, name := objectName(o)
			key := kind + "\x00" + name
			if known[key] {
				continue
			}
			deadline, seen := marked[key]
			if seen && !now.Before(deadline) {
				expired = append(expired, o)
				continue
			}
			if !seen {
				deadline = now.Add(grace)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO unknown_objects (account_name, kind, name, can_be_deleted_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, account, kind, name, toUnix(deadline))
			if err != nil {
				return fmt.Errorf("remember unknown object: %w", s.mapErr(err, stmtWrite))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile storage of account %s: %w", account, err)
	}
	return expired, nil
}

// collect adds the rows (two strings each) of a query to set, joined by a
// NUL byte.
func collect(ctx context.Context, tx *sql.Tx, set map[string]bool, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		set[a+"\x00"+b] = true
	}
	return rows.Err()
}
