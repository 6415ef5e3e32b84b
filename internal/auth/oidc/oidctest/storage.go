package oidctest

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is a pending or completed login (op.AuthRequest and
// op.IDTokenRequest).
type authRequest struct {
	id, clientID, redirectURI, state, nonce, subject string
	scopes                                           []string
	responseType                                     zoidc.ResponseType
	authTime                                         time.Time
	done                                             bool
}

func (a *authRequest) GetID() string                          { return a.id }
func (a *authRequest) GetACR() string                         { return "" }
func (a *authRequest) GetAMR() []string                       { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                  { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                 { return a.authTime }
func (a *authRequest) GetClientID() string                    { return a.clientID }
func (a *authRequest) GetCodeChallenge() *zoidc.CodeChallenge { return nil }
func (a *authRequest) GetNonce() string                       { return a.nonce }
func (a *authRequest) GetRedirectURI() string                 { return a.redirectURI }
func (a *authRequest) GetResponseType() zoidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() zoidc.ResponseMode    { return "" }
func (a *authRequest) GetScopes() []string                    { return a.scopes }
func (a *authRequest) GetState() string                       { return a.state }
func (a *authRequest) GetSubject() string                     { return a.subject }
func (a *authRequest) Done() bool                             { return a.done }

// client implements op.Client.
type client struct {
	id       string
	secret   string
	grants   []zoidc.GrantType
	loginURL string
	// lifetime of ID tokens, a time.Duration; changed at run time by
	// Provider.SetIDTokenLifetime while the library reads it.
	lifetime atomic.Int64
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return []string{CallbackURI} }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() zoidc.AuthMethod        { return zoidc.AuthMethodBasic }
func (c *client) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []zoidc.GrantType        { return c.grants }
func (c *client) LoginURL(id string) string            { return c.loginURL + url.QueryEscape(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return time.Duration(c.lifetime.Load()) }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// memStorage is a minimal in-memory op.Storage: users, clients, pending
// auth requests and codes, one RSA signing key. Refresh tokens and
// revocation are not supported. Users and clients are fixed when the
// provider starts.
type memStorage struct {
	key   *rsa.PrivateKey
	keyID string

	users   map[string]*User // by subject
	clients map[string]*client

	mu       sync.Mutex
	requests map[string]*authRequest
	codes    map[string]string // code → request ID
}

var _ op.Storage = (*memStorage)(nil)

var errNotFound = errors.New("not found")

// checkPassword finds the user by user name or subject.
func (s *memStorage) checkPassword(username, password string) *User {
	for _, u := range s.users {
		if (u.Username == username || u.Subject == username) && u.Password == password {
			return u
		}
	}
	return nil
}

func (s *memStorage) completeLogin(id, username, password string) error {
	u := s.checkPassword(username, password)
	if u == nil {
		return errors.New("wrong user name or password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return errNotFound
	}
	req.subject, req.done, req.authTime = u.Subject, true, time.Now()
	return nil
}

func (s *memStorage) CreateAuthRequest(_ context.Context, r *zoidc.AuthRequest, _ string) (op.AuthRequest, error) {
	req := &authRequest{
		id: randomID(), clientID: r.ClientID, redirectURI: r.RedirectURI, state: r.State, nonce: r.Nonce,
		scopes: r.Scopes, responseType: r.ResponseType,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[req.id] = req
	return req, nil
}

func (s *memStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req, ok := s.requests[id]; ok {
		return req, nil
	}
	return nil, errNotFound
}

func (s *memStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *memStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *memStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, reqID := range s.codes {
		if reqID == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *memStorage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return randomID(), time.Now().Add(5 * time.Minute), nil
}

func (s *memStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported")
}

func (s *memStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *memStorage) TerminateSession(context.Context, string, string) error { return nil }

func (s *memStorage) RevokeToken(context.Context, string, string, string) *zoidc.Error {
	return zoidc.ErrServerError().WithDescription("revocation is not supported")
}

func (s *memStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func (s *memStorage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{id: s.keyID, key: s.key}, nil
}

func (s *memStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *memStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{signingKey{id: s.keyID, key: s.key}}}, nil
}

func (s *memStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, errNotFound
}

func (s *memStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if c, ok := s.clients[id]; ok && c.secret == secret {
		return nil
	}
	return errors.New("wrong client credentials")
}

func (s *memStorage) SetUserinfoFromScopes(context.Context, *zoidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: it fills
// the ID token's claims by the granted scopes.
func (s *memStorage) SetUserinfoFromRequest(_ context.Context, info *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.userinfo(info, req.GetSubject(), scopes)
}

func (s *memStorage) userinfo(info *zoidc.UserInfo, subject string, scopes []string) error {
	u, ok := s.users[subject]
	if !ok {
		return errNotFound
	}
	info.Subject = u.Subject
	if slices.Contains(scopes, zoidc.ScopeProfile) {
		info.PreferredUsername = u.Username
	}
	if slices.Contains(scopes, zoidc.ScopeEmail) {
		info.Email = u.Email
	}
	if slices.Contains(scopes, "groups") && u.Groups != nil {
		info.AppendClaims("groups", u.Groups)
	}
	return nil
}

func (s *memStorage) SetUserinfoFromToken(_ context.Context, info *zoidc.UserInfo, _, subject, _ string) error {
	return s.userinfo(info, subject, []string{zoidc.ScopeProfile, zoidc.ScopeEmail, "groups"})
}

func (s *memStorage) SetIntrospectionFromToken(context.Context, *zoidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not supported")
}

func (s *memStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *memStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *memStorage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *memStorage) Health(context.Context) error { return nil }
