package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"

	"keppel/internal/models"
	"keppel/internal/test"
)

// This file drives the account policies through the real HTTP APIs: RBAC
// policies at the token endpoint and on /v2/, tag policies and validation
// rules on pushes and deletes, and quotas.

const polPassword = "pol-user-password"

// polAddUser creates a user of the built-in store (with the password
// polPassword) and gives it a role in a tenant (no role if tenant is "").
func polAddUser(t *testing.T, s *test.Server, name, tenant string, role models.Role) {
	t.Helper()
	ctx := t.Context()
	// The lowest bcrypt cost keeps logins fast under -race.
	hash, err := bcrypt.GenerateFromPassword([]byte(polPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store().PutUser(ctx, models.User{Name: name, PasswordHash: string(hash), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if tenant != "" {
		if err := s.Store().SetRole(ctx, name, tenant, role); err != nil {
			t.Fatal(err)
		}
	}
}

// polToken fetches a token from the token endpoint as user (anonymously if
// user is ""), optionally through a proxy that says the client is xff.
func polToken(t *testing.T, s *test.Server, user, xff string, scopes ...string) string {
	t.Helper()
	q := url.Values{"service": {s.Host}, "scope": scopes}
	req, err := http.NewRequest(http.MethodGet, s.URL+"/keppel/v1/auth?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, polPassword)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token for %q: %d", user, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Token
}

// polPutJSON sends a JSON body to the management API with a token.
func polPutJSON(t *testing.T, s *test.Server, path, token, body string) test.Response {
	t.Helper()
	return s.Do(t, http.MethodPut, path, token, http.Header{"Content-Type": {"application/json"}}, strings.NewReader(body))
}

// polSetAccount replaces an account's settings (as the server admin).
func polSetAccount(t *testing.T, s *test.Server, admin, account, tenant, settings string) {
	t.Helper()
	body := `{"account":{"auth_tenant_id":"` + tenant + `"` + settings + `}}`
	if r := polPutJSON(t, s, "/keppel/v1/accounts/"+account, admin, body); r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Fatalf("PUT account %s: %d %s", account, r.Status, r.Body)
	}
}

// polImage is an OCI image: config, layers and manifest.
type polImage struct {
	config   []byte
	layers   [][]byte
	manifest []byte
	digest   string
}

// polNewImage builds an image whose config has the labels and whose
// layers are made from seed.
func polNewImage(seed string, labels map[string]string, layers int) polImage {
	cfg := map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Labels": labels}}
	img := polImage{}
	img.config, _ = json.Marshal(cfg)
	var descs []any
	for i := 0; i < layers; i++ {
		l := []byte(strings.Repeat(seed+"-layer-"+strconv.Itoa(i)+";", 20))
		img.layers = append(img.layers, l)
		descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest.FromBytes(l).String(), "size": len(l)})
	}
	if descs == nil {
		descs = []any{}
	}
	img.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest.FromBytes(img.config).String(), "size": len(img.config)},
		"layers":        descs,
	})
	img.digest = digest.FromBytes(img.manifest).String()
	return img
}

// size is the sum of the image's blob sizes.
func (img polImage) size() int64 {
	n := int64(len(img.config))
	for _, l := range img.layers {
		n += int64(len(l))
	}
	return n
}

// polUploadBlob uploads a blob monolithically and returns the answer.
func polUploadBlob(t *testing.T, s *test.Server, token, repo string, content []byte) test.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(content).String(), token, nil, bytes.NewReader(content))
}

// polPutManifest pushes a manifest and returns the answer.
func polPutManifest(t *testing.T, s *test.Server, token, repo, ref string, m []byte) test.Response {
	t.Helper()
	return s.Do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, token,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, bytes.NewReader(m))
}

// polPushBlobs uploads the image's config and layers.
func polPushBlobs(t *testing.T, s *test.Server, token, repo string, img polImage) {
	t.Helper()
	for _, b := range append([][]byte{img.config}, img.layers...) {
		if r := polUploadBlob(t, s, token, repo, b); r.Status != http.StatusCreated {
			t.Fatalf("blob upload into %s: %d %s", repo, r.Status, r.Body)
		}
	}
}

// polPush uploads the image's blobs and pushes its manifest under ref; it
// returns the answer to the manifest push.
func polPush(t *testing.T, s *test.Server, token, repo, ref string, img polImage) test.Response {
	t.Helper()
	polPushBlobs(t, s, token, repo, img)
	return polPutManifest(t, s, token, repo, ref, img.manifest)
}

// polMustPush is polPush for pushes that must succeed.
func polMustPush(t *testing.T, s *test.Server, token, repo, ref string, img polImage) {
	t.Helper()
	if r := polPush(t, s, token, repo, ref, img); r.Status != http.StatusCreated {
		t.Fatalf("push %s:%s: %d %s", repo, ref, r.Status, r.Body)
	}
}

// polErrorMessage returns the message of the first error of an error envelope.
func polErrorMessage(r test.Response) string {
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

// polWantError checks status, code and that the message mentions each of
// the given strings.
func polWantError(t *testing.T, what string, r test.Response, status int, code string, mentions ...string) {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Errorf("%s: %d %s, want %d %s (body %.300s)", what, r.Status, r.ErrorCode(), status, code, r.Body)
		return
	}
	msg := polErrorMessage(r)
	for _, m := range mentions {
		if !strings.Contains(msg, m) {
			t.Errorf("%s: message %q does not mention %q", what, msg, m)
		}
	}
}

// polResolves returns the digest that a reference points at ("" if none).
func polResolves(t *testing.T, s *test.Server, token, repo, ref string) string {
	t.Helper()
	r := s.Do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, token, nil, nil)
	if r.Status != http.StatusOK {
		return ""
	}
	return r.Header.Get("Docker-Content-Digest")
}

// rbacPolicies of the account "pol" in TestPolicyRBAC.
const polRBAC = `,"rbac_policies":[
	{"match_repository":"public/.*","permissions":["anonymous_pull"]},
	{"match_repository":"locked/.*","match_username":"pol-pusher","forbidden_permissions":["push"]},
	{"match_repository":"ci/.*","match_username":"pol-ci","permissions":["pull","push"]},
	{"match_repository":"office/.*","match_cidr":"10.20.0.0/16","permissions":["anonymous_pull"]},
	{"match_repository":"build/.*","match_cidr":"10.30.0.0/16","permissions":["pull","push"]},
	{"match_repository":"local/.*","match_cidr":"127.0.0.0/8","permissions":["anonymous_pull"]}]`

// TestPolicyRBAC checks what users and anonymous clients may do in the
// repositories of an account with RBAC policies, on a server behind a
// trusted proxy (which believes X-Forwarded-For) and on one without (which
// ignores the header).
func TestPolicyRBAC(t *testing.T) {
	t.Parallel()
	type access struct{ pull, push bool }
	cases := []struct {
		name, user, xff, repo string
		// behindProxy is the access on the server that trusts the
		// proxy, direct on the one that does not.
		behindProxy, direct access
	}{
		{"anonymous, public", "", "", "public/img", access{true, false}, access{true, false}},
		{"anonymous, private", "", "", "private/img", access{}, access{}},
		{"anonymous, office network", "", "10.20.5.5", "office/img", access{true, false}, access{}},
		{"anonymous, office network via two proxies", "", "10.20.5.5, 127.0.0.1", "office/img", access{true, false}, access{}},
		{"anonymous, other network", "", "192.168.1.1", "office/img", access{}, access{}},
		{"anonymous, no header", "", "", "office/img", access{}, access{}},
		{"anonymous, loopback", "", "", "local/img", access{true, false}, access{true, false}},
		{"anonymous, loopback proxy for another network", "", "10.20.5.5", "local/img", access{}, access{true, false}},
		{"pusher role, private", "pol-pusher", "", "private/img", access{true, true}, access{true, true}},
		{"pusher role, forbidden push", "pol-pusher", "", "locked/img", access{true, false}, access{true, false}},
		{"no role, private", "pol-norole", "", "private/img", access{}, access{}},
		{"no role, public", "pol-norole", "", "public/img", access{true, false}, access{true, false}},
		{"no role, matched by user name", "pol-ci", "", "ci/img", access{true, true}, access{true, true}},
		{"no role, user name does not match the repository", "pol-ci", "", "private/img", access{}, access{}},
		{"no role, build network", "pol-norole", "10.30.1.1", "build/img", access{true, true}, access{}},
		{"no role, build network spoofed as first hop", "pol-norole", "10.30.1.1, 192.168.1.1", "build/img", access{}, access{}},
		{"no role, no header", "pol-norole", "", "build/img", access{}, access{}},
		{"role in another tenant", "pol-foreign", "", "private/img", access{}, access{}},
	}

	for _, proxied := range []bool{true, false} {
		name := map[bool]string{true: "behind trusted proxy", false: "without trusted proxy"}[proxied]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := test.Options{StorageDriver: "memory", Accounts: map[string]string{"pol": "ptenant"}}
			if proxied {
				opts.TrustedProxies = []string{"127.0.0.1"}
			}
			s := test.NewServer(t, opts)
			polAddUser(t, s, "pol-pusher", "ptenant", models.RolePusher)
			polAddUser(t, s, "pol-norole", "", "")
			polAddUser(t, s, "pol-ci", "", "")
			polAddUser(t, s, "pol-foreign", "other-tenant", models.RoleAdmin)
			repos := []string{"public/img", "private/img", "office/img", "local/img", "locked/img", "ci/img", "build/img"}
			var scopes []string
			for _, r := range repos {
				scopes = append(scopes, "repository:pol/"+r+":pull,push")
			}
			admin := s.Token(t, scopes...)
			polSetAccount(t, s, admin, "pol", "ptenant", polRBAC)
			img := polNewImage("rbac", nil, 1)
			for _, r := range repos {
				polMustPush(t, s, admin, "pol/"+r, "v1", img)
			}

			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					want := c.direct
					if proxied {
						want = c.behindProxy
					}
					repo := "pol/" + c.repo
					var header http.Header
					if c.xff != "" {
						header = http.Header{"X-Forwarded-For": {c.xff}}
					}
					token := polToken(t, s, c.user, c.xff, "repository:"+repo+":pull,push")
					pull := s.Do(t, http.MethodGet, "/v2/"+repo+"/manifests/v1", token, header, nil)
					if got := pull.Status == http.StatusOK; got != want.pull {
						t.Errorf("pull with token: %d, want allowed=%v", pull.Status, want.pull)
					}
					if !want.pull && pull.Status != http.StatusUnauthorized {
						t.Errorf("refused pull: %d, want 401", pull.Status)
					}
					push := s.Do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", token, header, nil)
					if got := push.Status == http.StatusAccepted; got != want.push {
						t.Errorf("push with token: %d, want allowed=%v", push.Status, want.push)
					}
					if push.Status == http.StatusAccepted {
						s.Do(t, http.MethodDelete, push.Header.Get("Location"), token, nil, nil)
					}
					if c.user != "" {
						return
					}
					// Anonymous clients pull public content without any token.
					pull = s.Do(t, http.MethodGet, "/v2/"+repo+"/manifests/v1", "", header, nil)
					if got := pull.Status == http.StatusOK; got != want.pull {
						t.Errorf("pull without token: %d, want allowed=%v", pull.Status, want.pull)
					}
					if pull.Status == http.StatusOK && pull.Header.Get("Docker-Content-Digest") != img.digest {
						t.Errorf("pulled %s", pull.Header.Get("Docker-Content-Digest"))
					}
					if pull.Status != http.StatusOK && !strings.HasPrefix(pull.Header.Get("WWW-Authenticate"), "Bearer ") {
						t.Errorf("refused anonymous pull without a challenge: %d %v", pull.Status, pull.Header)
					}
					if push := s.Do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", header, nil); push.Status != http.StatusUnauthorized {
						t.Errorf("anonymous push without token: %d", push.Status)
					}
				})
			}
		})
	}
}

// TestPolicyTags checks block_overwrite, block_delete and block_push on
// pushes and deletes through /v2/ and /keppel/v1/.
func TestPolicyTags(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"tags": "ttenant"}})
	admin := s.Token(t, "repository:tags/prod/app:pull,push,delete", "repository:tags/dev/app:pull,push,delete")
	polSetAccount(t, s, admin, "tags", "ttenant", `,"tag_policies":[
		{"match_repository":"prod/.*","match_tag":"v.*","block_overwrite":true},
		{"match_repository":"prod/.*","match_tag":"keep-.*","block_delete":true},
		{"match_repository":".*","match_tag":"latest","block_push":true}]`)
	a := polNewImage("a", nil, 1)
	b := polNewImage("b", nil, 1)
	polPushBlobs(t, s, admin, "tags/prod/app", a)
	polPushBlobs(t, s, admin, "tags/prod/app", b)
	polPushBlobs(t, s, admin, "tags/dev/app", a)
	polPushBlobs(t, s, admin, "tags/dev/app", b)
	const prod, dev = "tags/prod/app", "tags/dev/app"

	t.Run("block_overwrite", func(t *testing.T) {
		if r := polPutManifest(t, s, admin, prod, "v1", a.manifest); r.Status != http.StatusCreated {
			t.Fatalf("first push: %d %s", r.Status, r.Body)
		}
		// Re-pushing the same manifest changes nothing and is allowed.
		if r := polPutManifest(t, s, admin, prod, "v1", a.manifest); r.Status != http.StatusCreated {
			t.Errorf("same-digest re-push: %d %s", r.Status, r.Body)
		}
		r := polPutManifest(t, s, admin, prod, "v1", b.manifest)
		polWantError(t, "moving v1", r, http.StatusConflict, "DENIED", "tag_policies[0]", `match_tag "v.*"`, "overwriting", "v1")
		// The same through the tag parameter of a push by digest.
		r = polPutManifest(t, s, admin, prod, b.digest+"?tag=v1", b.manifest)
		polWantError(t, "moving v1 by ?tag=", r, http.StatusConflict, "DENIED", "tag_policies[0]")
		if got := polResolves(t, s, admin, prod, "v1"); got != a.digest {
			t.Errorf("v1 points at %s after refused moves, want %s", got, a.digest)
		}
		// New tags are fine, and so is moving a tag that no policy protects.
		if r := polPutManifest(t, s, admin, prod, "v2", b.manifest); r.Status != http.StatusCreated {
			t.Errorf("new tag v2: %d %s", r.Status, r.Body)
		}
		if r := polPutManifest(t, s, admin, prod, "rc", a.manifest); r.Status != http.StatusCreated {
			t.Errorf("tag rc: %d %s", r.Status, r.Body)
		}
		if r := polPutManifest(t, s, admin, prod, "rc", b.manifest); r.Status != http.StatusCreated {
			t.Errorf("moving rc: %d %s", r.Status, r.Body)
		}
		// The policy applies to prod/.* only.
		polPutManifest(t, s, admin, dev, "v1", a.manifest)
		if r := polPutManifest(t, s, admin, dev, "v1", b.manifest); r.Status != http.StatusCreated {
			t.Errorf("moving v1 in dev: %d %s", r.Status, r.Body)
		}
	})

	t.Run("block_push", func(t *testing.T) {
		for _, repo := range []string{prod, dev} {
			r := polPutManifest(t, s, admin, repo, "latest", a.manifest)
			polWantError(t, "pushing latest to "+repo, r, http.StatusConflict, "DENIED", "tag_policies[2]", `match_tag "latest"`, "pushing")
			r = polPutManifest(t, s, admin, repo, a.digest+"?tag=latest", a.manifest)
			polWantError(t, "pushing latest by ?tag= to "+repo, r, http.StatusConflict, "DENIED", "tag_policies[2]")
			if got := polResolves(t, s, admin, repo, "latest"); got != "" {
				t.Errorf("latest exists in %s after refused pushes", repo)
			}
		}
		// Untagged pushes are not affected.
		c := polNewImage("c", nil, 1)
		polPushBlobs(t, s, admin, dev, c)
		if r := polPutManifest(t, s, admin, dev, c.digest, c.manifest); r.Status != http.StatusCreated {
			t.Errorf("push by digest: %d %s", r.Status, r.Body)
		}
	})

	t.Run("block_delete", func(t *testing.T) {
		keep := polNewImage("keep", nil, 1)
		polPushBlobs(t, s, admin, prod, keep)
		if r := polPutManifest(t, s, admin, prod, "keep-1", keep.manifest); r.Status != http.StatusCreated {
			t.Fatalf("push keep-1: %d %s", r.Status, r.Body)
		}
		if r := polPutManifest(t, s, admin, prod, "other", keep.manifest); r.Status != http.StatusCreated {
			t.Fatalf("push other: %d %s", r.Status, r.Body)
		}
		v1 := "/keppel/v1/accounts/tags/repositories/prod/app"
		mentions := []string{"tag_policies[1]", `match_tag "keep-.*"`, "deleting", "keep-1"}
		polWantError(t, "tag delete via /v2", s.Do(t, http.MethodDelete, "/v2/"+prod+"/manifests/keep-1", admin, nil, nil),
			http.StatusConflict, "DENIED", mentions...)
		polWantError(t, "manifest delete via /v2", s.Do(t, http.MethodDelete, "/v2/"+prod+"/manifests/"+keep.digest, admin, nil, nil),
			http.StatusConflict, "DENIED", mentions...)
		polWantError(t, "tag delete via /keppel/v1", s.Do(t, http.MethodDelete, v1+"/_tags/keep-1", admin, nil, nil),
			http.StatusConflict, "DENIED", mentions...)
		polWantError(t, "manifest delete via /keppel/v1", s.Do(t, http.MethodDelete, v1+"/_manifests/"+keep.digest, admin, nil, nil),
			http.StatusConflict, "DENIED", mentions...)
		if got := polResolves(t, s, admin, prod, "keep-1"); got != keep.digest {
			t.Errorf("keep-1 points at %q after refused deletes", got)
		}
		// Unprotected tags of the same manifest can go.
		if r := s.Do(t, http.MethodDelete, "/v2/"+prod+"/manifests/other", admin, nil, nil); r.Status != http.StatusAccepted {
			t.Errorf("deleting tag other: %d %s", r.Status, r.Body)
		}
		if r := s.Do(t, http.MethodDelete, v1+"/_tags/v2", admin, nil, nil); r.Status != http.StatusNoContent {
			t.Errorf("deleting tag v2: %d %s", r.Status, r.Body)
		}
		// A manifest without protected tags can go, in prod too.
		if r := s.Do(t, http.MethodDelete, "/v2/"+prod+"/manifests/"+b.digest, admin, nil, nil); r.Status != http.StatusAccepted {
			t.Errorf("deleting manifest b: %d %s", r.Status, r.Body)
		}
	})
}

// TestPolicyValidationRule checks rule_for_manifest on pushes.
func TestPolicyValidationRule(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory",
		Accounts: map[string]string{"cel-label": "ctenant", "cel-layers": "ctenant", "cel-repo": "ctenant", "cel-eval": "ctenant"}})
	repos := []string{"cel-label/app", "cel-layers/app", "cel-repo/apps/web", "cel-repo/misc/web", "cel-eval/app"}
	var scopes []string
	for _, r := range repos {
		scopes = append(scopes, "repository:"+r+":pull,push")
	}
	admin := s.Token(t, scopes...)
	rules := map[string]string{
		"cel-label":  `'org.example.team' in labels`,
		"cel-layers": `size(layers) <= 2 && layers.all(l, l.size < 100000)`,
		"cel-repo":   `repo_name.startsWith('apps/')`,
		// Reading a label that is not there fails the evaluation.
		"cel-eval": `labels['tier'] == 'prod'`,
	}
	for account, rule := range rules {
		rj, _ := json.Marshal(rule)
		polSetAccount(t, s, admin, account, "ctenant", `,"validation":{"rule_for_manifest":`+string(rj)+`}`)
	}
	cases := []struct {
		name, repo string
		img        polImage
		ok         bool
	}{
		{"label missing", "cel-label/app", polNewImage("l1", map[string]string{"other": "x"}, 1), false},
		{"no labels at all", "cel-label/app", polNewImage("l2", nil, 1), false},
		{"label present", "cel-label/app", polNewImage("l3", map[string]string{"org.example.team": "blue"}, 1), true},
		{"three layers", "cel-layers/app", polNewImage("n3", nil, 3), false},
		{"two layers", "cel-layers/app", polNewImage("n2", nil, 2), true},
		{"no layers", "cel-layers/app", polNewImage("n0", nil, 0), true},
		{"repository outside apps/", "cel-repo/misc/web", polNewImage("r1", nil, 1), false},
		{"repository in apps/", "cel-repo/apps/web", polNewImage("r2", nil, 1), true},
		{"evaluation error", "cel-eval/app", polNewImage("e1", nil, 1), false},
		{"evaluation false", "cel-eval/app", polNewImage("e2", map[string]string{"tier": "dev"}, 1), false},
		{"evaluation true", "cel-eval/app", polNewImage("e3", map[string]string{"tier": "prod"}, 1), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := polPush(t, s, admin, c.repo, "v1", c.img)
			if c.ok {
				if r.Status != http.StatusCreated {
					t.Fatalf("push: %d %s", r.Status, r.Body)
				}
				if got := polResolves(t, s, admin, c.repo, "v1"); got != c.img.digest {
					t.Errorf("v1 points at %q", got)
				}
				return
			}
			account, _, _ := strings.Cut(c.repo, "/")
			polWantError(t, "push", r, http.StatusBadRequest, "MANIFEST_INVALID", rules[account])
			if got := polResolves(t, s, admin, c.repo, c.img.digest); got != "" {
				t.Errorf("refused manifest was stored")
			}
		})
	}
}

// TestPolicyQuotas checks manifest and byte quotas on pushes.
func TestPolicyQuotas(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"quota": "qtenant", "free": "other"}})
	admin := s.Token(t, "repository:quota/app:pull,push,delete", "repository:quota/lib:pull,push", "repository:free/app:pull,push")
	setQuota := func(t *testing.T, body string) {
		t.Helper()
		if r := polPutJSON(t, s, "/keppel/v1/quotas/qtenant", admin, body); r.Status != http.StatusOK {
			t.Fatalf("PUT quota: %d %s", r.Status, r.Body)
		}
	}
	usage := func(t *testing.T) (manifests, bytes int64) {
		t.Helper()
		r := s.Do(t, http.MethodGet, "/keppel/v1/quotas/qtenant", admin, nil, nil)
		var q struct {
			Manifests struct{ Usage int64 } `json:"manifests"`
			Bytes     struct{ Usage int64 } `json:"bytes"`
		}
		if err := json.Unmarshal(r.Body, &q); err != nil || r.Status != http.StatusOK {
			t.Fatalf("GET quota: %d %s", r.Status, r.Body)
		}
		return q.Manifests.Usage, q.Bytes.Usage
	}

	imgs := []polImage{polNewImage("q1", nil, 1), polNewImage("q2", nil, 1), polNewImage("q3", nil, 1)}

	t.Run("manifests", func(t *testing.T) {
		setQuota(t, `{"manifests":{"quota":2}}`)
		polMustPush(t, s, admin, "quota/app", "one", imgs[0])
		polMustPush(t, s, admin, "quota/lib", "two", imgs[1])
		r := polPush(t, s, admin, "quota/app", "three", imgs[2])
		polWantError(t, "third manifest", r, http.StatusConflict, "DENIED", "quota", "2 of 2")
		if got := polResolves(t, s, admin, "quota/app", imgs[2].digest); got != "" {
			t.Errorf("the refused manifest was stored")
		}
		// Re-pushing a manifest that exists takes no quota: under another
		// tag, by digest, and under its own tag.
		for _, ref := range []string{"one-again", imgs[0].digest, "one"} {
			if r := polPutManifest(t, s, admin, "quota/app", ref, imgs[0].manifest); r.Status != http.StatusCreated {
				t.Errorf("re-push as %s: %d %s", ref, r.Status, r.Body)
			}
		}
		if m, _ := usage(t); m != 2 {
			t.Errorf("manifest usage = %d, want 2", m)
		}
		// Other tenants are not affected.
		polMustPush(t, s, admin, "free/app", "three", imgs[2])
		// Deleting a manifest frees quota.
		if r := s.Do(t, http.MethodDelete, "/v2/quota/app/manifests/"+imgs[0].digest, admin, nil, nil); r.Status != http.StatusAccepted {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if r := polPutManifest(t, s, admin, "quota/app", "three", imgs[2].manifest); r.Status != http.StatusCreated {
			t.Errorf("push after a delete: %d %s", r.Status, r.Body)
		}
	})

	t.Run("bytes", func(t *testing.T) {
		_, used := usage(t)
		setQuota(t, `{"manifests":{"quota":-1},"bytes":{"quota":`+strconv.FormatInt(used+1000, 10)+`}}`)
		big := bytes.Repeat([]byte("big blob;"), 200) // 1800 bytes
		polWantError(t, "monolithic upload over quota", polUploadBlob(t, s, admin, "quota/app", big), http.StatusConflict, "DENIED", "quota")

		// A chunked upload is refused when it completes.
		start := s.Do(t, http.MethodPost, "/v2/quota/app/blobs/uploads/", admin, nil, nil)
		if start.Status != http.StatusAccepted {
			t.Fatalf("upload start below quota: %d %s", start.Status, start.Body)
		}
		loc := start.Header.Get("Location")
		if r := s.Do(t, http.MethodPatch, loc, admin, http.Header{"Content-Type": {"application/octet-stream"}}, bytes.NewReader(big)); r.Status != http.StatusAccepted {
			t.Fatalf("chunk: %d %s", r.Status, r.Body)
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		r := s.Do(t, http.MethodPut, loc+sep+"digest="+digest.FromBytes(big).String(), admin, nil, nil)
		polWantError(t, "chunked upload over quota", r, http.StatusConflict, "DENIED", "quota")
		if r := s.Do(t, http.MethodHead, "/v2/quota/app/blobs/"+digest.FromBytes(big).String(), admin, nil, nil); r.Status != http.StatusNotFound {
			t.Errorf("the refused blob exists: %d", r.Status)
		}
		if _, b := usage(t); b != used {
			t.Errorf("byte usage %d after refused uploads, want %d", b, used)
		}

		// Within quota is fine.
		small := bytes.Repeat([]byte("small;"), 100) // 600 bytes
		if r := polUploadBlob(t, s, admin, "quota/app", small); r.Status != http.StatusCreated {
			t.Fatalf("upload within quota: %d %s", r.Status, r.Body)
		}
		// A blob that the account has already takes no quota.
		if r := polUploadBlob(t, s, admin, "quota/lib", small); r.Status != http.StatusCreated {
			t.Errorf("upload of a known blob: %d %s", r.Status, r.Body)
		}
		if _, b := usage(t); b != used+600 {
			t.Errorf("byte usage %d, want %d", b, used+600)
		}
		// 400 bytes are left: 600 more are refused.
		polWantError(t, "upload beyond what is left", polUploadBlob(t, s, admin, "quota/app", bytes.Repeat([]byte("other;"), 100)),
			http.StatusConflict, "DENIED", "quota")
	})

	t.Run("checked before an upload starts", func(t *testing.T) {
		_, used := usage(t)
		setQuota(t, `{"bytes":{"quota":`+strconv.FormatInt(used, 10)+`}}`)
		r := s.Do(t, http.MethodPost, "/v2/quota/app/blobs/uploads/", admin, nil, nil)
		polWantError(t, "upload start with the quota used up", r, http.StatusConflict, "DENIED", "quota")
		if r.Header.Get("Location") != "" {
			t.Errorf("a refused upload has a Location: %s", r.Header.Get("Location"))
		}
		setQuota(t, `{"bytes":{"quota":0}}`)
		polWantError(t, "upload start with a zero quota", s.Do(t, http.MethodPost, "/v2/quota/lib/blobs/uploads/", admin, nil, nil),
			http.StatusConflict, "DENIED", "quota")
	})
}
