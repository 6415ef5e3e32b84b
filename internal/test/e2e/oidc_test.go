package e2e

// End-to-end tests of the OpenID Connect credential driver: a real OpenID
// provider (zitadel's op library, run by oidctest on 127.0.0.1) and a
// registry configured with auth.driver=oidc, driven over HTTP with the
// token endpoint and go-containerregistry.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"keppel/internal/auth"
	"keppel/internal/auth/oidc/oidctest"
	"keppel/internal/test"
)

const (
	oidcClientID     = "keppel-e2e"
	oidcClientSecret = "keppel-e2e-client-secret"
	oidcAccount      = "team-a-apps"
	oidcTenant       = "team-a"
)

// oidcUsers are the provider's users: dave is in group devs (pusher in
// team-a), erin in admins (server administrator), frank only in an
// unmapped group.
var oidcUsers = []oidctest.User{
	{Subject: "u-dave", Username: "dave", Password: "dave-password", Groups: []string{"devs"}},
	{Subject: "u-erin", Username: "erin", Password: "erin-password", Groups: []string{"admins"}},
	{Subject: "u-frank", Username: "frank", Password: "frank-password", Groups: []string{"qa"}},
}

func oidcUser(name string) oidctest.User {
	for _, u := range oidcUsers {
		if u.Username == name {
			return u
		}
	}
	panic("no OIDC test user " + name)
}

// oidcNewProvider starts a provider with oidcUsers and the registry's
// client.
func oidcNewProvider(t *testing.T) *oidctest.Provider {
	t.Helper()
	return oidctest.New(t, oidctest.Options{
		Users:   oidcUsers,
		Clients: []oidctest.Client{{ID: oidcClientID, Secret: oidcClientSecret}},
	})
}

// oidcNewServer starts a registry that trusts the provider: driver, issuer
// and client come from the KEPPEL_AUTH_* environment variables, the scopes,
// the admin claim and the role mappings from a YAML file (they have no
// environment variables). The account team-a-apps (tenant team-a) is
// created by the built-in admin.
func oidcNewServer(t *testing.T, p *oidctest.Provider) *test.Server {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "keppel.yaml")
	yaml := `auth:
  oidc:
    scopes: [openid, profile, groups]
    admin_claim: groups
    admin_value: admins
    role_mappings:
      - {claim: groups, value: devs, auth_tenant_id: team-a, role: pusher}
`
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return test.NewServer(t, test.Options{
		StorageDriver: "memory",
		ConfigFile:    cfgFile,
		Env: map[string]string{
			"KEPPEL_AUTH_DRIVER":             "oidc",
			"KEPPEL_AUTH_OIDC_ISSUER_URL":    p.Issuer,
			"KEPPEL_AUTH_OIDC_CLIENT_ID":     oidcClientID,
			"KEPPEL_AUTH_OIDC_CLIENT_SECRET": oidcClientSecret,
		},
		Accounts: map[string]string{oidcAccount: oidcTenant},
	})
}

// oidcLoginResult is the answer of the token endpoint.
type oidcLoginResult struct {
	status int
	code   string // error code of a refusal
	claims auth.Claims
}

// oidcLogin asks GET /keppel/v1/auth for a token with basic credentials.
func oidcLogin(t *testing.T, s *test.Server, username, password string, scopes ...string) oidcLoginResult {
	t.Helper()
	q := url.Values{"service": {s.Host}, "scope": scopes}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/keppel/v1/auth?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(username, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	res := oidcLoginResult{status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		var env struct {
			Errors []struct {
				Code string `json:"code"`
			} `json:"errors"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err == nil && len(env.Errors) > 0 {
			res.code = env.Errors[0].Code
		}
		return res
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	res.claims = oidcTokenClaims(t, body.Token)
	return res
}

// oidcTokenClaims decodes a JWT's payload without verifying it.
func oidcTokenClaims(t *testing.T, token string) auth.Claims {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c auth.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// oidcActions returns the actions a token grants on a repository.
func oidcActions(c auth.Claims, repo string) []string {
	var out []string
	for _, sc := range c.Access {
		if sc.Type == "repository" && sc.Name == repo {
			out = append(out, sc.Actions...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// oidcMustGrant checks that a login succeeded for the user with pull and
// push on the repository.
func oidcMustGrant(t *testing.T, res oidcLoginResult, wantUser, repo string) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("token request: status %d (%s), want 200", res.status, res.code)
	}
	if res.claims.Subject != wantUser {
		t.Errorf("token subject %q, want %q", res.claims.Subject, wantUser)
	}
	if got := oidcActions(res.claims, repo); !slices.Equal(got, []string{"pull", "push"}) {
		t.Errorf("token grants %q on %s, want pull and push", got, repo)
	}
}

// oidcMustRefuse checks that a login was refused with 401 UNAUTHORIZED.
func oidcMustRefuse(t *testing.T, res oidcLoginResult) {
	t.Helper()
	if res.status != http.StatusUnauthorized || res.code != "UNAUTHORIZED" {
		t.Fatalf("token request: status %d (%s), want 401 UNAUTHORIZED", res.status, res.code)
	}
}

// oidcPushPull pushes a random image with the credentials through the
// token flow, pulls it back and compares digests.
func oidcPushPull(t *testing.T, s *test.Server, repoAndTag string, cred authn.Authenticator) {
	t.Helper()
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, s, repoAndTag)
	if err := remote.Write(r, img, remote.WithAuth(cred), remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push %s: %v", repoAndTag, err)
	}
	pulled, err := remote.Image(r, remote.WithAuth(cred), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull %s: %v", repoAndTag, err)
	}
	want, _ := img.Digest()
	got, err := pulled.Digest()
	if err != nil || got != want {
		t.Fatalf("pulled %s: digest %s (%v), want %s", repoAndTag, got, err, want)
	}
}

// oidcStatusOf returns the HTTP status of a go-containerregistry error.
func oidcStatusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func TestOIDCLogin(t *testing.T) {
	t.Parallel()
	p := oidcNewProvider(t)
	s := oidcNewServer(t, p)
	repo := oidcAccount + "/app"
	scope := "repository:" + repo + ":pull,push"
	dave := oidcUser("dave")

	t.Run("password grant", func(t *testing.T) {
		// The token endpoint sends dave's password to the provider in a
		// password grant; group devs makes him pusher in team-a.
		res := oidcLogin(t, s, dave.Username, dave.Password, scope)
		oidcMustGrant(t, res, "dave", repo)
		// The whole token flow with a registry client.
		oidcPushPull(t, s, repo+":pw", &authn.Basic{Username: dave.Username, Password: dave.Password})

		oidcMustRefuse(t, oidcLogin(t, s, dave.Username, "wrong-password", scope))
		oidcMustRefuse(t, oidcLogin(t, s, "mallory", dave.Password, scope))
	})

	t.Run("ID token from the authorization code flow", func(t *testing.T) {
		idToken := p.IDToken(t, oidcClientID, dave.Username, dave.Password)
		for _, username := range []string{"oidc", "", "dave"} {
			oidcMustGrant(t, oidcLogin(t, s, username, idToken, scope), "dave", repo)
		}
		// A user name other than the token's is refused.
		oidcMustRefuse(t, oidcLogin(t, s, "erin", idToken, scope))
		oidcPushPull(t, s, repo+":idtoken", &authn.Basic{Username: "oidc", Password: idToken})
	})

	t.Run("admin group", func(t *testing.T) {
		erin := oidcUser("erin")
		res := oidcLogin(t, s, erin.Username, erin.Password, scope)
		oidcMustGrant(t, res, "erin", repo)
		if !res.claims.Admin {
			t.Error("erin's token does not mark a server administrator")
		}
		// Only server administrators may create accounts in any tenant.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, s.URL+"/keppel/v1/accounts/erin-apps",
			strings.NewReader(`{"account":{"auth_tenant_id":"elsewhere"}}`))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(erin.Username, erin.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			t.Fatalf("erin creating an account: status %d", resp.StatusCode)
		}
		oidcPushPull(t, s, "erin-apps/tool:v1", &authn.Basic{Username: erin.Username, Password: erin.Password})
	})

	t.Run("unmapped group", func(t *testing.T) {
		frank := oidcUser("frank")
		res := oidcLogin(t, s, frank.Username, frank.Password, scope)
		if res.status != http.StatusOK {
			t.Fatalf("frank's login: status %d (%s), want 200 with no access", res.status, res.code)
		}
		if res.claims.Subject != "frank" || len(res.claims.Access) != 0 || res.claims.Admin || len(res.claims.Roles) != 0 {
			t.Fatalf("frank's token: subject %q, access %+v, admin %v, roles %v; want frank with nothing",
				res.claims.Subject, res.claims.Access, res.claims.Admin, res.claims.Roles)
		}
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		err = remote.Write(ref(t, s, repo+":frank"), img,
			remote.WithAuth(&authn.Basic{Username: frank.Username, Password: frank.Password}), remote.WithContext(t.Context()))
		if oidcStatusOf(err) != http.StatusUnauthorized {
			t.Fatalf("frank's push: %v, want 401", err)
		}
	})

	t.Run("expired ID token", func(t *testing.T) {
		// This subtest alone changes the client's token lifetime; the
		// subtests run one after another.
		const lifetime = 3 * time.Second
		p.SetIDTokenLifetime(oidcClientID, lifetime)
		idToken := p.IDToken(t, oidcClientID, dave.Username, dave.Password)
		p.SetIDTokenLifetime(oidcClientID, oidctest.DefaultIDTokenLifetime)
		exp := oidcTokenClaims(t, idToken).ExpiresAt
		if exp == nil || time.Until(exp.Time) > lifetime {
			t.Fatalf("the ID token expires at %v, want within %s", exp, lifetime)
		}
		// While it is valid, it works (its exp has whole seconds, so at
		// least 2s remain).
		oidcMustGrant(t, oidcLogin(t, s, "oidc", idToken, scope), "dave", repo)

		time.Sleep(time.Until(exp.Time) + 100*time.Millisecond)
		oidcMustRefuse(t, oidcLogin(t, s, "oidc", idToken, scope))
		oidcMustRefuse(t, oidcLogin(t, s, "", idToken, scope))
	})

	t.Run("untrusted issuer", func(t *testing.T) {
		// Another provider with the same users and client: its own issuer
		// and keys.
		other := oidcNewProvider(t)
		idToken := other.IDToken(t, oidcClientID, dave.Username, dave.Password)
		oidcMustRefuse(t, oidcLogin(t, s, "oidc", idToken, scope))
		oidcMustRefuse(t, oidcLogin(t, s, "dave", idToken, scope))
	})

	t.Run("built-in admin", func(t *testing.T) {
		res := oidcLogin(t, s, "admin", test.AdminPassword, scope)
		oidcMustGrant(t, res, "admin", repo)
		oidcPushPull(t, s, repo+":admin", &authn.Basic{Username: "admin", Password: test.AdminPassword})
		oidcMustRefuse(t, oidcLogin(t, s, "admin", "wrong-password", scope))
	})
}

// TestOIDCProviderDown checks that an unreachable provider makes the token
// endpoint answer 503 UNAVAILABLE, not 401: a client must not conclude that
// the password is wrong.
func TestOIDCProviderDown(t *testing.T) {
	t.Parallel()
	p := oidcNewProvider(t)
	s := oidcNewServer(t, p)
	scope := "repository:" + oidcAccount + "/app:pull"
	dave := oidcUser("dave")
	// Obtained while the provider is up; the registry has not fetched the
	// provider's keys yet (it does so on first use).
	idToken := p.IDToken(t, oidcClientID, dave.Username, dave.Password)
	p.Close()

	mustBeUnavailable := func(what string, res oidcLoginResult) {
		t.Helper()
		if res.status != http.StatusServiceUnavailable || res.code != "UNAVAILABLE" {
			t.Errorf("%s: status %d (%s), want 503 UNAVAILABLE", what, res.status, res.code)
		}
	}
	mustBeUnavailable("password grant", oidcLogin(t, s, dave.Username, dave.Password, scope))
	// The provider cannot tell a wrong password either.
	mustBeUnavailable("password grant with a wrong password", oidcLogin(t, s, dave.Username, "wrong-password", scope))
	mustBeUnavailable("ID token, keys not fetched", oidcLogin(t, s, "oidc", idToken, scope))

	// The built-in store is asked first: the admin does not depend on the
	// provider.
	res := oidcLogin(t, s, "admin", test.AdminPassword, scope)
	if res.status != http.StatusOK || res.claims.Subject != "admin" {
		t.Errorf("admin login with the provider down: status %d (%s)", res.status, res.code)
	}
}
