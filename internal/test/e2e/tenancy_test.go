package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/auth/builtin"
	"keppel/internal/models"
	"keppel/internal/test"
)

// tenancyFixture is a registry with three tenants of two accounts each, an
// image in every account, and users with different roles.
type tenancyFixture struct {
	s *test.Server
	// accounts by tenant, and the digest of a layer in <account>/app
	accounts map[string][]string
	layers   map[string]string
	manifest map[string]string
}

type user struct {
	name, tenant string
	role         models.Role
}

var tenancyUsers = []user{
	{"t1-admin", "t1", models.RoleAdmin},
	{"t1-pusher", "t1", models.RolePusher},
	{"t1-viewer", "t1", models.RoleViewer},
	{"t2-pusher", "t2", models.RolePusher},
	{"t3-viewer", "t3", models.RoleViewer},
}

const userPassword = "user-password-123"

func newTenancyFixture(t *testing.T) *tenancyFixture {
	f := &tenancyFixture{
		accounts: map[string][]string{"t1": {"t1-a", "t1-b"}, "t2": {"t2-a", "t2-b"}, "t3": {"t3-a", "t3-b"}},
		layers:   map[string]string{},
		manifest: map[string]string{},
	}
	all := map[string]string{}
	for tenant, names := range f.accounts {
		for _, n := range names {
			all[n] = tenant
		}
	}
	f.s = test.NewServer(t, test.Options{Accounts: all})
	ctx := t.Context()
	store := f.s.Store()
	for _, u := range tenancyUsers {
		if err := builtin.SetPassword(ctx, store, u.name, userPassword, false, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := store.SetRole(ctx, u.name, u.tenant, u.role); err != nil {
			t.Fatal(err)
		}
	}
	for account := range all {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref(t, f.s, account+"/app:v1"), img, adminAuth()); err != nil {
			t.Fatalf("seeding %s: %v", account, err)
		}
		layers, _ := img.Layers()
		ld, _ := layers[0].Digest()
		md, _ := img.Digest()
		f.layers[account], f.manifest[account] = ld.String(), md.String()
	}
	return f
}

func (f *tenancyFixture) token(t *testing.T, u user, scopes ...string) string {
	return f.s.TokenAs(t, u.name, userPassword, scopes...)
}

// TestTenantIsolation checks every user against every account: inside
// their tenant they get what their role allows; outside it nothing, through
// /v2/ (including mounts and digest guessing) and /keppel/v1/, and the
// answers do not tell a foreign repository that exists from one that
// does not.
func TestTenantIsolation(t *testing.T) {
	f := newTenancyFixture(t)
	for _, u := range tenancyUsers {
		t.Run(u.name, func(t *testing.T) {
			own := f.accounts[u.tenant][0]
			for tenant, accounts := range f.accounts {
				for _, account := range accounts {
					if tenant == u.tenant {
						f.checkOwnAccount(t, u, account)
					} else {
						f.checkForeignAccount(t, u, account, own)
					}
				}
			}
			f.checkCatalog(t, u)
			f.checkManagementListing(t, u)
		})
	}
}

func (f *tenancyFixture) checkOwnAccount(t *testing.T, u user, account string) {
	t.Helper()
	repo := account + "/app"
	token := f.token(t, u, "repository:"+repo+":pull,push,delete")
	if r := f.s.Do(t, "GET", "/v2/"+repo+"/manifests/v1", token, nil, nil); r.Status != 200 {
		t.Errorf("%s cannot pull own %s: %d", u.name, repo, r.Status)
	}
	push := f.s.Do(t, "POST", "/v2/"+repo+"/blobs/uploads/", token, nil, nil)
	canPush := u.role.Includes(models.RolePusher)
	if (push.Status == http.StatusAccepted) != canPush {
		t.Errorf("%s (%s) push into %s: %d", u.name, u.role, repo, push.Status)
	}
	if canPush {
		f.s.Do(t, "DELETE", push.Header.Get("Location"), token, nil, nil)
	}
	// Deleting an unknown tag: allowed callers learn it is unknown (404),
	// others are refused (401) before anything is looked up.
	del := f.s.Do(t, "DELETE", "/v2/"+repo+"/manifests/nosuchtag", token, nil, nil)
	if want := map[bool]int{true: 404, false: 401}[u.role.Includes(models.RoleAdmin)]; del.Status != want {
		t.Errorf("%s (%s) delete in %s: %d, want %d", u.name, u.role, repo, del.Status, want)
	}
}

func (f *tenancyFixture) checkForeignAccount(t *testing.T, u user, account, own string) {
	t.Helper()
	repo := account + "/app"
	missing := account + "/does-not-exist"
	token := f.token(t, u, "repository:"+repo+":pull,push,delete", "repository:"+missing+":pull,push,delete",
		"repository:"+own+"/mounted:pull,push", "keppel_account:"+account+":view,change")
	var claims struct {
		Access []any `json:"access"`
	}
	parts := strings.Split(token, ".")
	payload, _ := decodeSegment(parts[1])
	_ = json.Unmarshal(payload, &claims)
	// The token only carries the scope for the user's own account.
	if len(claims.Access) != 1 {
		t.Errorf("%s got %d scopes for foreign account %s: %s", u.name, len(claims.Access), account, payload)
	}

	// Pull, push, delete and digest guessing are refused alike for an
	// existing and a missing repository.
	for _, req := range []struct{ method, suffix string }{
		{"GET", "/manifests/v1"},
		{"GET", "/manifests/" + f.manifest[account]},
		{"HEAD", "/blobs/" + f.layers[account]},
		{"GET", "/blobs/" + f.layers[account]},
		{"POST", "/blobs/uploads/"},
		{"DELETE", "/manifests/" + f.manifest[account]},
		{"GET", "/tags/list"},
		{"GET", "/referrers/" + f.manifest[account]},
	} {
		a := f.s.Do(t, req.method, "/v2/"+repo+req.suffix, token, nil, nil)
		b := f.s.Do(t, req.method, "/v2/"+missing+req.suffix, token, nil, nil)
		if a.Status != http.StatusUnauthorized {
			t.Errorf("%s %s %s%s: %d, want 401", u.name, req.method, repo, req.suffix, a.Status)
		}
		if a.Status != b.Status || !bytes.Equal(a.Body, b.Body) {
			t.Errorf("%s %s%s: answers for an existing (%d %s) and a missing (%d %s) repository differ",
				u.name, req.method, req.suffix, a.Status, a.Body, b.Status, b.Body)
		}
	}

	// A cross-repository mount from the foreign account yields a new
	// upload, never the foreign blob.
	if u.role.Includes(models.RolePusher) {
		m := f.s.Do(t, "POST", "/v2/"+own+"/mounted/blobs/uploads/?mount="+f.layers[account]+"&from="+repo, token, nil, nil)
		if m.Status != http.StatusAccepted {
			t.Errorf("%s mount from %s: %d %s", u.name, repo, m.Status, m.Body)
		}
		f.s.Do(t, "DELETE", m.Header.Get("Location"), token, nil, nil)
		if h := f.s.Do(t, "HEAD", "/v2/"+own+"/mounted/blobs/"+f.layers[account], token, nil, nil); h.Status != http.StatusNotFound {
			t.Errorf("%s sees a foreign blob after a mount attempt: %d", u.name, h.Status)
		}
	}

	// The management API does not show or change the foreign account.
	v1token := f.token(t, u)
	for _, req := range []struct{ method, path string }{
		{"GET", "/keppel/v1/accounts/" + account},
		{"GET", "/keppel/v1/accounts/" + account + "/repositories"},
		{"GET", "/keppel/v1/accounts/" + account + "/repositories/app/_manifests"},
		{"DELETE", "/keppel/v1/accounts/" + account + "/repositories/app/_manifests/" + f.manifest[account]},
		{"DELETE", "/keppel/v1/accounts/" + account + "/repositories/app/_tags/v1"},
		{"DELETE", "/keppel/v1/accounts/" + account + "/repositories/app"},
		{"DELETE", "/keppel/v1/accounts/" + account},
	} {
		r := f.s.Do(t, req.method, req.path, v1token, nil, nil)
		if r.Status != http.StatusNotFound || r.ErrorCode() != "NOT_FOUND" {
			t.Errorf("%s %s %s: %d %s, want 404", u.name, req.method, req.path, r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "app") || strings.Contains(string(r.Body), f.manifest[account]) {
			t.Errorf("%s %s %s: the error mentions the foreign content: %s", u.name, req.method, req.path, r.Body)
		}
	}
	for tenant := range f.accounts {
		if tenant == u.tenant {
			continue
		}
		if r := f.s.Do(t, "GET", "/keppel/v1/quotas/"+tenant, v1token, nil, nil); r.Status != http.StatusNotFound {
			t.Errorf("%s sees the quota of %s: %d", u.name, tenant, r.Status)
		}
	}
	// The foreign content is untouched.
	adminToken := f.s.Token(t, "repository:"+repo+":pull")
	if r := f.s.Do(t, "GET", "/v2/"+repo+"/manifests/v1", adminToken, nil, nil); r.Status != 200 {
		t.Errorf("foreign %s damaged: %d", repo, r.Status)
	}
}

func (f *tenancyFixture) checkCatalog(t *testing.T, u user) {
	t.Helper()
	token := f.token(t, u, "registry:catalog:*")
	r := f.s.Do(t, "GET", "/v2/_catalog", token, nil, nil)
	var body struct{ Repositories []string }
	if err := json.Unmarshal(r.Body, &body); err != nil || r.Status != 200 {
		t.Fatalf("%s catalog: %d %s", u.name, r.Status, r.Body)
	}
	for _, repo := range body.Repositories {
		if !strings.HasPrefix(repo, u.tenant+"-") {
			t.Errorf("%s sees foreign repository %s in the catalog", u.name, repo)
		}
	}
	if len(body.Repositories) < 2 {
		t.Errorf("%s sees only %v in the catalog", u.name, body.Repositories)
	}
}

func (f *tenancyFixture) checkManagementListing(t *testing.T, u user) {
	t.Helper()
	r := f.s.Do(t, "GET", "/keppel/v1/accounts", f.token(t, u), nil, nil)
	var body struct {
		Accounts []struct {
			Name         string `json:"name"`
			AuthTenantID string `json:"auth_tenant_id"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || r.Status != 200 {
		t.Fatalf("%s accounts: %d %s", u.name, r.Status, r.Body)
	}
	if len(body.Accounts) != 2 {
		t.Errorf("%s sees %d accounts, want the 2 of %s", u.name, len(body.Accounts), u.tenant)
	}
	for _, a := range body.Accounts {
		if a.AuthTenantID != u.tenant {
			t.Errorf("%s sees account %s of %s", u.name, a.Name, a.AuthTenantID)
		}
	}
}
