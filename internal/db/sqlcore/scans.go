package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"keppel/internal/db"
)

// ClaimVulnerabilityScan implements db.ScanStore.
func (s *Store) ClaimVulnerabilityScan(ctx context.Context, now, retry time.Time) (db.ScanCandidate, bool, error) {
	var (
		c       db.ScanCandidate
		claimed bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		claimed = false
		err := tx.QueryRowContext(ctx, `SELECT m.repo_id, m.digest, m.media_type, a.auth_tenant_id, r.account_name, r.name, c.content
			FROM manifests m
			JOIN repos r ON r.id = m.repo_id
			JOIN accounts a ON a.name = r.account_name
			JOIN manifest_contents c ON c.repo_id = m.repo_id AND c.digest = m.digest
			WHERE NOT a.is_deleting AND (m.next_vuln_check_at IS NULL OR m.next_vuln_check_at <= $1)
			ORDER BY m.next_vuln_check_at NULLS FIRST, m.repo_id, m.digest LIMIT 1`+s.dialect.ClaimRowOf("m"),
			toUnix(now)).Scan(&c.RepositoryID, &c.Digest, &c.MediaType,
			&c.Storage.AuthTenantID, &c.Storage.AccountName, &c.RepoName, &c.Content)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim manifest: %w", err)
		}
		claimed = true
		s.claimed("manifests", strconv.FormatInt(c.RepositoryID, 10)+"@"+c.Digest)
		_, err = tx.ExecContext(ctx, `UPDATE manifests SET next_vuln_check_at = $3 WHERE repo_id = $1 AND digest = $2`,
			c.RepositoryID, c.Digest, toUnix(retry))
		return err
	})
	if err != nil {
		return db.ScanCandidate{}, false, fmt.Errorf("claim vulnerability scan: %w", err)
	}
	return c, claimed, nil
}

// RecordVulnerabilityScan implements db.ScanStore.
func (s *Store) RecordVulnerabilityScan(ctx context.Context, key db.ManifestKey, r db.ScanRecord) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		n, err := execCount(ctx, tx, `UPDATE manifests SET vuln_status = $3, vuln_checked_at = $4, next_vuln_check_at = $5
			WHERE repo_id = $1 AND digest = $2`, key.RepositoryID, key.Digest, r.Status, toUnix(r.At), toUnix(r.Next))
		if err != nil {
			return err
		}
		if n == 0 {
			return db.ErrNotFound
		}
		// The indexes that list the manifest take its status at once.
		_, err = tx.ExecContext(ctx, `UPDATE manifests SET next_vuln_check_at = $3
			WHERE repo_id = $1 AND digest IN (SELECT parent_digest FROM manifest_manifest_refs WHERE repo_id = $1 AND child_digest = $2)
				AND next_vuln_check_at > $3`, key.RepositoryID, key.Digest, toUnix(r.At))
		if err != nil {
			return err
		}
		if r.Report == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM vulnerability_reports WHERE repo_id = $1 AND digest = $2`, key.RepositoryID, key.Digest)
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO vulnerability_reports (repo_id, digest, scanner, report) VALUES ($1, $2, $3, $4)
			ON CONFLICT (repo_id, digest) DO UPDATE SET scanner = excluded.scanner, report = excluded.report`,
			key.RepositoryID, key.Digest, r.Scanner, r.Report)
		return err
	})
	if err != nil {
		return fmt.Errorf("record vulnerability scan of %s in repository %d: %w", key.Digest, key.RepositoryID, err)
	}
	return nil
}

// GetVulnerabilityReport implements db.ScanStore.
func (s *Store) GetVulnerabilityReport(ctx context.Context, key db.ManifestKey) (string, []byte, error) {
	var (
		scanner string
		report  []byte
	)
	err := s.db.QueryRowContext(ctx, `SELECT scanner, report FROM vulnerability_reports WHERE repo_id = $1 AND digest = $2`,
		key.RepositoryID, key.Digest).Scan(&scanner, &report)
	if err != nil {
		return "", nil, fmt.Errorf("get vulnerability report of %s: %w", key.Digest, notFound(err))
	}
	return scanner, report, nil
}

// ListChildVulnerabilityStatuses implements db.ScanStore.
func (s *Store) ListChildVulnerabilityStatuses(ctx context.Context, key db.ManifestKey) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.vuln_status FROM manifest_manifest_refs r
		JOIN manifests m ON m.repo_id = r.repo_id AND m.digest = r.child_digest
		WHERE r.repo_id = $1 AND r.parent_digest = $2 ORDER BY m.digest`, key.RepositoryID, key.Digest)
	if err != nil {
		return nil, fmt.Errorf("list child statuses of %s: %w", key.Digest, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			return nil, fmt.Errorf("list child statuses of %s: %w", key.Digest, err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list child statuses of %s: %w", key.Digest, err)
	}
	return out, nil
}

// RescheduleVulnerabilityScans implements db.ScanStore.
func (s *Store) RescheduleVulnerabilityScans(ctx context.Context, account string, at time.Time) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `UPDATE manifests SET next_vuln_check_at = $2
			WHERE repo_id IN (SELECT id FROM repos WHERE account_name = $1) AND next_vuln_check_at > $2`, account, toUnix(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("reschedule vulnerability scans of account %q: %w", account, err)
	}
	return nil
}
