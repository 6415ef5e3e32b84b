package builtin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"keppel/internal/auth"
	"keppel/internal/db"
	"keppel/internal/models"
)

// API keys have the form keppel_<id>_<secret>: the ID is 12 hex digits (the
// public part, shown in listings), the secret 32 random bytes in unpadded
// base64url. The secret has enough entropy that a plain SHA-256 of it is a
// safe thing to store; unlike passwords, it needs no slow hash.
const (
	apiKeyPrefix    = "keppel_"
	apiKeyIDBytes   = 6
	apiKeySecretLen = 32
)

var apiKeySecretChars = base64.RawURLEncoding.EncodedLen(apiKeySecretLen)

// GenerateAPIKey makes a new API key for a user: the key to store (with
// only the hash of the secret) and the plain key to hand to the user once.
func GenerateAPIKey(username, name string, expiresAt *time.Time, now time.Time) (key models.APIKey, plaintext string, err error) {
	var id [apiKeyIDBytes]byte
	var secret [apiKeySecretLen]byte
	if _, err := rand.Read(id[:]); err != nil {
		return models.APIKey{}, "", fmt.Errorf("generating API key: %w", err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return models.APIKey{}, "", fmt.Errorf("generating API key: %w", err)
	}
	key = models.APIKey{
		ID:        hex.EncodeToString(id[:]),
		Username:  username,
		Name:      name,
		CreatedAt: now,
		ExpiresAt: expiresAt,
	}
	encoded := base64.RawURLEncoding.EncodeToString(secret[:])
	key.SecretHash = hashSecret(encoded)
	return key, apiKeyPrefix + key.ID + "_" + encoded, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// parseAPIKey splits a password that has the exact shape of an API key.
// Anything else (even with the keppel_ prefix) is a password.
func parseAPIKey(password string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(password, apiKeyPrefix)
	if !found || len(rest) != 2*apiKeyIDBytes+1+apiKeySecretChars || rest[2*apiKeyIDBytes] != '_' {
		return "", "", false
	}
	id, secret = rest[:2*apiKeyIDBytes], rest[2*apiKeyIDBytes+1:]
	for _, c := range []byte(id) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", "", false
		}
	}
	for _, c := range []byte(secret) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return "", "", false
		}
	}
	return id, secret, true
}

// authenticateAPIKey checks an API key presented as the password of
// username: it must exist, belong to that user, and be neither revoked nor
// expired.
func (d *Driver) authenticateAPIKey(ctx context.Context, username, id, secret string) (auth.Identity, error) {
	k, err := d.store.GetAPIKey(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return auth.Identity{}, auth.ErrBadCredentials
	}
	if err != nil {
		return auth.Identity{}, fmt.Errorf("looking up API key: %w", err)
	}
	match := subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(k.SecretHash)) == 1
	now := d.now()
	if !match || k.Username != username || k.RevokedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return auth.Identity{}, auth.ErrBadCredentials
	}
	u, err := d.store.GetUser(ctx, username)
	if errors.Is(err, db.ErrNotFound) {
		return auth.Identity{}, auth.ErrBadCredentials
	}
	if err != nil {
		return auth.Identity{}, fmt.Errorf("looking up user: %w", err)
	}
	return d.identity(ctx, u)
}
