package oidc

// An OpenID provider for the tests, built from zitadel's provider library
// (github.com/zitadel/oidc/v3/pkg/op) and served with httptest on
// 127.0.0.1. The library does discovery, keys, the authorization code flow,
// client authentication and the signing of ID tokens; this file supplies
// what the library leaves to its users: an in-memory op.Storage, a login
// page, and (because the library has no resource owner password grant) the
// password grant as an HTTP interceptor of the library that authenticates
// the client with the library's own client authentication and issues
// tokens with op.CreateTokenResponse.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

// grantTypePassword is RFC 6749's resource owner password credentials
// grant, which zitadel's op does not implement itself.
const grantTypePassword zoidc.GrantType = "password"

// callbackRedirectURI is registered for the test clients; the tests never
// follow the redirect to it, they only read the code from it.
const callbackRedirectURI = "https://registry.example/oidc/callback"

type testUser struct {
	subject  string
	username string
	password string
	email    string
	groups   []string
}

type testClient struct {
	id       string
	secret   string
	grants   []zoidc.GrantType
	loginURL string
}

// testProvider is a running OpenID provider.
type testProvider struct {
	t       *testing.T
	server  *httptest.Server
	op      *op.Provider
	storage *memStorage
	// URL is where the provider listens; Issuer is what it puts into
	// tokens (the same unless the provider impersonates another issuer).
	URL    string
	Issuer string
}

type providerOptions struct {
	// issuer overrides the issuer (default: the provider's own URL).
	issuer string
	// noPasswordGrant leaves the library's token endpoint as it is.
	noPasswordGrant bool
	// keysOf makes the provider sign with another provider's key.
	keysOf *testProvider
}

// newTestProvider starts a provider with fresh signing keys, the users
// alice, bob and carol, and the clients "keppel" (password and
// authorization code grants) and "other-app".
func newTestProvider(t *testing.T, opts providerOptions) *testProvider {
	t.Helper()
	server := httptest.NewUnstartedServer(nil) // listens on 127.0.0.1
	p := &testProvider{t: t, server: server, URL: "http://" + server.Listener.Addr().String()}
	p.Issuer = p.URL
	if opts.issuer != "" {
		p.Issuer = opts.issuer
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyID := randomID()
	if opts.keysOf != nil {
		key, keyID = opts.keysOf.storage.key, opts.keysOf.storage.keyID
	}
	p.storage = &memStorage{
		key:      key,
		keyID:    keyID,
		users:    map[string]*testUser{},
		clients:  map[string]*testClient{},
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
	}
	for _, u := range []*testUser{
		{subject: "u-alice", username: "alice", password: "alice-secret", email: "alice@example.org",
			groups: []string{"keppel-admins", "team-a"}},
		{subject: "u-bob", username: "bob", password: "bob-secret", groups: []string{"team-a", "team-a-push", "team-b"}},
		{subject: "u-carol", password: "carol-secret"}, // no preferred_username
	} {
		p.storage.users[u.subject] = u
	}
	for _, c := range []*testClient{
		{id: "keppel", secret: "keppel-client-secret", grants: []zoidc.GrantType{zoidc.GrantTypeCode, grantTypePassword}},
		{id: "other-app", secret: "other-secret", grants: []zoidc.GrantType{zoidc.GrantTypeCode, grantTypePassword}},
	} {
		c.loginURL = p.URL + "/login?id="
		p.storage.clients[c.id] = c
	}

	config := &op.Config{CodeMethodS256: true, AuthMethodPost: true}
	if _, err := rand.Read(config.CryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	options := []op.Option{op.WithAllowInsecure()}
	if !opts.noPasswordGrant {
		options = append(options, op.WithHttpInterceptors(p.passwordGrant))
	}
	p.op, err = op.NewProvider(config, p.storage, op.StaticIssuer(p.Issuer), options...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.Handle("/", p.op)
	server.Config.Handler = mux
	server.Start()
	t.Cleanup(server.Close)
	return p
}

// login is the login page the library redirects to: it checks the user's
// password for the pending auth request and sends the browser back to the
// library's callback.
func (p *testProvider) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		fmt.Fprintf(w, "<form method=post><input name=id value=%q><input name=username><input name=password type=password></form>",
			r.Form.Get("id"))
		return
	}
	id := r.PostForm.Get("id")
	if err := p.storage.completeLogin(id, r.PostForm.Get("username"), r.PostForm.Get("password")); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	// The callback lives at the provider's own address, which is not the
	// issuer when the provider impersonates another one.
	ctx := op.ContextWithIssuer(r.Context(), p.URL)
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(ctx, id), http.StatusFound)
}

// passwordGrant is an op.HttpInterceptor that answers token requests with
// grant_type=password and passes everything else to the library.
func (p *testProvider) passwordGrant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != p.op.TokenEndpoint().Relative() {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			op.RequestError(w, r, zoidc.ErrInvalidRequest().WithDescription("cannot parse form"), nil)
			return
		}
		if zoidc.GrantType(r.PostForm.Get("grant_type")) != grantTypePassword {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		clientID, authenticated, err := op.ClientIDFromRequest(r, p.op)
		if err != nil {
			op.RequestError(w, r, err, nil)
			return
		}
		if !authenticated {
			if err := op.AuthorizeClientIDSecret(ctx, clientID, r.PostForm.Get("client_secret"), p.storage); err != nil {
				op.RequestError(w, r, err, nil)
				return
			}
		}
		client, err := p.storage.GetClientByClientID(ctx, clientID)
		if err != nil {
			op.RequestError(w, r, zoidc.ErrInvalidClient().WithParent(err), nil)
			return
		}
		if !op.ValidateGrantType(client, grantTypePassword) {
			op.RequestError(w, r, zoidc.ErrUnauthorizedClient().WithDescription("password grant not allowed"), nil)
			return
		}
		user := p.storage.checkPassword(r.PostForm.Get("username"), r.PostForm.Get("password"))
		if user == nil {
			op.RequestError(w, r, zoidc.ErrInvalidGrant().WithDescription("invalid user credentials"), nil)
			return
		}
		req := &authRequest{
			id:       randomID(),
			clientID: clientID,
			subject:  user.subject,
			scopes:   strings.Fields(r.PostForm.Get("scope")),
			authTime: time.Now(),
			done:     true,
		}
		resp, err := op.CreateTokenResponse(ctx, req, client, p.op, true, "", "")
		if err != nil {
			op.RequestError(w, r, err, nil)
			return
		}
		httphelper.MarshalJSON(w, resp)
	})
}

// idToken logs user in at the provider with the authorization code flow, as
// a browser and a relying party would, and returns the ID token issued for
// the client.
func (p *testProvider) idToken(clientID, username, password string) string {
	t := p.t
	t.Helper()
	client := p.storage.clients[clientID]
	cfg := oauth2.Config{
		ClientID:     client.id,
		ClientSecret: client.secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.op.AuthorizationEndpoint().Absolute(p.URL),
			TokenURL:  p.op.TokenEndpoint().Absolute(p.URL),
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: callbackRedirectURI,
		Scopes:      []string{"openid", "profile", "email", "groups"},
	}
	browser := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	// authorize → login page
	loc := p.redirect(browser, http.MethodGet, cfg.AuthCodeURL("st4te", oauth2.SetAuthURLParam("nonce", "n0nce")), nil)
	id := loc.Query().Get("id")
	if loc.Path != "/login" || id == "" {
		t.Fatalf("authorize redirected to %s, want the login page", loc)
	}
	// login page → library callback → client's redirect URI with a code
	loc = p.redirect(browser, http.MethodPost, p.URL+"/login",
		url.Values{"id": {id}, "username": {username}, "password": {password}})
	loc = p.redirect(browser, http.MethodGet, loc.String(), nil)
	code := loc.Query().Get("code")
	if !strings.HasPrefix(loc.String(), callbackRedirectURI) || code == "" || loc.Query().Get("state") != "st4te" {
		t.Fatalf("callback redirected to %s, want the client's redirect URI with a code", loc)
	}

	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, browser)
	tok, err := cfg.Exchange(ctx, code)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no ID token in the token response")
	}
	return raw
}

// redirect sends a request and returns where the provider redirects to.
func (p *testProvider) redirect(c *http.Client, method, target string, form url.Values) *url.URL {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(p.t.Context(), method, target, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("%s %s: status %d, want a redirect: %s", method, target, resp.StatusCode, msg)
	}
	loc, err := resp.Location()
	if err != nil {
		p.t.Fatal(err)
	}
	return loc
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

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

// op.Client
func (c *testClient) GetID() string                       { return c.id }
func (c *testClient) RedirectURIs() []string              { return []string{callbackRedirectURI} }
func (c *testClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *testClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *testClient) AuthMethod() zoidc.AuthMethod        { return zoidc.AuthMethodBasic }
func (c *testClient) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode}
}
func (c *testClient) GrantTypes() []zoidc.GrantType        { return c.grants }
func (c *testClient) LoginURL(id string) string            { return c.loginURL + url.QueryEscape(id) }
func (c *testClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *testClient) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *testClient) DevMode() bool                        { return false }
func (c *testClient) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (c *testClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *testClient) ClockSkew() time.Duration             { return 0 }
func (c *testClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *testClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// memStorage is a minimal in-memory op.Storage: users, clients, pending
// auth requests and codes, one RSA signing key. Refresh tokens and
// revocation are not supported.
type memStorage struct {
	key   *rsa.PrivateKey
	keyID string

	mu       sync.Mutex
	users    map[string]*testUser // by subject
	clients  map[string]*testClient
	requests map[string]*authRequest
	codes    map[string]string // code → request ID
}

var _ op.Storage = (*memStorage)(nil)

var errNotFound = errors.New("not found")

func (s *memStorage) checkPassword(username, password string) *testUser {
	for _, u := range s.users {
		if (u.username == username || u.subject == username) && u.password == password {
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
	req.subject, req.done, req.authTime = u.subject, true, time.Now()
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
	info.Subject = u.subject
	if slices.Contains(scopes, zoidc.ScopeProfile) {
		info.PreferredUsername = u.username
	}
	if slices.Contains(scopes, zoidc.ScopeEmail) {
		info.Email = u.email
	}
	if slices.Contains(scopes, "groups") && u.groups != nil {
		info.AppendClaims("groups", u.groups)
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
