package db

import (
	"context"
	"time"

	"keppel/internal/models"
)

// PeerStore keeps the service passwords exchanged with the other
// registries of the federation (see models.Peer). Passwords that this
// registry issued are stored as hashes only; a password that a peer issued
// to this registry is stored sealed, since this registry must send it.
type PeerStore interface {
	// GetPeer returns ErrNotFound for a host that has no row.
	GetPeer(ctx context.Context, hostname string) (models.Peer, error)
	// IssuePeerPassword stores the hash of a new password for the peer,
	// creating its row if needed, but only if the current password is due
	// for rotation: none was issued yet, it was issued before dueBefore,
	// or it was not delivered and was issued before undeliveredDueBefore.
	// A delivered current password becomes the previous one; an
	// undelivered one is simply replaced, and the previous one (which the
	// peer still holds) stays. The new password counts as not delivered,
	// issued at issuedAt. The check and the change are one statement, so
	// that of several processes rotating at once only one succeeds; the
	// result says whether this call stored the password.
	IssuePeerPassword(ctx context.Context, hostname, passwordHash string, issuedAt, dueBefore, undeliveredDueBefore time.Time) (bool, error)
	// MarkPeerPasswordDelivered records that the peer received the
	// password with the hash. It reports false (and changes nothing) if
	// another password was issued since.
	MarkPeerPasswordDelivered(ctx context.Context, hostname, passwordHash string) (bool, error)
	// StoreReceivedPeerPassword stores the (sealed) password that the peer
	// issued to this registry, creating the peer's row if needed.
	StoreReceivedPeerPassword(ctx context.Context, hostname, sealedPassword string, receivedAt time.Time) error
}
