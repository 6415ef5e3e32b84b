package keppelv1_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"

	"keppel/internal/models"
	"keppel/internal/test"
)

// This file checks every management endpoint except the token endpoint and
// user management: success with the JSON shape that SAP Keppel's clients
// expect, missing credentials, insufficient rights, bad input and unknown
// resources.

const epPassword = "ep-user-password"

// epFixture is a registry with the accounts "test" (tenant1) and "other"
// (tenant2), and tokens of users with different roles. Tokens are fetched
// once per fixture: every basic-auth request costs a bcrypt check, which is
// slow under -race.
type epFixture struct {
	s *test.Server
	// admin is the server admin's token, with pull, push and delete on the
	// repositories given to newEPFixture.
	admin string
	// t1Admin, t1Viewer and t2Admin have the named role in tenant1 or tenant2.
	t1Admin, t1Viewer, t2Admin string
}

func newEPFixture(t *testing.T, repos ...string) *epFixture {
	t.Helper()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"test": "tenant1", "other": "tenant2"}})
	ctx := t.Context()
	store := s.Store()
	users := []struct {
		name, tenant string
		role         models.Role
	}{
		{"ep-t1-admin", "tenant1", models.RoleAdmin},
		{"ep-t1-viewer", "tenant1", models.RoleViewer},
		{"ep-t2-admin", "tenant2", models.RoleAdmin},
	}
	for _, u := range users {
		// The lowest bcrypt cost keeps logins fast under -race.
		hash, err := bcrypt.GenerateFromPassword([]byte(epPassword), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutUser(ctx, models.User{Name: u.name, PasswordHash: string(hash), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := store.SetRole(ctx, u.name, u.tenant, u.role); err != nil {
			t.Fatal(err)
		}
	}
	var scopes []string
	for _, r := range repos {
		scopes = append(scopes, "repository:"+r+":pull,push,delete")
	}
	return &epFixture{
		s:        s,
		admin:    s.Token(t, scopes...),
		t1Admin:  s.TokenAs(t, "ep-t1-admin", epPassword),
		t1Viewer: s.TokenAs(t, "ep-t1-viewer", epPassword),
		t2Admin:  s.TokenAs(t, "ep-t2-admin", epPassword),
	}
}

// do sends a request with a bearer token and an optional string body.
func (f *epFixture) do(t *testing.T, method, path, token, body string) test.Response {
	t.Helper()
	if body == "" {
		return f.s.Do(t, method, path, token, nil, nil)
	}
	return f.s.Do(t, method, path, token, http.Header{"Content-Type": {"application/json"}}, strings.NewReader(body))
}

// epImage is an image pushed by epPushImage.
type epImage struct {
	digest string
	size   int
	// blobs are the config and layers, digest → size.
	blobs map[string]int64
}

// epPushBlob uploads a blob monolithically.
func epPushBlob(t *testing.T, s *test.Server, token, repo string, content []byte) string {
	t.Helper()
	d := digest.FromBytes(content).String()
	r := s.Do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d, token, nil, bytes.NewReader(content))
	if r.Status != http.StatusCreated {
		t.Fatalf("blob upload into %s: %d %s", repo, r.Status, r.Body)
	}
	return d
}

// epPushImage pushes an image with one layer made from seed under ref (a
// tag or "" for a push by digest) and returns it.
func epPushImage(t *testing.T, s *test.Server, token, repo, ref, seed string) epImage {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"seed":"` + seed + `"}}}`)
	layer := bytes.Repeat([]byte(seed), 100)
	img := epImage{blobs: map[string]int64{}}
	cd := epPushBlob(t, s, token, repo, config)
	ld := epPushBlob(t, s, token, repo, layer)
	img.blobs[cd], img.blobs[ld] = int64(len(config)), int64(len(layer))
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)}},
	})
	img.digest, img.size = digest.FromBytes(m).String(), len(m)
	if ref == "" {
		ref = img.digest
	}
	r := s.Do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, token,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, bytes.NewReader(m))
	if r.Status != http.StatusCreated {
		t.Fatalf("manifest push to %s:%s: %d %s", repo, ref, r.Status, r.Body)
	}
	return img
}

// epTag points another tag at a pushed image.
func epTag(t *testing.T, s *test.Server, token, repo, tag string, img epImage) {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+img.digest, token, nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("pulling %s@%s: %d", repo, img.digest, r.Status)
	}
	r = s.Do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, token,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, bytes.NewReader(r.Body))
	if r.Status != http.StatusCreated {
		t.Fatalf("tagging %s:%s: %d %s", repo, tag, r.Status, r.Body)
	}
}

// epErrorMessage returns the message of the first error of an error envelope.
func epErrorMessage(r test.Response) string {
	var env struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(r.Body, &env)
	if len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Message
}

// epUnauthorized checks a 401 answer with a challenge and an error envelope.
func epUnauthorized(t *testing.T, r test.Response, challenge string) {
	t.Helper()
	wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, challenge) {
		t.Errorf("WWW-Authenticate = %q, want prefix %q", got, challenge)
	}
}

// epDecode decodes a successful JSON answer.
func epDecode(t *testing.T, r test.Response, status int, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("answer %s: %v", r.Body, err)
	}
}

// epRecent checks that a Unix time is now, give or take a minute.
func epRecent(t *testing.T, what string, unix int64) {
	t.Helper()
	if d := time.Since(time.Unix(unix, 0)); d < -time.Minute || d > time.Minute {
		t.Errorf("%s = %d (%s) is not now", what, unix, time.Unix(unix, 0))
	}
}

func TestEndpointAPIInfo(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	// GET /keppel/v1 needs no credentials (SAP Keppel's clients use it to
	// find out which auth driver to talk to).
	r := s.Do(t, http.MethodGet, "/keppel/v1", "", nil, nil)
	var info map[string]string
	epDecode(t, r, http.StatusOK, &info)
	if len(info) != 1 || info["auth_driver"] != "builtin" {
		t.Errorf("GET /keppel/v1 = %s", r.Body)
	}
}

// TestEndpointsRequireCredentials sends every request without credentials
// and with a bad token, and expects 401 with a challenge.
func TestEndpointsRequireCredentials(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	d := digest.FromString("x").String()
	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/keppel/v1/accounts", ""},
		{http.MethodGet, "/keppel/v1/accounts/test", ""},
		{http.MethodPut, "/keppel/v1/accounts/test", `{"account":{"auth_tenant_id":"tenant1"}}`},
		{http.MethodPut, "/keppel/v1/accounts/new", `{"account":{"auth_tenant_id":"tenant1"}}`},
		{http.MethodDelete, "/keppel/v1/accounts/test", ""},
		{http.MethodGet, "/keppel/v1/accounts/test/repositories", ""},
		{http.MethodDelete, "/keppel/v1/accounts/test/repositories/app", ""},
		{http.MethodGet, "/keppel/v1/accounts/test/repositories/app/_manifests", ""},
		{http.MethodDelete, "/keppel/v1/accounts/test/repositories/app/_manifests/" + d, ""},
		{http.MethodDelete, "/keppel/v1/accounts/test/repositories/app/_tags/v1", ""},
		{http.MethodGet, "/keppel/v1/quotas/tenant1", ""},
		{http.MethodPut, "/keppel/v1/quotas/tenant1", `{"manifests":{"quota":1}}`},
		{http.MethodGet, "/keppel/v1/audit", ""},
	}
	for _, req := range requests {
		t.Run(req.method+" "+req.path, func(t *testing.T) {
			var body *strings.Reader
			if req.body != "" {
				body = strings.NewReader(req.body)
			}
			var r test.Response
			if body != nil {
				r = s.Do(t, req.method, req.path, "", nil, body)
			} else {
				r = s.Do(t, req.method, req.path, "", nil, nil)
			}
			epUnauthorized(t, r, "Basic ")
			if body != nil {
				body = strings.NewReader(req.body)
				r = s.Do(t, req.method, req.path, "not-a-token", nil, body)
			} else {
				r = s.Do(t, req.method, req.path, "not-a-token", nil, nil)
			}
			epUnauthorized(t, r, "Bearer ")
		})
	}
	// Nothing was created or changed.
	admin := s.Token(t)
	if r := s.Do(t, http.MethodGet, "/keppel/v1/accounts/new", admin, nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("account created without credentials: %d %s", r.Status, r.Body)
	}
	r := s.Do(t, http.MethodGet, "/keppel/v1/accounts/test", admin, nil, nil)
	if a := decodeAccount(t, r.Body); a.State != "" {
		t.Errorf("account changed without credentials: %s", r.Body)
	}
	r = s.Do(t, http.MethodGet, "/keppel/v1/quotas/tenant1", admin, nil, nil)
	if !strings.Contains(string(r.Body), `"is_default":true`) {
		t.Errorf("quota changed without credentials: %s", r.Body)
	}
}

// epAccount is the full wire form of an account.
type epAccount struct {
	Name         string          `json:"name"`
	AuthTenantID string          `json:"auth_tenant_id"`
	RBACPolicies json.RawMessage `json:"rbac_policies"`
	GCPolicies   json.RawMessage `json:"gc_policies"`
	TagPolicies  json.RawMessage `json:"tag_policies"`
	Validation   *struct {
		RuleForManifest string `json:"rule_for_manifest"`
	} `json:"validation"`
	PlatformFilter json.RawMessage `json:"platform_filter"`
	State          string          `json:"state"`
	Managed        bool            `json:"managed"`
}

func (f *epFixture) account(t *testing.T, token, name string) (epAccount, test.Response) {
	t.Helper()
	r := f.do(t, http.MethodGet, "/keppel/v1/accounts/"+name, token, "")
	var out struct {
		Account epAccount `json:"account"`
	}
	epDecode(t, r, http.StatusOK, &out)
	return out.Account, r
}

func epCompact(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return buf.String()
}

func TestEndpointGetAccounts(t *testing.T) {
	t.Parallel()
	f := newEPFixture(t)
	f.s.CreateAccount(t, "test2", "tenant1")

	list := func(token string) []string {
		t.Helper()
		var out struct {
			Accounts []epAccount `json:"accounts"`
		}
		epDecode(t, f.do(t, http.MethodGet, "/keppel/v1/accounts", token, ""), http.StatusOK, &out)
		var names []string
		for _, a := range out.Accounts {
			names = append(names, a.Name+"@"+a.AuthTenantID)
		}
		return names
	}
	if got := list(f.admin); !slices.Equal(got, []string{"other@tenant2", "test@tenant1", "test2@tenant1"}) {
		t.Errorf("admin sees %v", got)
	}
	for _, token := range []string{f.t1Admin, f.t1Viewer} {
		if got := list(token); !slices.Equal(got, []string{"test@tenant1", "test2@tenant1"}) {
			t.Errorf("tenant1 user sees %v", got)
		}
	}
	if got := list(f.t2Admin); !slices.Equal(got, []string{"other@tenant2"}) {
		t.Errorf("tenant2 admin sees %v", got)
	}

	// One account: every field of SAP Keppel's shape; rbac_policies is [],
	// not null, when there are none.
	a, r := f.account(t, f.t1Viewer, "test")
	if a.Name != "test" || a.AuthTenantID != "tenant1" || string(a.RBACPolicies) != "[]" || a.State != "" || a.Managed {
		t.Errorf("GET account = %s", r.Body)
	}
	for _, absent := range []string{"tag_policies", "validation", "gc_policies", "platform_filter", "state", "managed"} {
		if strings.Contains(string(r.Body), `"`+absent+`"`) {
			t.Errorf("account without %s shows it: %s", absent, r.Body)
		}
	}

	// Another tenant's account and unknown ones are not found alike.
	for _, c := range []struct{ token, name string }{
		{f.t2Admin, "test"}, {f.t1Viewer, "other"}, {f.admin, "nosuch"}, {f.t1Admin, "nosuch"}, {f.admin, "Invalid_Name"},
	} {
		r := f.do(t, http.MethodGet, "/keppel/v1/accounts/"+c.name, c.token, "")
		wantError(t, r, http.StatusNotFound, "NOT_FOUND")
		if strings.Contains(string(r.Body), "tenant") {
			t.Errorf("GET %s: error tells the tenant: %s", c.name, r.Body)
		}
	}
}

func TestEndpointPutAccount(t *testing.T) {
	t.Parallel()
	f := newEPFixture(t)

	t.Run("tenant admin creates and updates", func(t *testing.T) {
		r := f.do(t, http.MethodPut, "/keppel/v1/accounts/t1-new", f.t1Admin, `{"account":{"auth_tenant_id":"tenant1"}}`)
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		if a := decodeAccount(t, r.Body); a.Name != "t1-new" || a.AuthTenantID != "tenant1" {
			t.Errorf("created %s", r.Body)
		}
		r = f.do(t, http.MethodPut, "/keppel/v1/accounts/t1-new", f.t1Admin, `{"account":{"auth_tenant_id":"tenant1"}}`)
		if r.Status != http.StatusOK {
			t.Fatalf("update: %d %s", r.Status, r.Body)
		}
	})

	t.Run("insufficient rights", func(t *testing.T) {
		// A viewer may neither create nor change accounts of the tenant.
		wantError(t, f.do(t, http.MethodPut, "/keppel/v1/accounts/viewer-new", f.t1Viewer, `{"account":{"auth_tenant_id":"tenant1"}}`),
			http.StatusForbidden, "DENIED")
		wantError(t, f.do(t, http.MethodPut, "/keppel/v1/accounts/test", f.t1Viewer,
			`{"account":{"auth_tenant_id":"tenant1","rbac_policies":[{"match_repository":".*","permissions":["anonymous_pull"]}]}}`),
			http.StatusForbidden, "DENIED")
		// A tenant admin may not create accounts in another tenant.
		wantError(t, f.do(t, http.MethodPut, "/keppel/v1/accounts/t2-new", f.t1Admin, `{"account":{"auth_tenant_id":"tenant2"}}`),
			http.StatusForbidden, "DENIED")
		// Another tenant's account is "not available", without telling whose it is.
		r := f.do(t, http.MethodPut, "/keppel/v1/accounts/test", f.t2Admin, `{"account":{"auth_tenant_id":"tenant2"}}`)
		wantError(t, r, http.StatusConflict, "CONFLICT")
		if strings.Contains(string(r.Body), "tenant1") {
			t.Errorf("the conflict tells the owner: %s", r.Body)
		}
		for _, name := range []string{"viewer-new", "t2-new"} {
			wantError(t, f.do(t, http.MethodGet, "/keppel/v1/accounts/"+name, f.admin, ""), http.StatusNotFound, "NOT_FOUND")
		}
		if a, r := f.account(t, f.admin, "test"); a.AuthTenantID != "tenant1" || string(a.RBACPolicies) != "[]" {
			t.Errorf("refused PUTs changed the account: %s", r.Body)
		}
	})

	t.Run("policies round-trip in canonical form", func(t *testing.T) {
		body := `{"account":{"auth_tenant_id":"tenant1",
			"rbac_policies":[
				{"match_repository":"app.*","match_cidr":"10.1.2.3/8","permissions":["push","pull","pull"]},
				{"match_repository":"public/.*","permissions":["anonymous_pull"]},
				{"match_username":"ci-.*","permissions":["pull"],"forbidden_permissions":["delete"]}],
			"tag_policies":[{"match_repository":".*","match_tag":"v.*","block_overwrite":true,"block_delete":false}],
			"validation":{"rule_for_manifest":"repo_name != 'forbidden'"},
			"gc_policies":[ {"match_repository":".*", "action":"protect"} ],
			"metadata":{"owner":"team-a"},
			"replication":null}}`
		r := f.do(t, http.MethodPut, "/keppel/v1/accounts/test", f.t1Admin, body)
		if r.Status != http.StatusOK {
			t.Fatalf("PUT: %d %s", r.Status, r.Body)
		}
		wantRBAC := `[{"match_repository":"app.*","match_cidr":"10.0.0.0/8","permissions":["pull","push"]},` +
			`{"match_repository":"public/.*","permissions":["anonymous_pull"]},` +
			`{"match_username":"ci-.*","permissions":["pull"],"forbidden_permissions":["delete"]}]`
		wantTags := `[{"match_repository":".*","match_tag":"v.*","block_overwrite":true}]`
		check := func(what string, a epAccount, raw []byte) {
			t.Helper()
			if got := epCompact(t, string(a.RBACPolicies)); got != wantRBAC {
				t.Errorf("%s: rbac_policies = %s, want %s", what, got, wantRBAC)
			}
			if got := epCompact(t, string(a.TagPolicies)); got != wantTags {
				t.Errorf("%s: tag_policies = %s, want %s", what, got, wantTags)
			}
			if a.Validation == nil || a.Validation.RuleForManifest != "repo_name != 'forbidden'" {
				t.Errorf("%s: validation = %s", what, raw)
			}
			if got := epCompact(t, string(a.GCPolicies)); got != `[{"match_repository":".*","action":"protect"}]` {
				t.Errorf("%s: gc_policies = %s", what, got)
			}
			// platform_filter needs a replica account: see TestReplicationSettings.
		}
		var put struct {
			Account epAccount `json:"account"`
		}
		epDecode(t, r, http.StatusOK, &put)
		check("PUT answer", put.Account, r.Body)
		a, raw := f.account(t, f.t1Viewer, "test")
		check("GET", a, raw.Body)

		// PUT replaces the settings: leaving the policies out removes them.
		r = f.do(t, http.MethodPut, "/keppel/v1/accounts/test", f.t1Admin, `{"account":{"auth_tenant_id":"tenant1"}}`)
		if r.Status != http.StatusOK {
			t.Fatalf("PUT: %d %s", r.Status, r.Body)
		}
		a, raw = f.account(t, f.t1Viewer, "test")
		if string(a.RBACPolicies) != "[]" || a.TagPolicies != nil || a.Validation != nil || a.GCPolicies != nil || a.PlatformFilter != nil {
			t.Errorf("after a PUT without policies: %s", raw.Body)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		// Give the account settings that the refused requests must not touch.
		good := `{"account":{"auth_tenant_id":"tenant1","tag_policies":[{"match_repository":".*","block_delete":true}]}}`
		if r := f.do(t, http.MethodPut, "/keppel/v1/accounts/test", f.t1Admin, good); r.Status != http.StatusOK {
			t.Fatalf("PUT: %d %s", r.Status, r.Body)
		}
		_, before := f.account(t, f.admin, "test")
		account := func(fields string) string {
			return `{"account":{"auth_tenant_id":"tenant1",` + fields + `}}`
		}
		cases := []struct {
			name, body string
			// mention is what the error message must contain (the field).
			mention string
		}{
			{"rbac: invalid CIDR", account(`"rbac_policies":[{"match_cidr":"10.0.0.0/33","permissions":["pull"]}]`), "rbac_policies[0].match_cidr"},
			{"rbac: unknown permission", account(`"rbac_policies":[{"match_repository":".*","permissions":["anonymous_pull"]},{"match_repository":".*","permissions":["fly"]}]`), "rbac_policies[1].permissions"},
			{"rbac: no match field", account(`"rbac_policies":[{"permissions":["anonymous_pull"]}]`), "rbac_policies[0]"},
			{"rbac: bad regex", account(`"rbac_policies":[{"match_repository":"(","permissions":["anonymous_pull"]}]`), "rbac_policies[0].match_repository"},
			{"rbac: pull for everybody", account(`"rbac_policies":[{"match_repository":".*","permissions":["pull"]}]`), "rbac_policies[0].permissions"},
			{"rbac: unknown field", account(`"rbac_policies":[{"match_repository":".*","permissions":["anonymous_pull"],"match_colour":"x"}]`), "rbac_policies"},
			{"rbac: not a list", account(`"rbac_policies":{"match_repository":".*"}`), "rbac_policies"},
			{"tag: no match_repository", account(`"tag_policies":[{"block_delete":true}]`), "tag_policies[0].match_repository"},
			{"tag: bad regex", account(`"tag_policies":[{"match_repository":".*","match_tag":"[","block_delete":true}]`), "tag_policies[0].match_tag"},
			{"tag: nothing blocked", account(`"tag_policies":[{"match_repository":".*"}]`), "tag_policies[0]"},
			{"tag: unknown field", account(`"tag_policies":[{"match_repository":".*","block_everything":true}]`), "tag_policies"},
			{"validation: syntax error", account(`"validation":{"rule_for_manifest":"labels["}`), "validation.rule_for_manifest"},
			{"validation: not bool", account(`"validation":{"rule_for_manifest":"repo_name"}`), "validation.rule_for_manifest"},
			{"validation: unknown variable", account(`"validation":{"rule_for_manifest":"tag == 'x'"}`), "validation.rule_for_manifest"},
			{"validation: unknown field", account(`"validation":{"rule":"true"}`), "rule"},
			{"gc_policies: not a list", account(`"gc_policies":{"x":1}`), "gc_policies"},
			{"gc_policies: no action", account(`"gc_policies":[{"match_repository":".*"}]`), "gc_policies[0].action"},
			{"gc_policies: bad time constraint", account(`"gc_policies":[{"match_repository":".*","action":"delete"},{"match_repository":".*","time_constraint":{"on":"pushed_at"},"action":"delete"}]`), "gc_policies[1].time_constraint"},
			{"gc_policies: unknown field", account(`"gc_policies":[{"match_repository":".*","action":"delete","keep":3}]`), "gc_policies"},
			{"platform_filter: not a list", account(`"platform_filter":"linux"`), "platform_filter"},
			{"replication", account(`"replication":{"strategy":"sometimes","upstream":"x"}`), "replication"},
			{"unknown account field", account(`"colour":"blue"`), "colour"},
			{"unknown top-level field", `{"account":{"auth_tenant_id":"tenant1"},"extra":1}`, "extra"},
			{"tenant missing", `{"account":{}}`, "auth_tenant_id"},
			{"not JSON", `account: test`, "malformed"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := f.do(t, http.MethodPut, "/keppel/v1/accounts/test", f.t1Admin, c.body)
				wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
				if msg := epErrorMessage(r); !strings.Contains(msg, c.mention) {
					t.Errorf("message %q does not mention %q", msg, c.mention)
				}
				// The same body does not create a new account either.
				r = f.do(t, http.MethodPut, "/keppel/v1/accounts/bad-new", f.t1Admin, c.body)
				wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
			})
		}
		if _, after := f.account(t, f.admin, "test"); !bytes.Equal(before.Body, after.Body) {
			t.Errorf("bad requests changed the account:\nbefore %s\nafter  %s", before.Body, after.Body)
		}
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/accounts/bad-new", f.admin, ""), http.StatusNotFound, "NOT_FOUND")

		for _, name := range []string{"Upper", "keppel-x", "a_b", "-lead", strings.Repeat("a", 49), "v2"} {
			r := f.do(t, http.MethodPut, "/keppel/v1/accounts/"+url.PathEscape(name), f.admin, `{"account":{"auth_tenant_id":"tenant1"}}`)
			wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
			if msg := epErrorMessage(r); !strings.Contains(msg, "account name") {
				t.Errorf("PUT %s: message %q does not say the name is the problem", name, msg)
			}
		}
	})
}

func TestEndpointDeleteAccount(t *testing.T) {
	t.Parallel()
	f := newEPFixture(t, "test/app", "gone/app", "managed/app")
	f.s.CreateAccount(t, "gone", "tenant1")
	f.s.CreateAccount(t, "managed", "tenant1")
	epPushImage(t, f.s, f.admin, "gone/app", "v1", "a")

	t.Run("refused", func(t *testing.T) {
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/gone", f.t1Viewer, ""), http.StatusForbidden, "DENIED")
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/gone", f.t2Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/nosuch", f.admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/Bad_Name", f.admin, ""), http.StatusNotFound, "NOT_FOUND")
		if a, r := f.account(t, f.admin, "gone"); a.State != "" {
			t.Errorf("refused deletes marked the account: %s", r.Body)
		}
	})

	t.Run("accepted", func(t *testing.T) {
		r := f.do(t, http.MethodDelete, "/keppel/v1/accounts/gone", f.t1Admin, "")
		if r.Status != http.StatusAccepted {
			t.Fatalf("DELETE: %d %s", r.Status, r.Body)
		}
		if a := decodeAccount(t, r.Body); a.Name != "gone" || a.State != "deleting" {
			t.Errorf("DELETE answer %s", r.Body)
		}
		if a, r := f.account(t, f.t1Viewer, "gone"); a.State != "deleting" {
			t.Errorf("GET after DELETE: %s", r.Body)
		}
		// Deleting again is accepted again.
		if r := f.do(t, http.MethodDelete, "/keppel/v1/accounts/gone", f.t1Admin, ""); r.Status != http.StatusAccepted {
			t.Errorf("second DELETE: %d %s", r.Status, r.Body)
		}
		// No pushes, even by the server admin, and no changes.
		wantError(t, f.s.Do(t, http.MethodPost, "/v2/gone/app/blobs/uploads/", f.admin, nil, nil), http.StatusForbidden, "DENIED")
		cfg := []byte(`{}`)
		r = f.s.Do(t, http.MethodPost, "/v2/gone/app/blobs/uploads/?digest="+digest.FromBytes(cfg).String(), f.admin, nil, bytes.NewReader(cfg))
		wantError(t, r, http.StatusForbidden, "DENIED")
		r = f.s.Do(t, http.MethodPut, "/v2/gone/app/manifests/v2", f.admin,
			http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, strings.NewReader(`{"schemaVersion":2}`))
		wantError(t, r, http.StatusForbidden, "DENIED")
		wantError(t, f.do(t, http.MethodPut, "/keppel/v1/accounts/gone", f.t1Admin, `{"account":{"auth_tenant_id":"tenant1"}}`),
			http.StatusConflict, "CONFLICT")
		// Its content is gone for clients.
		if r := f.s.Do(t, http.MethodGet, "/v2/gone/app/manifests/v1", f.admin, nil, nil); r.Status != http.StatusNotFound {
			t.Errorf("pull from a deleting account: %d", r.Status)
		}
	})

	t.Run("managed accounts", func(t *testing.T) {
		ctx := t.Context()
		a, err := f.s.Store().GetAccount(ctx, "managed")
		if err != nil {
			t.Fatal(err)
		}
		a.IsManaged = true
		a.TagPoliciesJSON = `[{"match_repository":".*","block_delete":true}]`
		if err := f.s.Store().UpdateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		_, before := f.account(t, f.admin, "managed")
		if !strings.Contains(string(before.Body), `"managed":true`) {
			t.Errorf("managed account does not say so: %s", before.Body)
		}
		for _, token := range []string{f.t1Admin, f.admin} {
			r := f.do(t, http.MethodPut, "/keppel/v1/accounts/managed", token, `{"account":{"auth_tenant_id":"tenant1"}}`)
			wantError(t, r, http.StatusForbidden, "DENIED")
			if !strings.Contains(epErrorMessage(r), "managed") && !strings.Contains(epErrorMessage(r), "operator") {
				t.Errorf("PUT managed: message %q does not say why", epErrorMessage(r))
			}
			wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/managed", token, ""), http.StatusForbidden, "DENIED")
		}
		if _, after := f.account(t, f.admin, "managed"); !bytes.Equal(before.Body, after.Body) {
			t.Errorf("managed account changed:\nbefore %s\nafter  %s", before.Body, after.Body)
		}
		// Content can still be pushed into it.
		epPushImage(t, f.s, f.admin, "managed/app", "v1", "m")
	})
}

// epRepo is the wire form of a repository.
type epRepo struct {
	Name          string `json:"name"`
	ManifestCount *int64 `json:"manifest_count"`
	TagCount      *int64 `json:"tag_count"`
	SizeBytes     *int64 `json:"size_bytes"`
	PushedAt      *int64 `json:"pushed_at"`
}

type epRepoList struct {
	Repositories []epRepo `json:"repositories"`
	Truncated    bool     `json:"truncated"`
}
