// Package oidctest runs an OpenID provider in-process for tests: zitadel's
// provider library (github.com/zitadel/oidc/v3/pkg/op) served with httptest
// on 127.0.0.1. The library does discovery, keys, the authorization code
// flow, client authentication and the signing of ID tokens; this package
// supplies what the library leaves to its users: an in-memory op.Storage, a
// login page, and (because the library has no resource owner password grant)
// the password grant as an HTTP interceptor of the library that
// authenticates the client with the library's own client authentication and
// issues tokens with op.CreateTokenResponse.
//
// It is test support, like keppel/internal/test: production code must not
// import it.
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

// GrantTypePassword is RFC 6749's resource owner password credentials
// grant, which zitadel's op does not implement itself.
const GrantTypePassword zoidc.GrantType = "password"

// CallbackURI is the redirect URI registered for every client. IDToken never
// follows the redirect to it, it only reads the code from it.
const CallbackURI = "https://registry.example/oidc/callback"

// DefaultIDTokenLifetime is how long ID tokens are valid unless a client
// says otherwise.
const DefaultIDTokenLifetime = time.Hour

// User is a user of the provider. ID tokens carry Subject as "sub",
// Username as "preferred_username" (scope "profile"; omitted when empty),
// Email as "email" (scope "email") and Groups as "groups" (scope "groups";
// omitted when nil).
type User struct {
	Subject  string
	Username string
	Password string
	Email    string
	Groups   []string
}

// Client is a relying party registered at the provider. It authenticates
// with HTTP Basic (or, in the password grant, the form) and may use the
// authorization code grant and, unless NoPasswordGrant, the password grant.
type Client struct {
	ID     string
	Secret string
	// NoPasswordGrant refuses the password grant for this client
	// (unauthorized_client).
	NoPasswordGrant bool
	// IDTokenLifetime is the validity of the ID tokens issued to the client
	// (default DefaultIDTokenLifetime). Provider.SetIDTokenLifetime changes
	// it at run time.
	IDTokenLifetime time.Duration
}

// DefaultUsers are the users of a provider whose Options name none:
// alice (groups keppel-admins, team-a), bob (team-a, team-a-push, team-b)
// and carol (subject u-carol, no preferred_username, no groups).
func DefaultUsers() []User {
	return []User{
		{Subject: "u-alice", Username: "alice", Password: "alice-secret", Email: "alice@example.org",
			Groups: []string{"keppel-admins", "team-a"}},
		{Subject: "u-bob", Username: "bob", Password: "bob-secret", Groups: []string{"team-a", "team-a-push", "team-b"}},
		{Subject: "u-carol", Password: "carol-secret"},
	}
}

// DefaultClients are the clients of a provider whose Options name none:
// "keppel" (secret "keppel-client-secret") and "other-app" (secret
// "other-secret").
func DefaultClients() []Client {
	return []Client{
		{ID: "keppel", Secret: "keppel-client-secret"},
		{ID: "other-app", Secret: "other-secret"},
	}
}

// Options configure a provider.
type Options struct {
	// Issuer overrides the issuer (default: the provider's own URL), to
	// impersonate another provider.
	Issuer string
	// NoPasswordGrant leaves the library's token endpoint as it is: the
	// password grant is unsupported (unsupported_grant_type).
	NoPasswordGrant bool
	// KeysOf makes the provider sign with another provider's key.
	KeysOf *Provider
	// Users default to DefaultUsers().
	Users []User
	// Clients default to DefaultClients().
	Clients []Client
}

// Provider is a running OpenID provider. It stops when the test that
// started it ends, or on Close.
type Provider struct {
	server  *httptest.Server
	op      *op.Provider
	storage *memStorage
	// URL is where the provider listens; Issuer is what it puts into
	// tokens and its discovery document (the same unless Options.Issuer
	// impersonates another issuer).
	URL    string
	Issuer string
}

// New starts a provider with a fresh RSA signing key (unless
// Options.KeysOf) on a random port of 127.0.0.1.
func New(t testing.TB, opts Options) *Provider {
	t.Helper()
	server := httptest.NewUnstartedServer(nil) // listens on 127.0.0.1
	p := &Provider{server: server, URL: "http://" + server.Listener.Addr().String()}
	p.Issuer = p.URL
	if opts.Issuer != "" {
		p.Issuer = opts.Issuer
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyID := randomID()
	if opts.KeysOf != nil {
		key, keyID = opts.KeysOf.storage.key, opts.KeysOf.storage.keyID
	}
	p.storage = &memStorage{
		key:      key,
		keyID:    keyID,
		users:    map[string]*User{},
		clients:  map[string]*client{},
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
	}
	users := opts.Users
	if users == nil {
		users = DefaultUsers()
	}
	for _, u := range users {
		if u.Subject == "" {
			t.Fatalf("oidctest: user %q has no subject", u.Username)
		}
		u.Groups = append([]string(nil), u.Groups...)
		p.storage.users[u.Subject] = &u
	}
	clients := opts.Clients
	if clients == nil {
		clients = DefaultClients()
	}
	for _, c := range clients {
		grants := []zoidc.GrantType{zoidc.GrantTypeCode}
		if !c.NoPasswordGrant {
			grants = append(grants, GrantTypePassword)
		}
		cl := &client{id: c.ID, secret: c.Secret, grants: grants, loginURL: p.URL + "/login?id="}
		lifetime := c.IDTokenLifetime
		if lifetime <= 0 {
			lifetime = DefaultIDTokenLifetime
		}
		cl.lifetime.Store(int64(lifetime))
		p.storage.clients[c.ID] = cl
	}

	config := &op.Config{CodeMethodS256: true, AuthMethodPost: true}
	if _, err := rand.Read(config.CryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	options := []op.Option{op.WithAllowInsecure()}
	if !opts.NoPasswordGrant {
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

// Close stops the provider: connections to it are refused from now on. It
// blocks until outstanding requests have been answered.
func (p *Provider) Close() { p.server.Close() }

// SetIDTokenLifetime changes the validity of the ID tokens issued to the
// client from now on. It panics for an unknown client.
func (p *Provider) SetIDTokenLifetime(clientID string, d time.Duration) {
	c, ok := p.storage.clients[clientID]
	if !ok {
		panic(fmt.Sprintf("oidctest: unknown client %q", clientID))
	}
	c.lifetime.Store(int64(d))
}

// login is the login page the library redirects to: it checks the user's
// password for the pending auth request and sends the browser back to the
// library's callback.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
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
func (p *Provider) passwordGrant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != p.op.TokenEndpoint().Relative() {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			op.RequestError(w, r, zoidc.ErrInvalidRequest().WithDescription("cannot parse form"), nil)
			return
		}
		if zoidc.GrantType(r.PostForm.Get("grant_type")) != GrantTypePassword {
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
		if !op.ValidateGrantType(client, GrantTypePassword) {
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
			subject:  user.Subject,
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

// IDToken logs the user in at the provider with the authorization code
// flow, as a browser and a relying party would (authorize, login page,
// callback, code exchange), and returns the ID token issued to the client
// with the scopes openid, profile, email and groups.
func (p *Provider) IDToken(t testing.TB, clientID, username, password string) string {
	t.Helper()
	c, ok := p.storage.clients[clientID]
	if !ok {
		t.Fatalf("oidctest: unknown client %q", clientID)
	}
	cfg := oauth2.Config{
		ClientID:     c.id,
		ClientSecret: c.secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.op.AuthorizationEndpoint().Absolute(p.URL),
			TokenURL:  p.op.TokenEndpoint().Absolute(p.URL),
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: CallbackURI,
		Scopes:      []string{"openid", "profile", "email", "groups"},
	}
	browser := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	// authorize → login page
	loc := redirect(t, browser, http.MethodGet, cfg.AuthCodeURL("st4te", oauth2.SetAuthURLParam("nonce", "n0nce")), nil)
	id := loc.Query().Get("id")
	if loc.Path != "/login" || id == "" {
		t.Fatalf("authorize redirected to %s, want the login page", loc)
	}
	// login page → library callback → client's redirect URI with a code
	loc = redirect(t, browser, http.MethodPost, p.URL+"/login",
		url.Values{"id": {id}, "username": {username}, "password": {password}})
	loc = redirect(t, browser, http.MethodGet, loc.String(), nil)
	code := loc.Query().Get("code")
	if !strings.HasPrefix(loc.String(), CallbackURI) || code == "" || loc.Query().Get("state") != "st4te" {
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
func redirect(t testing.TB, c *http.Client, method, target string, form url.Values) *url.URL {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s %s: status %d, want a redirect: %s", method, target, resp.StatusCode, msg)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
