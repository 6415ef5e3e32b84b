-- The other registries of the federation and the service passwords
-- exchanged with them (docs/configuration.md, federation.peers). Passwords
-- that this registry issued are kept as SHA-256 hashes: the current one,
-- whether the peer confirmed receiving it, and the one before, which stays
-- valid until the next rotation. The password that the peer issued to this
-- registry is kept sealed with the secrets key. Times are unix seconds.
CREATE TABLE peers (
	hostname                   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	our_password_hash          TEXT COLLATE "C" NOT NULL DEFAULT '',
	our_password_delivered     BOOLEAN NOT NULL DEFAULT FALSE,
	our_previous_password_hash TEXT COLLATE "C" NOT NULL DEFAULT '',
	our_password_issued_at     BIGINT,
	their_password_sealed      TEXT COLLATE "C" NOT NULL DEFAULT '',
	their_password_received_at BIGINT
);
