package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ScannerSubject is the subject of the tokens with which the registry's
// vulnerability scanner pulls images. Only IssueScannerToken issues them;
// the token endpoint refuses the name, so that no user can pose as the
// scanner.
const ScannerSubject = "keppel-scanner"

// MaxScannerTokenLifetime bounds the lifetime of scanner tokens.
const MaxScannerTokenLifetime = time.Hour

// IsScanner reports whether claims are those of a scanner token.
func IsScanner(c *Claims) bool {
	return c != nil && c.Subject == ScannerSubject && !c.Admin && !c.Peer && len(c.Roles) == 0
}

// IssueScannerToken signs a token that may pull from the one repository
// for the given lifetime (at most MaxScannerTokenLifetime).
func (ts *TokenService) IssueScannerToken(repository string, lifetime time.Duration) (string, error) {
	if repository == "" {
		return "", errors.New("no repository for the scanner token")
	}
	if lifetime <= 0 || lifetime > MaxScannerTokenLifetime {
		return "", fmt.Errorf("scanner tokens live at most %s, not %s", MaxScannerTokenLifetime, lifetime)
	}
	now := ts.now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    ts.issuer,
			Subject:   ScannerSubject,
			Audience:  jwt.ClaimStrings{ts.service},
			ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(jti[:]),
		},
		Access: Grants{RepositoryScope(repository, ActionPull)},
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(ts.key)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return signed, nil
}
