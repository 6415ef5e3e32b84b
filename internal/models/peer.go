package models

import "time"

// Peer is another registry of the federation, known by the host (and port)
// of its public URL, with the service passwords that the two registries
// issued to each other. Each side issues a password to the other and
// rotates it; the other logs in with it as "replication@<its own host>".
type Peer struct {
	Hostname string
	// OurPasswordHash is the hash of the password that this registry
	// issued to the peer ("" if none yet); the peer logs in here with it.
	OurPasswordHash string
	// OurPasswordDelivered says whether the peer confirmed receiving it.
	OurPasswordDelivered bool
	// OurPreviousPasswordHash is the hash of the password issued before,
	// which is still accepted, so that the peer can log in while a new
	// password is on its way ("" if none).
	OurPreviousPasswordHash string
	// OurPasswordIssuedAt is when OurPasswordHash was issued (nil: never).
	OurPasswordIssuedAt *time.Time
	// TheirPasswordSealed is the password that the peer issued to this
	// registry, sealed with the secrets key ("" if none received yet).
	TheirPasswordSealed string
	// TheirPasswordReceivedAt is when it was received (nil: never).
	TheirPasswordReceivedAt *time.Time
}
