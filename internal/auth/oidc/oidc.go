// Package oidc is the credential driver for OpenID Connect providers.
//
// Users log in in one of two ways, chosen by the credentials:
//
//   - The password is an ID token (a signed JWT) that the provider issued
//     for the configured client, e.g. obtained by a login helper through the
//     authorization code flow. The token is verified locally against the
//     provider's published keys; the user name must be empty, "oidc" or the
//     name the token carries.
//   - Otherwise user name and password are sent to the provider's token
//     endpoint in an OAuth 2.0 resource owner password credentials grant,
//     and the ID token it returns is verified the same way.
//
// The verified token's claims give the user name, the server administrator
// flag and roles in auth tenants (see Config).
package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"keppel/internal/auth"
	"keppel/internal/models"
)

// ErrUnavailable is returned (wrapped) when the provider cannot be reached
// or answers with a server error. It is never combined with
// auth.ErrBadCredentials.
var ErrUnavailable = errors.New("OpenID provider unavailable")

// ImplicitUsername may be given as the user name together with an ID token
// as password, for clients that insist on a user name.
const ImplicitUsername = "oidc"

// defaultHTTPTimeout bounds every request to the provider when the caller
// does not bring its own HTTP client.
const defaultHTTPTimeout = 15 * time.Second

// supportedAlgs are the asymmetric signature algorithms go-oidc verifies.
// "none" and the HMAC algorithms are never accepted.
var supportedAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512,
	gooidc.EdDSA,
}

// Driver authenticates users with an OpenID Connect provider. It is safe
// for concurrent use.
type Driver struct {
	cfg      Config
	client   *http.Client
	verifier *gooidc.IDTokenVerifier
	oauth    oauth2.Config
	// now is the verifier's clock; tests move it.
	now func() time.Time
}

var _ auth.Driver = (*Driver)(nil)

// discovery holds the fields of the provider's discovery document that
// go-oidc does not expose.
type discovery struct {
	JWKSURL          string   `json:"jwks_uri"`
	SigningAlgs      []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
}

// New validates cfg and fetches the provider's discovery document. It fails
// if the provider cannot be reached or its discovery document names another
// issuer. Signing keys are fetched on first use and whenever a token names an
// unknown key.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	d := &Driver{cfg: cfg, client: client, now: time.Now}

	provider, err := gooidc.NewProvider(gooidc.ClientContext(ctx, client), cfg.IssuerURL)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("oidc: discovery at %s: %w", cfg.IssuerURL, err)
		}
		return nil, fmt.Errorf("oidc: discovery at %s: %w: %w", cfg.IssuerURL, ErrUnavailable, err)
	}
	var disc discovery
	if err := provider.Claims(&disc); err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: %w", cfg.IssuerURL, err)
	}
	if disc.JWKSURL == "" {
		return nil, fmt.Errorf("oidc: discovery at %s: no jwks_uri", cfg.IssuerURL)
	}
	var algs []string
	for _, a := range disc.SigningAlgs {
		if slices.Contains(supportedAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(disc.SigningAlgs) > 0 && len(algs) == 0 {
		return nil, fmt.Errorf("oidc: discovery at %s: none of the ID token signing algorithms %q is supported",
			cfg.IssuerURL, disc.SigningAlgs)
	}

	// The key set keeps this context for its background-free fetches; only
	// its values (the HTTP client) matter, cancellation is ignored.
	keys := &keySet{remote: gooidc.NewRemoteKeySet(gooidc.ClientContext(context.WithoutCancel(ctx), client), disc.JWKSURL)}
	d.verifier = gooidc.NewVerifier(cfg.IssuerURL, keys, &gooidc.Config{
		ClientID:             cfg.ClientID,
		SupportedSigningAlgs: algs,
		Now:                  func() time.Time { return d.now() },
	})

	endpoint := provider.Endpoint()
	endpoint.AuthStyle = authStyle(cfg.ClientSecret, disc.TokenAuthMethods)
	d.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     endpoint,
		Scopes:       cfg.Scopes,
	}
	return d, nil
}

// authStyle picks how the client authenticates at the token endpoint:
// public clients send their ID in the form; confidential ones prefer HTTP
// Basic, the default of OpenID Connect Discovery when the provider lists no
// methods.
func authStyle(secret string, methods []string) oauth2.AuthStyle {
	switch {
	case secret == "":
		return oauth2.AuthStyleInParams
	case len(methods) == 0 || slices.Contains(methods, "client_secret_basic"):
		return oauth2.AuthStyleInHeader
	case slices.Contains(methods, "client_secret_post"):
		return oauth2.AuthStyleInParams
	default:
		return oauth2.AuthStyleAutoDetect
	}
}

// Authenticate implements auth.Driver. Refused credentials give an error
// that wraps auth.ErrBadCredentials; an unreachable provider gives one that
// wraps ErrUnavailable. Errors never contain the password or token.
func (d *Driver) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	if password == "" {
		return auth.Identity{}, fmt.Errorf("oidc: empty password: %w", auth.ErrBadCredentials)
	}
	if looksLikeJWT(password) {
		id, refusal, err := d.verify(ctx, password)
		if err != nil {
			return auth.Identity{}, err
		}
		if refusal != nil {
			return auth.Identity{}, fmt.Errorf("oidc: ID token refused: %w: %w", auth.ErrBadCredentials, refusal)
		}
		if username != "" && username != ImplicitUsername && username != id.Username {
			return auth.Identity{}, fmt.Errorf("oidc: the user name does not match the ID token's %q claim: %w",
				d.cfg.UsernameClaim, auth.ErrBadCredentials)
		}
		return id, nil
	}

	if username == "" {
		return auth.Identity{}, fmt.Errorf("oidc: empty user name: %w", auth.ErrBadCredentials)
	}
	rawIDToken, err := d.passwordGrant(ctx, username, password)
	if err != nil {
		return auth.Identity{}, err
	}
	id, refusal, err := d.verify(ctx, rawIDToken)
	if err != nil {
		return auth.Identity{}, err
	}
	if refusal != nil {
		// The provider has just accepted the password, so a token that
		// fails verification points at the configuration (ClientID, the
		// clock), not at the user.
		return auth.Identity{}, fmt.Errorf("oidc: the ID token from the password grant does not verify: %w", refusal)
	}
	return id, nil
}

// passwordGrant exchanges user name and password for a raw ID token.
func (d *Driver) passwordGrant(ctx context.Context, username, password string) (string, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, d.client)
	tok, err := d.oauth.PasswordCredentialsToken(ctx, username, password)
	if err != nil {
		return "", grantError(ctx, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", fmt.Errorf("oidc: password grant: the provider returned no ID token (are the scopes %q granted?)", d.cfg.Scopes)
	}
	return raw, nil
}

// grantError classifies a failed token request. The provider's response
// body is not quoted, only its status and error code.
func grantError(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("oidc: password grant: %w", ctxErr)
		}
		return fmt.Errorf("oidc: password grant: %w: %w", ErrUnavailable, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	switch re.ErrorCode {
	case "invalid_grant", "access_denied":
		return fmt.Errorf("oidc: password grant refused (%s): %w", re.ErrorCode, auth.ErrBadCredentials)
	case "unsupported_grant_type", "unauthorized_client":
		return fmt.Errorf("oidc: the provider does not allow the password grant for this client (%s); log in with an ID token as the password: %w",
			re.ErrorCode, auth.ErrBadCredentials)
	case "invalid_client":
		return fmt.Errorf("oidc: password grant: the provider refused the client credentials (invalid_client); check ClientID and ClientSecret")
	case "":
		if status >= 500 || status == http.StatusTooManyRequests {
			return fmt.Errorf("oidc: password grant: %w: HTTP status %d", ErrUnavailable, status)
		}
		return fmt.Errorf("oidc: password grant: unexpected answer with HTTP status %d", status)
	default:
		if status >= 500 || re.ErrorCode == "server_error" || re.ErrorCode == "temporarily_unavailable" {
			return fmt.Errorf("oidc: password grant: %w: %s (HTTP status %d)", ErrUnavailable, re.ErrorCode, status)
		}
		if re.ErrorCode == "invalid_scope" {
			return fmt.Errorf("oidc: password grant: the provider refused the configured Scopes (invalid_scope)")
		}
		return fmt.Errorf("oidc: password grant refused (%s, HTTP status %d): %w", re.ErrorCode, status, auth.ErrBadCredentials)
	}
}

// verify checks a raw ID token (signature, issuer, audience, expiry) and
// maps its claims to an identity. A token that does not pass gives a
// refusal; err is set only when the check could not be made (the provider's
// keys could not be fetched).
func (d *Driver) verify(ctx context.Context, rawIDToken string) (id auth.Identity, refusal, err error) {
	var fetchErr error
	tok, verr := d.verifier.Verify(context.WithValue(ctx, fetchErrKey{}, &fetchErr), rawIDToken)
	if verr != nil {
		if fetchErr != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return auth.Identity{}, nil, fmt.Errorf("oidc: fetching the provider's keys: %w", ctxErr)
			}
			return auth.Identity{}, nil, fmt.Errorf("oidc: fetching the provider's keys: %w: %v", ErrUnavailable, fetchErr)
		}
		return auth.Identity{}, verr, nil
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return auth.Identity{}, fmt.Errorf("claims: %w", err), nil
	}
	id, refusal = d.identity(tok.Subject, claims)
	return id, refusal, nil
}

// identity maps verified claims to an identity. It fails only when the
// token names no user.
func (d *Driver) identity(subject string, claims map[string]any) (auth.Identity, error) {
	name, _ := claims[d.cfg.UsernameClaim].(string)
	if name == "" {
		name = subject
	}
	if name == "" {
		return auth.Identity{}, fmt.Errorf("neither a %q nor a \"sub\" claim", d.cfg.UsernameClaim)
	}
	id := auth.Identity{Username: name}
	if d.cfg.AdminClaim != "" {
		id.IsAdmin = claimContains(claims[d.cfg.AdminClaim], d.cfg.AdminValue)
	}
	for _, m := range d.cfg.RoleMappings {
		if !claimContains(claims[m.Claim], m.Value) {
			continue
		}
		if id.Roles == nil {
			id.Roles = map[string]models.Role{}
		}
		if cur, ok := id.Roles[m.AuthTenantID]; !ok || m.Role.Includes(cur) {
			id.Roles[m.AuthTenantID] = m.Role
		}
	}
	return id, nil
}

// claimContains reports whether a claim value, a string or a list of
// strings, is or contains want. Other types never match.
func claimContains(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// looksLikeJWT reports whether s has the shape of a compact JWS: three
// base64url parts, the first a JSON object with an "alg". It does not check
// the signature.
func looksLikeJWT(s string) bool {
	if strings.Count(s, ".") != 2 {
		return false
	}
	header, _, _ := strings.Cut(s, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(raw, &h) == nil && h.Alg != ""
}

// fetchErrKey is the context key under which verify passes a slot for key
// set fetch errors to keySet.
type fetchErrKey struct{}

// keySet wraps go-oidc's remote key set to tell "the provider's keys could
// not be fetched" (the provider is down) apart from "no key verifies this
// token" (a forged or foreign token): go-oidc reports both as one opaque
// verification error.
type keySet struct {
	remote *gooidc.RemoteKeySet
}

// VerifySignature implements gooidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.remote.VerifySignature(ctx, jwt)
	// Fetch failures are the only errors go-oidc wraps ("fetching keys
	// %w"); a signature that no key verifies is a plain error.
	if err != nil && (errors.Unwrap(err) != nil || strings.HasPrefix(err.Error(), "fetching keys")) {
		if slot, ok := ctx.Value(fetchErrKey{}).(*error); ok {
			*slot = err
		}
	}
	return payload, err
}
