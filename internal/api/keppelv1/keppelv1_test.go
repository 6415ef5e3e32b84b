package keppelv1_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"keppel/internal/auth"
	"keppel/internal/auth/builtin"
	"keppel/internal/db/sqlite"
	"keppel/internal/test"
)

func basic(user, password string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}}
}

var adminBasic = basic("admin", test.AdminPassword)

type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// decodeToken checks the token response and returns the token's claims,
// read without verification (the server verifies them when they are used).
func decodeToken(t *testing.T, r test.Response) (tokenResponse, auth.Claims) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("token request: %d %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var tr tokenResponse
	if err := json.Unmarshal(r.Body, &tr); err != nil {
		t.Fatalf("token response %s: %v", r.Body, err)
	}
	if tr.Token == "" || tr.AccessToken != tr.Token {
		t.Errorf("token %q and access_token %q must be the same and not empty", tr.Token, tr.AccessToken)
	}
	if tr.ExpiresIn != 3600 {
		t.Errorf("expires_in = %d, want 3600 (the default lifetime)", tr.ExpiresIn)
	}
	issued, err := time.Parse(time.RFC3339, tr.IssuedAt)
	if err != nil {
		t.Errorf("issued_at %q is not RFC 3339: %v", tr.IssuedAt, err)
	} else if d := time.Since(issued); d < -time.Minute || d > time.Minute {
		t.Errorf("issued_at %s is not now", issued)
	}
	parts := strings.Split(tr.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tr.Token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims auth.Claims
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("token payload %s: %v", raw, err)
	}
	return tr, claims
}

// wantError checks an error response: status, code and the JSON envelope.
func wantError(t *testing.T, r test.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status = %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if got := r.ErrorCode(); got != code {
		t.Errorf("error code = %q, want %q (body %s)", got, code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q", ct)
	}
	var env struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || len(env.Errors) != 1 || env.Errors[0].Message == "" {
		t.Errorf("error body %s is not an error envelope with one message", r.Body)
	}
}

func tokenQuery(s *test.Server, scopes ...string) string {
	return "/keppel/v1/auth?" + url.Values{"service": {s.Host}, "scope": scopes}.Encode()
}

// serverKey loads the token signing key of the test server, to forge tokens
// that the server would not issue.
func serverKey(t *testing.T, s *test.Server) ed25519.PrivateKey {
	t.Helper()
	key, err := auth.LoadOrCreateKey(filepath.Join(s.DataDir, "token-key.pem"), false)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// addUser creates a user in the test server's SQLite database, which the
// server reads on every login.
func addUser(t *testing.T, s *test.Server, name, password string, isAdmin bool) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(s.DataDir, "keppel.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := builtin.SetPassword(ctx, store, name, password, isAdmin, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	addUser(t, s, "alice", "alice-password", false)

	t.Run("good credentials", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, tokenQuery(s, "repository:test/foo:pull,push", "registry:catalog:*"), "", adminBasic, nil)
		tr, claims := decodeToken(t, r)
		if claims.Subject != "admin" || !claims.Admin {
			t.Errorf("subject/admin = %q/%v", claims.Subject, claims.Admin)
		}
		if !claims.Access.Allows("repository", "test/foo", "push") || !claims.Access.Allows("registry", "catalog", "*") {
			t.Errorf("token does not carry the requested scopes: %+v", claims.Access)
		}
		if !slices.Contains(claims.Audience, s.Host) {
			t.Errorf("audience %v does not name the service %s", claims.Audience, s.Host)
		}

		// The token works on /v2/ for the granted scope and no other.
		if r := s.Do(t, http.MethodGet, "/v2/", tr.Token, nil, nil); r.Status != http.StatusOK {
			t.Errorf("GET /v2/ with the token: %d %s", r.Status, r.Body)
		}
		// The repository does not exist, so a working token gets a 404 rather than a 401.
		r = s.Do(t, http.MethodGet, "/v2/test/foo/tags/list", tr.Token, nil, nil)
		wantError(t, r, http.StatusNotFound, "NAME_UNKNOWN")
		r = s.Do(t, http.MethodGet, "/v2/test/bar/tags/list", tr.Token, nil, nil)
		wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("challenge %q does not say insufficient_scope", r.Header.Get("WWW-Authenticate"))
		}
		if r := s.Do(t, http.MethodGet, "/v2/_catalog", tr.Token, nil, nil); r.Status != http.StatusOK {
			t.Errorf("GET /v2/_catalog with the catalog scope: %d %s", r.Status, r.Body)
		}
	})

	t.Run("without service parameter", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, "/keppel/v1/auth?scope=repository:test/foo:pull", "", adminBasic, nil)
		_, claims := decodeToken(t, r)
		if !claims.Access.Allows("repository", "test/foo", "pull") {
			t.Errorf("access = %+v", claims.Access)
		}
	})

	t.Run("unknown scope types are dropped", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, tokenQuery(s, "repository:test/foo:pull other:x:* garbage"), "", adminBasic, nil)
		_, claims := decodeToken(t, r)
		if len(claims.Access) != 1 || !claims.Access.Allows("repository", "test/foo", "pull") {
			t.Errorf("access = %+v, want only repository:test/foo:pull", claims.Access)
		}
	})

	t.Run("non-admin gets a token without access", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, tokenQuery(s, "repository:test/foo:pull"), "", basic("alice", "alice-password"), nil)
		tr, claims := decodeToken(t, r)
		if claims.Subject != "alice" || claims.Admin || len(claims.Access) != 0 {
			t.Errorf("claims = %+v", claims)
		}
		wantError(t, s.Do(t, http.MethodGet, "/v2/test/foo/tags/list", tr.Token, nil, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	})

	t.Run("anonymous", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, tokenQuery(s, "repository:test/foo:pull"), "", nil, nil)
		tr, claims := decodeToken(t, r)
		if claims.Subject != "" || claims.Admin || len(claims.Access) != 0 {
			t.Errorf("anonymous claims = %+v", claims)
		}
		wantError(t, s.Do(t, http.MethodGet, "/v2/test/foo/tags/list", tr.Token, nil, nil), http.StatusUnauthorized, "UNAUTHORIZED")
	})

	bad := []struct {
		name   string
		header http.Header
	}{
		{"wrong password", basic("admin", "wrong")},
		{"empty password", basic("admin", "")},
		{"unknown user", basic("nobody", test.AdminPassword)},
		{"password of another user", basic("alice", test.AdminPassword)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := s.Do(t, http.MethodGet, tokenQuery(s, "repository:test/foo:pull"), "", tc.header, nil)
			wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
			if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Basic ") {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", ch)
			}
			if strings.Contains(string(r.Body), `"token"`) {
				t.Errorf("a token was issued for bad credentials: %s", r.Body)
			}
		})
	}

	t.Run("bearer credentials are refused", func(t *testing.T) {
		t.Parallel()
		token := s.Token(t)
		r := s.Do(t, http.MethodGet, tokenQuery(s, "repository:test/foo:pull"), token, nil, nil)
		wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	})

	t.Run("wrong service", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"service": {"other.example.com"}, "scope": {"repository:test/foo:pull"}}
		r := s.Do(t, http.MethodGet, "/keppel/v1/auth?"+q.Encode(), "", adminBasic, nil)
		wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
	})
}

func TestTokenEndpointPost(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	formHeader := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

	tests := []struct {
		name   string
		body   string
		header http.Header
		// wantStatus 200 means a token is expected; wantPush whether it grants push.
		wantStatus int
		wantCode   string
		wantPush   bool
	}{
		{
			name:       "password grant",
			body:       form("grant_type", "password", "username", "admin", "password", test.AdminPassword, "service", s.Host, "scope", "repository:test/foo:pull,push"),
			wantStatus: http.StatusOK, wantPush: true,
		},
		{
			name:       "password grant with two scope fields",
			body:       form("grant_type", "password", "username", "admin", "password", test.AdminPassword, "scope", "repository:test/bar:pull", "scope", "repository:test/foo:pull,push"),
			wantStatus: http.StatusOK, wantPush: true,
		},
		{
			name:       "password grant with a wrong password",
			body:       form("grant_type", "password", "username", "admin", "password", "wrong", "scope", "repository:test/foo:push"),
			wantStatus: http.StatusUnauthorized, wantCode: "UNAUTHORIZED",
		},
		{
			name:       "password grant for another service",
			body:       form("grant_type", "password", "username", "admin", "password", test.AdminPassword, "service", "other.example.com"),
			wantStatus: http.StatusBadRequest, wantCode: "BAD_REQUEST",
		},
		{
			name:       "form without credentials is anonymous",
			body:       form("service", s.Host, "scope", "repository:test/foo:push"),
			wantStatus: http.StatusOK, wantPush: false,
		},
		{
			name:       "basic credentials with a form",
			body:       form("scope", "repository:test/foo:pull,push"),
			header:     adminBasic,
			wantStatus: http.StatusOK, wantPush: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			header := formHeader.Clone()
			for k, v := range tc.header {
				header[k] = v
			}
			r := s.Do(t, http.MethodPost, "/keppel/v1/auth", "", header, strings.NewReader(tc.body))
			if tc.wantStatus != http.StatusOK {
				wantError(t, r, tc.wantStatus, tc.wantCode)
				return
			}
			tr, claims := decodeToken(t, r)
			if got := claims.Access.Allows("repository", "test/foo", "push"); got != tc.wantPush {
				t.Errorf("token grants push: %v, want %v (access %+v)", got, tc.wantPush, claims.Access)
			}
			if tc.wantPush {
				// Starting an upload (which needs pull and push) works with the token.
				r := s.Do(t, http.MethodPost, "/v2/test/foo/blobs/uploads/", tr.Token, nil, nil)
				if r.Status != http.StatusAccepted {
					t.Errorf("the token does not work for push: %d %s", r.Status, r.Body)
				}
			}
		})
	}
}

func accountBody(tenant string) *strings.Reader {
	b, _ := json.Marshal(map[string]any{"account": map[string]string{"auth_tenant_id": tenant}})
	return strings.NewReader(string(b))
}

type accountJSON struct {
	Name         string `json:"name"`
	AuthTenantID string `json:"auth_tenant_id"`
	State        string `json:"state"`
}

func decodeAccount(t *testing.T, body []byte) accountJSON {
	t.Helper()
	var out struct {
		Account accountJSON `json:"account"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("account response %s: %v", body, err)
	}
	return out.Account
}

func TestPutAccount(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	// Most requests use the admin's token: a bcrypt check per request is slow under -race.
	admin := s.Token(t)

	t.Run("create, repeat, conflict", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodPut, "/keppel/v1/accounts/created", "", adminBasic, accountBody("tenant-a"))
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		if a := decodeAccount(t, r.Body); a.Name != "created" || a.AuthTenantID != "tenant-a" || a.State != "" {
			t.Errorf("created account = %+v", a)
		}
		r = s.Do(t, http.MethodPut, "/keppel/v1/accounts/created", "", adminBasic, accountBody("tenant-a"))
		if r.Status != http.StatusOK {
			t.Fatalf("repeat: %d %s", r.Status, r.Body)
		}
		if a := decodeAccount(t, r.Body); a.Name != "created" || a.AuthTenantID != "tenant-a" {
			t.Errorf("repeated account = %+v", a)
		}
		r = s.Do(t, http.MethodPut, "/keppel/v1/accounts/created", "", adminBasic, accountBody("tenant-b"))
		wantError(t, r, http.StatusConflict, "CONFLICT")
		// The conflict left the account alone.
		r = s.Do(t, http.MethodGet, "/keppel/v1/accounts/created", admin, nil, nil)
		if a := decodeAccount(t, r.Body); a.AuthTenantID != "tenant-a" {
			t.Errorf("after conflict: %+v", a)
		}
	})

	t.Run("admin bearer token", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodPut, "/keppel/v1/accounts/by-token", admin, nil, accountBody("tenant-a"))
		if r.Status != http.StatusCreated {
			t.Fatalf("create with the admin's token: %d %s", r.Status, r.Body)
		}
	})

	t.Run("UUID tenant", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodPut, "/keppel/v1/accounts/uuid-tenant", admin, nil, accountBody("6f1e2c1a-1b2c-4d5e-8f90-0123456789ab"))
		if r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("longest name", func(t *testing.T) {
		t.Parallel()
		name := strings.Repeat("a", 48)
		r := s.Do(t, http.MethodPut, "/keppel/v1/accounts/"+name, admin, nil, accountBody("tenant-a"))
		if r.Status != http.StatusCreated {
			t.Fatalf("48-character name: %d %s", r.Status, r.Body)
		}
	})

	badRequests := []struct {
		name string
		path string
		body *strings.Reader
	}{
		{"upper case name", "Bad", accountBody("t")},
		{"reserved keppel prefix", "keppel-x", accountBody("t")},
		{"reserved keppel", "keppel", accountBody("t")},
		{"reserved API version", "v2", accountBody("t")},
		{"reserved API version v10", "v10", accountBody("t")},
		{"49 characters", strings.Repeat("a", 49), accountBody("t")},
		{"leading dash", "-abc", accountBody("t")},
		{"underscore", "a_b", accountBody("t")},
		{"dot", "a.b", accountBody("t")},
		{"tenant with a path", "badtenant1", accountBody("../x")},
		{"tenant with a slash", "badtenant2", accountBody("a/b")},
		{"tenant dot-dot", "badtenant3", accountBody("..")},
		{"tenant dot", "badtenant4", accountBody(".")},
		{"empty tenant", "badtenant5", accountBody("")},
		{"tenant with a space", "badtenant6", accountBody("a b")},
		{"tenant too long", "badtenant7", accountBody(strings.Repeat("t", 129))},
		{"missing body", "badtenant8", nil},
		{"empty object", "badtenant9", strings.NewReader(`{}`)},
		{"malformed JSON", "badtenant10", strings.NewReader(`{"account":`)},
		{"tenant of the wrong type", "badtenant11", strings.NewReader(`{"account":{"auth_tenant_id":42}}`)},
	}
	for _, tc := range badRequests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r test.Response
			if tc.body == nil {
				r = s.Do(t, http.MethodPut, "/keppel/v1/accounts/"+tc.path, admin, nil, nil)
			} else {
				r = s.Do(t, http.MethodPut, "/keppel/v1/accounts/"+tc.path, admin, nil, tc.body)
			}
			wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
			wantNoAccount(t, s, admin, tc.path)
		})
	}

	t.Run("128-character tenant is fine", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodPut, "/keppel/v1/accounts/long-tenant", admin, nil, accountBody(strings.Repeat("t", 128)))
		if r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}

// wantNoAccount checks that a refused request did not create the account.
func wantNoAccount(t *testing.T, s *test.Server, adminToken, name string) {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/keppel/v1/accounts/"+url.PathEscape(name), adminToken, nil, nil)
	if r.Status == http.StatusOK {
		t.Errorf("account %s was created: %s", name, r.Body)
	}
}

func TestAccountsRequireAdmin(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	addUser(t, s, "alice", "alice-password", false)
	admin := s.Token(t)

	key := serverKey(t, s)
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(key ed25519.PrivateKey, service string, now time.Time, admin bool) string {
		t.Helper()
		token, _, err := auth.NewTokenService(service, time.Hour, key, nil, func() time.Time { return now }).Issue("admin", admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	anonymous := decodeTokenString(t, s.Do(t, http.MethodGet, "/keppel/v1/auth", "", nil, nil))

	// Expected answers to PUT /accounts/<new>, GET /accounts, GET /accounts/test.
	type answer struct {
		status int
		code   string
	}
	unauthorized := []answer{{401, "UNAUTHORIZED"}, {401, "UNAUTHORIZED"}, {401, "UNAUTHORIZED"}}
	// A user without a role in tenant1 may not create accounts there, sees
	// an empty account list, and cannot tell that "test" exists.
	noRole := []answer{{403, "DENIED"}, {200, ""}, {404, "NOT_FOUND"}}
	tests := []struct {
		name      string
		token     string
		header    http.Header
		want      []answer
		challenge string
	}{
		{"no credentials", "", nil, unauthorized, "Basic "},
		{"wrong password", "", basic("admin", "wrong"), unauthorized, "Basic "},
		{"unknown user", "", basic("bob", "x"), unauthorized, "Basic "},
		{"non-admin user", "", basic("alice", "alice-password"), noRole, ""},
		{"anonymous token", anonymous, nil, unauthorized, "Basic "},
		{"non-admin token signed with the server's key", issue(key, s.Host, time.Now(), false), nil, noRole, ""},
		{"admin token signed by another key", issue(otherKey, s.Host, time.Now(), true), nil, unauthorized, "Bearer "},
		{"expired admin token", issue(key, s.Host, time.Now().Add(-2*time.Hour), true), nil, unauthorized, "Bearer "},
		{"admin token for another service", issue(key, "other.example.com", time.Now(), true), nil, unauthorized, "Bearer "},
		{"garbage token", "garbage", nil, unauthorized, "Bearer "},
		{"unknown authorization scheme", "", http.Header{"Authorization": {"Digest x"}}, unauthorized, "Basic "},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A valid name, so that only the credentials can be the reason for a refusal.
			name := fmt.Sprintf("denied-%d", i)
			requests := []struct {
				method, path string
				body         *strings.Reader
			}{
				{http.MethodPut, "/keppel/v1/accounts/" + name, accountBody("tenant1")},
				{http.MethodGet, "/keppel/v1/accounts", nil},
				{http.MethodGet, "/keppel/v1/accounts/test", nil},
			}
			for j, req := range requests {
				var r test.Response
				if req.body == nil {
					r = s.Do(t, req.method, req.path, tc.token, tc.header, nil)
				} else {
					r = s.Do(t, req.method, req.path, tc.token, tc.header, req.body)
				}
				want := tc.want[j]
				if want.status == http.StatusOK {
					if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != `{"accounts":[]}` {
						t.Errorf("%s %s: %d %s, want an empty list", req.method, req.path, r.Status, r.Body)
					}
					continue
				}
				wantError(t, r, want.status, want.code)
				if ch := r.Header.Get("WWW-Authenticate"); tc.challenge != "" && !strings.HasPrefix(ch, tc.challenge) {
					t.Errorf("%s %s: WWW-Authenticate = %q, want prefix %q", req.method, req.path, ch, tc.challenge)
				}
			}
			wantNoAccount(t, s, admin, name)
		})
	}
}

func decodeTokenString(t *testing.T, r test.Response) string {
	t.Helper()
	tr, _ := decodeToken(t, r)
	return tr.Token
}

func TestGetAccounts(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{
		StorageDriver: "memory",
		Accounts:      map[string]string{"alpha": "tenant1", "beta": "tenant2"},
	})
	admin := s.Token(t)

	t.Run("list", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, "/keppel/v1/accounts", "", adminBasic, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		var out struct {
			Accounts []accountJSON `json:"accounts"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, a := range out.Accounts {
			got[a.Name] = a.AuthTenantID
		}
		if len(got) != 2 || got["alpha"] != "tenant1" || got["beta"] != "tenant2" {
			t.Errorf("accounts = %+v", out.Accounts)
		}
	})

	t.Run("list with the admin's token", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, "/keppel/v1/accounts", admin, nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("one", func(t *testing.T) {
		t.Parallel()
		r := s.Do(t, http.MethodGet, "/keppel/v1/accounts/beta", "", adminBasic, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if a := decodeAccount(t, r.Body); a != (accountJSON{Name: "beta", AuthTenantID: "tenant2"}) {
			t.Errorf("account = %+v", a)
		}
	})

	for _, name := range []string{"gamma", "Bad", "v2"} {
		t.Run("unknown "+name, func(t *testing.T) {
			t.Parallel()
			r := s.Do(t, http.MethodGet, "/keppel/v1/accounts/"+name, admin, nil, nil)
			wantError(t, r, http.StatusNotFound, "NOT_FOUND")
		})
	}
}

func TestEmptyAccountList(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{}})
	r := s.Do(t, http.MethodGet, "/keppel/v1/accounts", "", adminBasic, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	// An empty list is [], not null.
	if got := strings.TrimSpace(string(r.Body)); got != `{"accounts":[]}` {
		t.Errorf("body = %s", got)
	}
}

func TestUnknownEndpoints(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	admin := s.Token(t)
	tests := []struct {
		method, path string
	}{
		{http.MethodGet, "/keppel/v1/"},
		{http.MethodGet, "/keppel/v1/nonsense"},
		{http.MethodGet, "/keppel/v1/accounts/test/nonsense"},
		{http.MethodPost, "/keppel/v1/nonsense"},
		{http.MethodDelete, "/keppel/v1/accounts/test/repositories/app/_nonsense"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			r := s.Do(t, tc.method, tc.path, admin, nil, nil)
			wantError(t, r, http.StatusNotFound, "NOT_FOUND")
		})
	}
	// The account still exists after the requests that are not endpoints.
	t.Run("account survives", func(t *testing.T) {
		t.Parallel()
		if r := s.Do(t, http.MethodGet, "/keppel/v1/accounts/test", admin, nil, nil); r.Status != http.StatusOK {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
}

func TestHealthcheckAndMetrics(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})

	r := s.Do(t, http.MethodGet, "/healthcheck", "", nil, nil)
	if r.Status != http.StatusOK {
		t.Errorf("healthcheck: %d %s", r.Status, r.Body)
	}

	// One request through the management API, so that its duration is recorded.
	s.Do(t, http.MethodGet, "/keppel/v1/accounts", "", adminBasic, nil)
	r = s.Do(t, http.MethodGet, "/metrics", "", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("metrics: %d", r.Status)
	}
	for _, want := range []string{
		"keppel_pushed_total",
		"keppel_http_request_duration_seconds",
		`route="keppel_v1_accounts"`,
	} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("metrics do not contain %s", want)
		}
	}
}
