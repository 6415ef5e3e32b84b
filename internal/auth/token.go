package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"keppel/internal/models"
)

// ErrInvalidToken is returned for tokens that do not verify.
var ErrInvalidToken = errors.New("invalid token")

// Claims are the JWT claims of an access token.
type Claims struct {
	jwt.RegisteredClaims
	Access Grants `json:"access"`
	// Admin marks tokens of server administrators.
	Admin bool `json:"kpl_admin,omitempty"`
	// Roles are the subject's roles by auth tenant when the token was
	// issued; the management API authorizes bearer tokens by them.
	Roles map[string]models.Role `json:"kpl_roles,omitempty"`
	// Peer marks tokens of other registries of the federation.
	Peer bool `json:"kpl_peer,omitempty"`
}

// Identity returns the identity that the token was issued to (nil for
// anonymous tokens).
func (c *Claims) Identity() *Identity {
	if c.Subject == "" {
		return nil
	}
	return &Identity{Username: c.Subject, IsAdmin: c.Admin, Roles: c.Roles, Peer: c.Peer}
}

// TokenService issues and verifies access tokens.
type TokenService struct {
	issuer  string
	service string
	// otherServices are further audiences that tokens are issued for
	// and accepted with (the anycast host name).
	otherServices []string
	lifetime      time.Duration
	key           ed25519.PrivateKey
	// verifyKeys holds the current public key and, after a rotation, the previous one.
	verifyKeys []ed25519.PublicKey
	now        func() time.Time

	// verified remembers tokens that verified, until they expire, so that
	// clients reusing a token (all of them) do not pay for the signature
	// check on every request. Verification is stateless either way: a
	// token is valid exactly until its expiry.
	mu       sync.Mutex
	verified map[string]*Claims
}

// maxVerifiedTokens bounds the cache of verified tokens.
const maxVerifiedTokens = 4096

// NewTokenService builds a token service. service is the audience (the
// registry's public host); previous may be nil.
func NewTokenService(service string, lifetime time.Duration, key ed25519.PrivateKey, previous ed25519.PrivateKey, now func() time.Time) *TokenService {
	ts := &TokenService{
		issuer:     "keppel-api@" + service,
		service:    service,
		lifetime:   lifetime,
		key:        key,
		verifyKeys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)},
		now:        now,
	}
	if previous != nil {
		ts.verifyKeys = append(ts.verifyKeys, previous.Public().(ed25519.PublicKey))
	}
	return ts
}

// Service returns the service name that clients must ask tokens for.
func (ts *TokenService) Service() string { return ts.service }

// AcceptService adds a further service name (audience) that tokens are
// issued for and accepted with, such as the anycast host name. It must be
// called before the service is used.
func (ts *TokenService) AcceptService(service string) {
	if service != "" && !ts.Serves(service) {
		ts.otherServices = append(ts.otherServices, service)
	}
}

// Serves reports whether tokens are issued for the service name.
func (ts *TokenService) Serves(service string) bool {
	if service == ts.service {
		return true
	}
	for _, s := range ts.otherServices {
		if s == service {
			return true
		}
	}
	return false
}

// Lifetime returns how long issued tokens are valid.
func (ts *TokenService) Lifetime() time.Duration { return ts.lifetime }

// IssueFor signs a token for an identity (nil for anonymous) with the
// granted scopes; the token carries the identity's roles and peer mark.
func (ts *TokenService) IssueFor(id *Identity, grants Grants) (string, time.Time, error) {
	return ts.IssueForService(ts.service, id, grants)
}

// IssueForService is IssueFor with another service name that the token
// service Serves as the audience.
func (ts *TokenService) IssueForService(service string, id *Identity, grants Grants) (string, time.Time, error) {
	if !ts.Serves(service) {
		return "", time.Time{}, fmt.Errorf("tokens are not issued for service %q", service)
	}
	if id != nil && id.Username == ScannerSubject {
		return "", time.Time{}, fmt.Errorf("the name %q is reserved for the vulnerability scanner", ScannerSubject)
	}
	if id == nil {
		return ts.issue(service, Identity{}, grants)
	}
	return ts.issue(service, *id, grants)
}

// Issue signs a token for the subject with the granted scopes.
func (ts *TokenService) Issue(subject string, admin bool, grants Grants) (string, time.Time, error) {
	if subject == ScannerSubject {
		return "", time.Time{}, fmt.Errorf("the name %q is reserved for the vulnerability scanner", ScannerSubject)
	}
	return ts.issue(ts.service, Identity{Username: subject, IsAdmin: admin}, grants)
}

func (ts *TokenService) issue(service string, id Identity, grants Grants) (string, time.Time, error) {
	now := ts.now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    ts.issuer,
			Subject:   id.Username,
			Audience:  jwt.ClaimStrings{service},
			ExpiresAt: jwt.NewNumericDate(now.Add(ts.lifetime)),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(jti[:]),
		},
		Access: grants,
		Admin:  id.IsAdmin,
		Roles:  id.Roles,
		Peer:   id.Peer,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(ts.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing token: %w", err)
	}
	return signed, now, nil
}

// Verify checks a token's signature (with the current or previous key),
// issuer, audience and validity period, and returns its claims. The claims
// are shared: callers must not modify them.
func (ts *TokenService) Verify(token string) (*Claims, error) {
	now := ts.now()
	ts.mu.Lock()
	c, ok := ts.verified[token]
	ts.mu.Unlock()
	if ok && now.Before(c.ExpiresAt.Add(5*time.Second)) && !now.Before(c.NotBefore.Add(-5*time.Second)) {
		return c, nil
	}
	c, err := ts.verify(token)
	if err != nil {
		return nil, err
	}
	ts.mu.Lock()
	if ts.verified == nil || len(ts.verified) >= maxVerifiedTokens {
		ts.verified = map[string]*Claims{} // simple bound: start over
	}
	ts.verified[token] = c
	ts.mu.Unlock()
	return c, nil
}

func (ts *TokenService) verify(token string) (*Claims, error) {
	var lastErr error
	for _, pub := range ts.verifyKeys {
		var claims Claims
		_, err := jwt.ParseWithClaims(token, &claims,
			func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(ts.issuer),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(ts.now),
			jwt.WithLeeway(5*time.Second),
		)
		if err == nil {
			for _, aud := range claims.Audience {
				if ts.Serves(aud) {
					return &claims, nil
				}
			}
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, jwt.ErrTokenInvalidAudience)
		}
		lastErr = err
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrInvalidToken, lastErr)
}

// LoadOrCreateKey reads an Ed25519 private key (PEM, PKCS#8) from path. If
// the file does not exist and create is true, a new key is generated and
// written there with mode 0600.
func LoadOrCreateKey(path string, create bool) (ed25519.PrivateKey, error) {
	buf, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading token signing key: %w", err)
	}
	block, _ := pem.Decode(buf)
	if block == nil {
		return nil, fmt.Errorf("token signing key %s: no PEM block found", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token signing key %s: %w", path, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token signing key %s: not an Ed25519 key", path)
	}
	return key, nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating token signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding token signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating directory for token signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writing token signing key: %w", err)
	}
	defer f.Close()
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return nil, fmt.Errorf("writing token signing key: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("writing token signing key: %w", err)
	}
	return key, nil
}
