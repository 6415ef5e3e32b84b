package sqlcore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"keppel/internal/models"
)

// GetPeer implements db.PeerStore.
func (s *Store) GetPeer(ctx context.Context, hostname string) (models.Peer, error) {
	var (
		p                    models.Peer
		issuedAt, receivedAt sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, `SELECT hostname, our_password_hash, our_password_delivered,
			our_previous_password_hash, our_password_issued_at, their_password_sealed, their_password_received_at
		FROM peers WHERE hostname = $1`, hostname).Scan(&p.Hostname, &p.OurPasswordHash, &p.OurPasswordDelivered,
		&p.OurPreviousPasswordHash, &issuedAt, &p.TheirPasswordSealed, &receivedAt)
	if err != nil {
		return models.Peer{}, fmt.Errorf("get peer %s: %w", hostname, notFound(err))
	}
	p.OurPasswordIssuedAt = fromNullUnix(issuedAt)
	p.TheirPasswordReceivedAt = fromNullUnix(receivedAt)
	return p, nil
}

// IssuePeerPassword implements db.PeerStore. The upsert's WHERE clause is
// the claim: a concurrent caller that lost sees the new issue time and
// changes nothing.
func (s *Store) IssuePeerPassword(ctx context.Context, hostname, passwordHash string, issuedAt, dueBefore, undeliveredDueBefore time.Time) (bool, error) {
	var stored bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `INSERT INTO peers (hostname, our_password_hash, our_password_delivered, our_password_issued_at)
			VALUES ($1, $2, FALSE, $3)
			ON CONFLICT (hostname) DO UPDATE SET
				our_previous_password_hash = CASE WHEN peers.our_password_delivered
					THEN peers.our_password_hash ELSE peers.our_previous_password_hash END,
				our_password_hash = excluded.our_password_hash,
				our_password_delivered = FALSE,
				our_password_issued_at = excluded.our_password_issued_at
			WHERE peers.our_password_issued_at IS NULL
				OR peers.our_password_issued_at < $4
				OR (NOT peers.our_password_delivered AND peers.our_password_issued_at < $5)`,
			hostname, passwordHash, toUnix(issuedAt), toUnix(dueBefore), toUnix(undeliveredDueBefore))
		if err != nil {
			return err
		}
		stored, err = affectedOne(res)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("issue password for peer %s: %w", hostname, s.mapErr(err, stmtWrite))
	}
	return stored, nil
}

// MarkPeerPasswordDelivered implements db.PeerStore.
func (s *Store) MarkPeerPasswordDelivered(ctx context.Context, hostname, passwordHash string) (bool, error) {
	var marked bool
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE peers SET our_password_delivered = TRUE
			WHERE hostname = $1 AND our_password_hash = $2`, hostname, passwordHash)
		if err != nil {
			return err
		}
		marked, err = affectedOne(res)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("mark password of peer %s delivered: %w", hostname, err)
	}
	return marked, nil
}

// StoreReceivedPeerPassword implements db.PeerStore.
func (s *Store) StoreReceivedPeerPassword(ctx context.Context, hostname, sealedPassword string, receivedAt time.Time) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `INSERT INTO peers (hostname, their_password_sealed, their_password_received_at)
			VALUES ($1, $2, $3)
			ON CONFLICT (hostname) DO UPDATE SET
				their_password_sealed = excluded.their_password_sealed,
				their_password_received_at = excluded.their_password_received_at`,
			hostname, sealedPassword, toUnix(receivedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store password from peer %s: %w", hostname, s.mapErr(err, stmtWrite))
	}
	return nil
}
