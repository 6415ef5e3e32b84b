package oidc

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"keppel/internal/auth"
	"keppel/internal/auth/oidc/oidctest"
	"keppel/internal/models"
)

// TestMain silences the test provider's log of refused requests, which the
// zitadel library writes to the default logger.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// testConfig maps the test provider's groups to roles: team-a views and
// team-a-push pushes in tenant1, team-b administers tenant2, keppel-admins
// are server administrators.
func testConfig(p *oidctest.Provider) Config {
	return Config{
		IssuerURL:    p.Issuer,
		ClientID:     "keppel",
		ClientSecret: "keppel-client-secret",
		Scopes:       []string{"openid", "profile", "groups"},
		AdminClaim:   "groups",
		AdminValue:   "keppel-admins",
		RoleMappings: []RoleMapping{
			{Claim: "groups", Value: "team-a-push", AuthTenantID: "tenant1", Role: models.RolePusher},
			{Claim: "groups", Value: "team-a", AuthTenantID: "tenant1", Role: models.RoleViewer},
			{Claim: "groups", Value: "team-b", AuthTenantID: "tenant2", Role: models.RoleAdmin},
		},
	}
}

func newDriver(t *testing.T, cfg Config) *Driver {
	t.Helper()
	d, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// mustRefuse checks that err wraps auth.ErrBadCredentials and quotes none
// of the secrets.
func mustRefuse(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("got error %v, want auth.ErrBadCredentials", err)
	}
	mustNotQuote(t, err, secrets...)
}

func mustNotQuote(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error quotes a secret: %v", err)
		}
	}
}

func TestPasswordGrantLogin(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{})
	d := newDriver(t, testConfig(p))
	ctx := t.Context()

	cases := []struct {
		username, password string
		want               auth.Identity
	}{
		{"alice", "alice-secret", auth.Identity{Username: "alice", IsAdmin: true,
			Roles: map[string]models.Role{"tenant1": models.RoleViewer}}},
		// The pusher mapping comes first and the viewer one matches too: the
		// higher role wins regardless of order.
		{"bob", "bob-secret", auth.Identity{Username: "bob",
			Roles: map[string]models.Role{"tenant1": models.RolePusher, "tenant2": models.RoleAdmin}}},
		// carol has no preferred_username: the subject names her.
		{"u-carol", "carol-secret", auth.Identity{Username: "u-carol"}},
	}
	for _, c := range cases {
		got, err := d.Authenticate(ctx, c.username, c.password)
		if err != nil {
			t.Fatalf("Authenticate(%s): %v", c.username, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Authenticate(%s) = %+v, want %+v", c.username, got, c.want)
		}
	}

	// Wrong password, unknown user, empty user name.
	for _, c := range [][2]string{{"alice", "wrong-password"}, {"mallory", "alice-secret"}, {"", "alice-secret"}, {"alice", ""}} {
		_, err := d.Authenticate(ctx, c[0], c[1])
		var secrets []string
		if c[1] != "" {
			secrets = append(secrets, c[1])
		}
		mustRefuse(t, err, secrets...)
	}
}

func TestIDTokenLogin(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{})
	d := newDriver(t, testConfig(p))
	ctx := t.Context()
	token := p.IDToken(t, "keppel", "alice", "alice-secret")
	want := auth.Identity{Username: "alice", IsAdmin: true, Roles: map[string]models.Role{"tenant1": models.RoleViewer}}

	for _, username := range []string{"", ImplicitUsername, "alice"} {
		got, err := d.Authenticate(ctx, username, token)
		if err != nil {
			t.Fatalf("Authenticate(%q, token): %v", username, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Authenticate(%q, token) = %+v, want %+v", username, got, want)
		}
	}

	// Another user's name with alice's token.
	_, err := d.Authenticate(ctx, "bob", token)
	mustRefuse(t, err, token)

	// A token whose payload was changed no longer matches its signature.
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(payload), `"alice"`, `"bob"`, 1)
	if forged == string(payload) {
		t.Fatal("payload does not contain the user name")
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	_, err = d.Authenticate(ctx, "", strings.Join(parts, "."))
	mustRefuse(t, err, parts[1], parts[2])
}

func TestExpiredIDToken(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{})
	d := newDriver(t, testConfig(p))
	token := p.IDToken(t, "keppel", "bob", "bob-secret")
	if _, err := d.Authenticate(t.Context(), "", token); err != nil {
		t.Fatalf("fresh token: %v", err)
	}

	// The provider issues tokens for an hour; two hours later bob's is
	// expired.
	d.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	_, err := d.Authenticate(t.Context(), "bob", token)
	mustRefuse(t, err, token)
	var expired *gooidc.TokenExpiredError
	if !errors.As(err, &expired) {
		t.Errorf("got %v, want a TokenExpiredError", err)
	}
}

func TestForeignIssuer(t *testing.T) {
	trusted := oidctest.New(t, oidctest.Options{})
	d := newDriver(t, testConfig(trusted))

	// Another provider (other keys, other issuer) with the same users and
	// client IDs.
	other := oidctest.New(t, oidctest.Options{})
	token := other.IDToken(t, "keppel", "alice", "alice-secret")
	_, err := d.Authenticate(t.Context(), "alice", token)
	mustRefuse(t, err, token)

	// A provider with the trusted provider's key but another issuer name:
	// the signature verifies, the issuer does not match.
	sibling := oidctest.New(t, oidctest.Options{KeysOf: trusted})
	token = sibling.IDToken(t, "keppel", "alice", "alice-secret")
	_, err = d.Authenticate(t.Context(), "alice", token)
	mustRefuse(t, err, token)
	if !strings.Contains(err.Error(), "different provider") {
		t.Errorf("got %v, want an issuer mismatch", err)
	}

	// A provider with its own keys that claims to be the trusted issuer.
	impostor := oidctest.New(t, oidctest.Options{Issuer: trusted.Issuer})
	token = impostor.IDToken(t, "keppel", "alice", "alice-secret")
	_, err = d.Authenticate(t.Context(), "alice", token)
	mustRefuse(t, err, token)
	if !strings.Contains(err.Error(), "signature") {
		t.Errorf("got %v, want a signature failure", err)
	}
}

func TestForeignAudience(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{})
	d := newDriver(t, testConfig(p))
	token := p.IDToken(t, "other-app", "alice", "alice-secret")
	_, err := d.Authenticate(t.Context(), "alice", token)
	mustRefuse(t, err, token)
	if !strings.Contains(err.Error(), "audience") {
		t.Errorf("got %v, want an audience mismatch", err)
	}
}

// TestProviderWithoutPasswordGrant uses zitadel's provider as it is, with no
// password grant: passwords are refused, ID tokens work.
func TestProviderWithoutPasswordGrant(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{NoPasswordGrant: true})
	d := newDriver(t, testConfig(p))

	_, err := d.Authenticate(t.Context(), "alice", "alice-secret")
	mustRefuse(t, err, "alice-secret")
	if !strings.Contains(err.Error(), "unsupported_grant_type") {
		t.Errorf("got %v, want it to name unsupported_grant_type", err)
	}

	id, err := d.Authenticate(t.Context(), "", p.IDToken(t, "keppel", "bob", "bob-secret"))
	if err != nil || id.Username != "bob" {
		t.Fatalf("ID token login: %+v, %v", id, err)
	}
}

// TestClientWithoutPasswordGrant uses a provider that supports the password
// grant but not for the registry's client: passwords are refused
// (unauthorized_client), ID tokens work.
func TestClientWithoutPasswordGrant(t *testing.T) {
	clients := oidctest.DefaultClients()
	for i := range clients {
		clients[i].NoPasswordGrant = true
	}
	p := oidctest.New(t, oidctest.Options{Clients: clients})
	d := newDriver(t, testConfig(p))

	_, err := d.Authenticate(t.Context(), "bob", "bob-secret")
	mustRefuse(t, err, "bob-secret")
	if !strings.Contains(err.Error(), "unauthorized_client") {
		t.Errorf("got %v, want it to name unauthorized_client", err)
	}

	id, err := d.Authenticate(t.Context(), "", p.IDToken(t, "keppel", "bob", "bob-secret"))
	if err != nil || id.Username != "bob" {
		t.Fatalf("ID token login: %+v, %v", id, err)
	}
}

func TestProviderDown(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{})
	d := newDriver(t, testConfig(p))
	// A driver that has not fetched the provider's keys yet.
	fresh := newDriver(t, testConfig(p))
	token := p.IDToken(t, "keppel", "alice", "alice-secret")
	if _, err := d.Authenticate(t.Context(), "", token); err != nil {
		t.Fatal(err)
	}
	p.Close()

	mustBeUnavailable := func(what string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, auth.ErrBadCredentials) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: got %v, want ErrUnavailable and not ErrBadCredentials", what, err)
		}
	}
	_, err := d.Authenticate(t.Context(), "alice", "alice-secret")
	mustBeUnavailable("password grant", err)
	mustNotQuote(t, err, "alice-secret")

	_, err = fresh.Authenticate(t.Context(), "", token)
	mustBeUnavailable("ID token with keys not fetched", err)
	mustNotQuote(t, err, token)

	_, err = New(t.Context(), testConfig(p))
	mustBeUnavailable("New", err)

	// Keys already fetched still verify tokens: verification is local.
	if _, err := d.Authenticate(t.Context(), "", token); err != nil {
		t.Errorf("ID token with cached keys: %v", err)
	}
}

func TestConcurrentLogins(t *testing.T) {
	p := oidctest.New(t, oidctest.Options{})
	d := newDriver(t, testConfig(p))
	token := p.IDToken(t, "keppel", "bob", "bob-secret")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = d.Authenticate(t.Context(), "", token)
			} else {
				_, err = d.Authenticate(t.Context(), "bob", "bob-secret")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	valid := Config{IssuerURL: "https://idp.example", ClientID: "keppel"}
	cases := []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.IssuerURL = "" }, "IssuerURL is required"},
		{func(c *Config) { c.IssuerURL = "idp.example" }, "IssuerURL"},
		{func(c *Config) { c.IssuerURL = "http://idp.example" }, "IssuerURL"},
		{func(c *Config) { c.IssuerURL = "https://idp.example/?tenant=1" }, "IssuerURL"},
		{func(c *Config) { c.IssuerURL = "ftp://idp.example" }, "IssuerURL"},
		{func(c *Config) { c.ClientID = " " }, "ClientID"},
		{func(c *Config) { c.Scopes = []string{"profile"} }, "Scopes"},
		{func(c *Config) { c.Scopes = []string{"openid", "two words"} }, "Scopes[1]"},
		{func(c *Config) { c.AdminClaim = "groups" }, "AdminValue"},
		{func(c *Config) { c.AdminValue = "admins" }, "AdminClaim"},
		{func(c *Config) {
			c.RoleMappings = []RoleMapping{{Claim: "g", Value: "v", AuthTenantID: "t", Role: models.RoleAdmin}, {Value: "v", AuthTenantID: "t", Role: models.RoleAdmin}}
		}, "RoleMappings[1].Claim"},
		{func(c *Config) {
			c.RoleMappings = []RoleMapping{{Claim: "g", AuthTenantID: "t", Role: models.RoleAdmin}}
		}, "RoleMappings[0].Value"},
		{func(c *Config) { c.RoleMappings = []RoleMapping{{Claim: "g", Value: "v", Role: models.RoleAdmin}} }, "RoleMappings[0].AuthTenantID"},
		{func(c *Config) {
			c.RoleMappings = []RoleMapping{{Claim: "g", Value: "v", AuthTenantID: "t", Role: "owner"}}
		}, "RoleMappings[0].Role"},
	}
	for _, c := range cases {
		cfg := valid
		c.change(&cfg)
		_, err := New(t.Context(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error naming %s", err, c.want)
		}
	}

	got, err := valid.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.UsernameClaim != "preferred_username" || !reflect.DeepEqual(got.Scopes, []string{"openid", "profile"}) {
		t.Errorf("defaults: %+v", got)
	}
	for _, issuer := range []string{"http://127.0.0.1:5556/dex", "http://localhost:8080", "http://[::1]:8080/"} {
		cfg := valid
		cfg.IssuerURL = issuer
		if _, err := cfg.withDefaults(); err != nil {
			t.Errorf("%s: %v", issuer, err)
		}
	}
}

func TestGrantErrorClassification(t *testing.T) {
	retrieve := func(status int, code string) error {
		return &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, ErrorCode: code,
			Body: []byte(`{"error":"x","leak":"s3cr3t"}`)}
	}
	cases := []struct {
		err                error
		refused, unavailbl bool
	}{
		{retrieve(400, "invalid_grant"), true, false},
		{retrieve(401, "access_denied"), true, false},
		{retrieve(400, "unsupported_grant_type"), true, false},
		{retrieve(400, "unauthorized_client"), true, false},
		{retrieve(400, "invalid_request"), true, false},
		{retrieve(401, "invalid_client"), false, false},
		{retrieve(400, "invalid_scope"), false, false},
		{retrieve(503, "temporarily_unavailable"), false, true},
		{retrieve(500, "server_error"), false, true},
		{retrieve(502, ""), false, true},
		{retrieve(404, ""), false, false},
		{errors.New("dial tcp 127.0.0.1:1: connection refused"), false, true},
	}
	for _, c := range cases {
		err := grantError(t.Context(), c.err)
		if errors.Is(err, auth.ErrBadCredentials) != c.refused || errors.Is(err, ErrUnavailable) != c.unavailbl {
			t.Errorf("%v → %v: want refused=%v unavailable=%v", c.err, err, c.refused, c.unavailbl)
		}
		mustNotQuote(t, err, "s3cr3t")
	}
}

func TestLooksLikeJWT(t *testing.T) {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"k"}`))
	for s, want := range map[string]bool{
		header + ".e30.c2ln":   true,
		header + ".e30.":       true,
		"hunter2":              false,
		"a.b.c":                false,
		"e30.e30.e30":          false, // no alg
		header + ".e30":        false,
		header + ".e30.a.b.c":  false,
		"pass.word.with.dots!": false,
	} {
		if got := looksLikeJWT(s); got != want {
			t.Errorf("looksLikeJWT(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestClaimContains(t *testing.T) {
	for _, c := range []struct {
		v    any
		want bool
	}{
		{"admins", true},
		{"admins2", false},
		{[]any{"x", "admins"}, true},
		{[]any{"x", 1.0, true}, false},
		{true, false},
		{nil, false},
		{map[string]any{"admins": true}, false},
	} {
		if got := claimContains(c.v, "admins"); got != c.want {
			t.Errorf("claimContains(%#v) = %v, want %v", c.v, got, c.want)
		}
	}
}
