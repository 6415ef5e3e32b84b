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

	"keppel/internal/test"
)

func TestEndpointRepositories(t *testing.T) {
	t.Parallel()
	f := newEPFixture(t, "test/app", "test/lib", "test/team/tool", "test/empty", "other/app")
	v1 := epPushImage(t, f.s, f.admin, "test/app", "v1", "a")
	epTag(t, f.s, f.admin, "test/app", "latest", v1)
	v2 := epPushImage(t, f.s, f.admin, "test/app", "v2", "b")
	epPushImage(t, f.s, f.admin, "test/lib", "", "c")
	epPushImage(t, f.s, f.admin, "test/team/tool", "x", "d")
	epPushImage(t, f.s, f.admin, "other/app", "x", "e")
	// An upload creates the repository without manifests.
	if r := f.s.Do(t, http.MethodPost, "/v2/test/empty/blobs/uploads/", f.admin, nil, nil); r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	appSize := int64(0)
	for _, img := range []epImage{v1, v2} {
		for _, n := range img.blobs {
			appSize += n
		}
	}

	list := func(t *testing.T, token, query string) epRepoList {
		t.Helper()
		var out epRepoList
		epDecode(t, f.do(t, http.MethodGet, "/keppel/v1/accounts/test/repositories"+query, token, ""), http.StatusOK, &out)
		return out
	}
	names := func(l epRepoList) []string {
		var out []string
		for _, r := range l.Repositories {
			out = append(out, r.Name)
		}
		return out
	}

	t.Run("list", func(t *testing.T) {
		l := list(t, f.t1Viewer, "")
		if got := names(l); !slices.Equal(got, []string{"app", "empty", "lib", "team/tool"}) || l.Truncated {
			t.Fatalf("repositories = %v (truncated %v)", got, l.Truncated)
		}
		app := l.Repositories[0]
		if app.ManifestCount == nil || *app.ManifestCount != 2 || app.TagCount == nil || *app.TagCount != 3 ||
			app.SizeBytes == nil || *app.SizeBytes != appSize || app.PushedAt == nil {
			t.Errorf("app = %+v, want 2 manifests, 3 tags, %d bytes, pushed_at", app, appSize)
		} else {
			epRecent(t, "pushed_at", *app.PushedAt)
		}
		empty := l.Repositories[1]
		if empty.ManifestCount == nil || *empty.ManifestCount != 0 || *empty.TagCount != 0 || *empty.SizeBytes != 0 || empty.PushedAt != nil {
			t.Errorf("empty = %+v", empty)
		}
		if lib := l.Repositories[2]; *lib.ManifestCount != 1 || *lib.TagCount != 0 {
			t.Errorf("lib = %+v", lib)
		}
		// The server admin and the tenant admin see the same.
		for _, token := range []string{f.admin, f.t1Admin} {
			if got := names(list(t, token, "")); len(got) != 4 {
				t.Errorf("repositories = %v", got)
			}
		}
	})

	t.Run("pagination", func(t *testing.T) {
		p1 := list(t, f.t1Viewer, "?limit=2")
		if got := names(p1); !slices.Equal(got, []string{"app", "empty"}) || !p1.Truncated {
			t.Errorf("page 1 = %v (truncated %v)", got, p1.Truncated)
		}
		r := f.do(t, http.MethodGet, "/keppel/v1/accounts/test/repositories?limit=2&marker=empty", f.t1Viewer, "")
		var p2 epRepoList
		epDecode(t, r, http.StatusOK, &p2)
		if got := names(p2); !slices.Equal(got, []string{"lib", "team/tool"}) || p2.Truncated || strings.Contains(string(r.Body), "truncated") {
			t.Errorf("page 2 = %s", r.Body)
		}
		if got := names(list(t, f.t1Viewer, "?limit=1000&marker=lib")); !slices.Equal(got, []string{"team/tool"}) {
			t.Errorf("after lib: %v", got)
		}
		// Past the end, the list is empty ([], not null).
		if r := f.do(t, http.MethodGet, "/keppel/v1/accounts/test/repositories?marker=zzz", f.t1Viewer, ""); strings.TrimSpace(string(r.Body)) != `{"repositories":[]}` {
			t.Errorf("past the end: %d %s", r.Status, r.Body)
		}
		for _, bad := range []string{"0", "-1", "abc", "1.5", "99999999999999999999"} {
			wantError(t, f.do(t, http.MethodGet, "/keppel/v1/accounts/test/repositories?limit="+bad, f.t1Viewer, ""), http.StatusBadRequest, "BAD_REQUEST")
		}
	})

	t.Run("not visible", func(t *testing.T) {
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/accounts/test/repositories", f.t2Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/accounts/nosuch/repositories", f.admin, ""), http.StatusNotFound, "NOT_FOUND")
	})

	t.Run("delete", func(t *testing.T) {
		// A repository with manifests is refused.
		r := f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/app", f.t1Admin, "")
		wantError(t, r, http.StatusConflict, "CONFLICT")
		if msg := epErrorMessage(r); !strings.Contains(msg, "manifests") {
			t.Errorf("409 message %q does not say why", msg)
		}
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/empty", f.t1Viewer, ""), http.StatusForbidden, "DENIED")
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/empty", f.t2Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/other/repositories/app", f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/nosuch", f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/Bad..Name", f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
		r = f.do(t, http.MethodGet, "/keppel/v1/accounts/test/repositories/empty", f.t1Admin, "")
		wantError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
		if r.Header.Get("Allow") != "DELETE" {
			t.Errorf("Allow = %q", r.Header.Get("Allow"))
		}

		if r := f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/empty", f.t1Admin, ""); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE empty: %d %s", r.Status, r.Body)
		}
		if got := names(list(t, f.admin, "")); !slices.Equal(got, []string{"app", "lib", "team/tool"}) {
			t.Errorf("after DELETE: %v", got)
		}
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/empty", f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")

		// A nested repository, once its manifest is deleted.
		lst := f.do(t, http.MethodGet, "/keppel/v1/accounts/test/repositories/team/tool/_manifests", f.t1Admin, "")
		var ms epManifestList
		epDecode(t, lst, http.StatusOK, &ms)
		if len(ms.Manifests) != 1 {
			t.Fatalf("team/tool manifests: %s", lst.Body)
		}
		if r := f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/team/tool/_manifests/"+ms.Manifests[0].Digest, f.t1Admin, ""); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE manifest: %d %s", r.Status, r.Body)
		}
		if r := f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/team/tool", f.admin, ""); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE team/tool: %d %s", r.Status, r.Body)
		}
		if got := names(list(t, f.admin, "")); !slices.Equal(got, []string{"app", "lib"}) {
			t.Errorf("after DELETE: %v", got)
		}
		// The other tenant's repository is untouched.
		if r := f.s.Do(t, http.MethodGet, "/v2/other/app/manifests/x", f.admin, nil, nil); r.Status != http.StatusOK {
			t.Errorf("other/app: %d", r.Status)
		}
	})
}

type epManifest struct {
	Digest              string  `json:"digest"`
	MediaType           string  `json:"media_type"`
	SizeBytes           int64   `json:"size_bytes"`
	PushedAt            int64   `json:"pushed_at"`
	LastPulledAt        *int64  `json:"last_pulled_at"`
	VulnerabilityStatus *string `json:"vulnerability_status"`
	ValidationError     string  `json:"validation_error_message"`
	GCStatus            *struct {
		Action string `json:"action"`
		Reason string `json:"reason"`
	} `json:"gc_status"`
	Tags []struct {
		Name     string `json:"name"`
		PushedAt int64  `json:"pushed_at"`
	} `json:"tags"`
}

type epManifestList struct {
	Manifests []epManifest `json:"manifests"`
	Truncated bool         `json:"truncated"`
}

func (m epManifest) tagNames() []string {
	var out []string
	for _, t := range m.Tags {
		out = append(out, t.Name)
	}
	return out
}

func TestEndpointManifests(t *testing.T) {
	t.Parallel()
	f := newEPFixture(t, "test/app", "other/app")
	v1 := epPushImage(t, f.s, f.admin, "test/app", "v1", "a")
	epTag(t, f.s, f.admin, "test/app", "latest", v1)
	v2 := epPushImage(t, f.s, f.admin, "test/app", "v2", "b")
	untagged := epPushImage(t, f.s, f.admin, "test/app", "", "c")
	// other/app has the same image as test/app:v2, and one of its own.
	epPushImage(t, f.s, f.admin, "other/app", "v1", "b")
	other := epPushImage(t, f.s, f.admin, "other/app", "only", "z")
	images := map[string]epImage{v1.digest: v1, v2.digest: v2, untagged.digest: untagged}
	wantTags := map[string][]string{v1.digest: {"latest", "v1"}, v2.digest: {"v2"}, untagged.digest: nil}
	sorted := []string{v1.digest, v2.digest, untagged.digest}
	slices.Sort(sorted)
	base := "/keppel/v1/accounts/test/repositories/app"

	list := func(t *testing.T, token, query string) (epManifestList, test.Response) {
		t.Helper()
		r := f.do(t, http.MethodGet, base+"/_manifests"+query, token, "")
		var out epManifestList
		epDecode(t, r, http.StatusOK, &out)
		return out, r
	}
	digests := func(l epManifestList) []string {
		var out []string
		for _, m := range l.Manifests {
			out = append(out, m.Digest)
		}
		return out
	}

	t.Run("list", func(t *testing.T) {
		l, r := list(t, f.t1Viewer, "")
		if got := digests(l); !slices.Equal(got, sorted) || l.Truncated {
			t.Fatalf("manifests = %v, want %v: %s", got, sorted, r.Body)
		}
		for _, m := range l.Manifests {
			img := images[m.Digest]
			if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.SizeBytes != int64(img.size) {
				t.Errorf("%s: media_type %q size_bytes %d, want %d", m.Digest, m.MediaType, m.SizeBytes, img.size)
			}
			epRecent(t, "pushed_at", m.PushedAt)
			if m.VulnerabilityStatus == nil || *m.VulnerabilityStatus == "" {
				t.Errorf("%s has no vulnerability_status", m.Digest)
			}
			if got := m.tagNames(); !slices.Equal(got, wantTags[m.Digest]) {
				t.Errorf("%s: tags %v, want %v", m.Digest, got, wantTags[m.Digest])
			}
			for _, tag := range m.Tags {
				epRecent(t, "tag pushed_at", tag.PushedAt)
			}
		}
		// Every manifest object has the keys that SAP Keppel's clients read.
		var raw struct {
			Manifests []map[string]json.RawMessage `json:"manifests"`
		}
		_ = json.Unmarshal(r.Body, &raw)
		for _, m := range raw.Manifests {
			for _, key := range []string{"digest", "media_type", "size_bytes", "pushed_at", "last_pulled_at", "vulnerability_status"} {
				if _, ok := m[key]; !ok {
					t.Errorf("manifest %s has no %q", m["digest"], key)
				}
			}
		}
		if l, _ := list(t, f.admin, ""); len(l.Manifests) != 3 {
			t.Errorf("admin sees %d manifests", len(l.Manifests))
		}
	})

	t.Run("gc status", func(t *testing.T) {
		repo, err := f.s.Store().GetRepository(t.Context(), "test", "app")
		if err != nil {
			t.Fatal(err)
		}
		status := `{"action":"protect","reason":"is referenced by an index"}`
		if err := f.s.Store().SetGCStatuses(t.Context(), repo.ID, map[string]string{untagged.digest: status}); err != nil {
			t.Fatal(err)
		}
		l, r := list(t, f.t1Viewer, "")
		for _, m := range l.Manifests {
			switch {
			case m.Digest == untagged.digest && (m.GCStatus == nil || m.GCStatus.Action != "protect" || m.GCStatus.Reason != "is referenced by an index"):
				t.Errorf("gc_status of %s: %s", m.Digest, r.Body)
			case m.Digest != untagged.digest && m.GCStatus != nil:
				t.Errorf("%s has a gc_status without a decision: %s", m.Digest, r.Body)
			}
		}
		if err := f.s.Store().SetGCStatuses(t.Context(), repo.ID, map[string]string{untagged.digest: ""}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("corrupt blob", func(t *testing.T) {
		var layer string
		for d := range untagged.blobs {
			layer = d
		}
		// A blob that only the untagged image has.
		for _, other := range []epImage{v1, v2} {
			if _, shared := other.blobs[layer]; shared {
				t.Skip("the images share their blobs")
			}
		}
		repo, err := f.s.Store().GetRepository(t.Context(), "test", "app")
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.s.Store().GetBlobInRepository(t.Context(), repo.ID, layer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Store().RecordBlobValidation(t.Context(), b.ID, time.Now(), "the content does not match the digest"); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = f.s.Store().RecordBlobValidation(t.Context(), b.ID, time.Now(), "") }()
		l, r := list(t, f.t1Viewer, "")
		for _, m := range l.Manifests {
			want := ""
			if m.Digest == untagged.digest {
				want = "the stored content of blob " + layer + ": the content does not match the digest"
			}
			if m.ValidationError != want {
				t.Errorf("%s: validation_error_message %q, want %q (%s)", m.Digest, m.ValidationError, want, r.Body)
			}
		}
	})

	t.Run("pagination", func(t *testing.T) {
		p1, _ := list(t, f.t1Viewer, "?limit=2")
		if got := digests(p1); !slices.Equal(got, sorted[:2]) || !p1.Truncated {
			t.Errorf("page 1 = %v (truncated %v)", got, p1.Truncated)
		}
		p2, r := list(t, f.t1Viewer, "?limit=2&marker="+sorted[1])
		if got := digests(p2); !slices.Equal(got, sorted[2:]) || p2.Truncated || strings.Contains(string(r.Body), "truncated") {
			t.Errorf("page 2 = %s", r.Body)
		}
		for _, bad := range []string{"0", "-3", "x"} {
			wantError(t, f.do(t, http.MethodGet, base+"/_manifests?limit="+bad, f.t1Viewer, ""), http.StatusBadRequest, "BAD_REQUEST")
		}
	})

	t.Run("refused", func(t *testing.T) {
		wantError(t, f.do(t, http.MethodGet, base+"/_manifests", f.t2Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/accounts/test/repositories/nosuch/_manifests", f.admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/accounts/nosuch/repositories/app/_manifests", f.admin, ""), http.StatusNotFound, "NOT_FOUND")
		r := f.do(t, http.MethodPost, base+"/_manifests", f.admin, "")
		wantError(t, r, http.StatusMethodNotAllowed, "UNSUPPORTED")
		if r.Header.Get("Allow") != "GET" {
			t.Errorf("Allow = %q", r.Header.Get("Allow"))
		}

		// Deleting needs the admin role in the tenant; other tenants see nothing.
		for _, path := range []string{base + "/_manifests/" + v2.digest, base + "/_tags/v2"} {
			wantError(t, f.do(t, http.MethodDelete, path, f.t1Viewer, ""), http.StatusForbidden, "DENIED")
			r := f.do(t, http.MethodDelete, path, f.t2Admin, "")
			wantError(t, r, http.StatusNotFound, "NOT_FOUND")
		}
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/other/repositories/app/_manifests/"+other.digest, f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodDelete, "/keppel/v1/accounts/other/repositories/app/_tags/v1", f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")

		// Bad references.
		for _, bad := range []string{"sha256:xyz", "sha256:" + strings.Repeat("a", 63), "md5:0123456789abcdef0123456789abcdef", "sha256:" + strings.ToUpper(v2.digest[7:])} {
			r := f.do(t, http.MethodDelete, base+"/_manifests/"+bad, f.t1Admin, "")
			wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		}
		for _, bad := range []string{strings.Repeat("t", 129), ".hidden", v2.digest} {
			wantError(t, f.do(t, http.MethodDelete, base+"/_tags/"+bad, f.t1Admin, ""), http.StatusBadRequest, "BAD_REQUEST")
		}
		// Unknown ones.
		wantError(t, f.do(t, http.MethodDelete, base+"/_manifests/"+digest.FromString("nothing").String(), f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodDelete, base+"/_tags/nosuchtag", f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
		// The digest of the other tenant's manifest is not known here.
		wantError(t, f.do(t, http.MethodDelete, base+"/_manifests/"+other.digest, f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")

		if l, _ := list(t, f.admin, ""); len(l.Manifests) != 3 {
			t.Errorf("refused deletes removed manifests: %v", digests(l))
		}
	})

	t.Run("delete tag", func(t *testing.T) {
		if r := f.do(t, http.MethodDelete, base+"/_tags/latest", f.t1Admin, ""); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE tag: %d %s", r.Status, r.Body)
		}
		l, _ := list(t, f.admin, "")
		for _, m := range l.Manifests {
			if m.Digest == v1.digest && !slices.Equal(m.tagNames(), []string{"v1"}) {
				t.Errorf("v1 has tags %v after deleting latest", m.tagNames())
			}
		}
		if r := f.s.Do(t, http.MethodGet, "/v2/test/app/manifests/latest", f.admin, nil, nil); r.Status != http.StatusNotFound {
			t.Errorf("deleted tag still resolves: %d", r.Status)
		}
		if r := f.s.Do(t, http.MethodGet, "/v2/test/app/manifests/"+v1.digest, f.admin, nil, nil); r.Status != http.StatusOK {
			t.Errorf("the manifest went with the tag: %d", r.Status)
		}
		wantError(t, f.do(t, http.MethodDelete, base+"/_tags/latest", f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
	})

	t.Run("delete manifest", func(t *testing.T) {
		if r := f.do(t, http.MethodDelete, base+"/_manifests/"+v2.digest, f.t1Admin, ""); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE manifest: %d %s", r.Status, r.Body)
		}
		l, _ := list(t, f.admin, "")
		if slices.Contains(digests(l), v2.digest) || len(l.Manifests) != 2 {
			t.Errorf("after DELETE: %v", digests(l))
		}
		for _, ref := range []string{"v2", v2.digest} {
			if r := f.s.Do(t, http.MethodGet, "/v2/test/app/manifests/"+ref, f.admin, nil, nil); r.Status != http.StatusNotFound {
				t.Errorf("deleted manifest still resolves as %s: %d", ref, r.Status)
			}
		}
		wantError(t, f.do(t, http.MethodDelete, base+"/_manifests/"+v2.digest, f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
		// The same manifest in the other tenant is untouched.
		if r := f.s.Do(t, http.MethodGet, "/v2/other/app/manifests/"+v2.digest, f.admin, nil, nil); r.Status != http.StatusOK {
			t.Errorf("other/app: %d", r.Status)
		}
	})

	t.Run("delete manifest referenced by an index", func(t *testing.T) {
		idx := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + untagged.digest + `","size":` + epItoa(untagged.size) + `}]}`)
		r := f.s.Do(t, http.MethodPut, "/v2/test/app/manifests/index", f.admin,
			http.Header{"Content-Type": {"application/vnd.oci.image.index.v1+json"}}, bytes.NewReader(idx))
		if r.Status != http.StatusCreated {
			t.Fatalf("index push: %d %s", r.Status, r.Body)
		}
		r = f.do(t, http.MethodDelete, base+"/_manifests/"+untagged.digest, f.t1Admin, "")
		wantError(t, r, http.StatusConflict, "DENIED")
		if r := f.s.Do(t, http.MethodGet, "/v2/test/app/manifests/"+untagged.digest, f.admin, nil, nil); r.Status != http.StatusOK {
			t.Errorf("refused delete removed the manifest: %d", r.Status)
		}
	})
}

func epItoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

type epQuotaValue struct {
	Quota int64 `json:"quota"`
	Usage int64 `json:"usage"`
}

type epQuota struct {
	Manifests *epQuotaValue `json:"manifests"`
	Bytes     *epQuotaValue `json:"bytes"`
	IsDefault bool          `json:"is_default"`
}

func TestEndpointQuotas(t *testing.T) {
	t.Parallel()
	f := newEPFixture(t, "test/app", "test/lib", "other/app")
	a := epPushImage(t, f.s, f.admin, "test/app", "v1", "a")
	b := epPushImage(t, f.s, f.admin, "test/lib", "v1", "b")
	epPushImage(t, f.s, f.admin, "other/app", "v1", "c")
	usedBytes := int64(0)
	for _, img := range []epImage{a, b} {
		for _, n := range img.blobs {
			usedBytes += n
		}
	}
	get := func(t *testing.T, token, tenant string) (epQuota, test.Response) {
		t.Helper()
		r := f.do(t, http.MethodGet, "/keppel/v1/quotas/"+tenant, token, "")
		var q epQuota
		epDecode(t, r, http.StatusOK, &q)
		if q.Manifests == nil || q.Bytes == nil {
			t.Fatalf("quota without manifests or bytes: %s", r.Body)
		}
		return q, r
	}

	t.Run("default", func(t *testing.T) {
		for _, token := range []string{f.admin, f.t1Admin, f.t1Viewer} {
			q, r := get(t, token, "tenant1")
			want := epQuota{Manifests: &epQuotaValue{-1, 2}, Bytes: &epQuotaValue{-1, usedBytes}, IsDefault: true}
			if *q.Manifests != *want.Manifests || *q.Bytes != *want.Bytes || !q.IsDefault {
				t.Errorf("GET quota = %s, want manifests %+v, bytes %+v, is_default", r.Body, *want.Manifests, *want.Bytes)
			}
		}
		// A tenant without accounts has the default and no usage.
		if q, r := get(t, f.admin, "tenant9"); *q.Manifests != (epQuotaValue{-1, 0}) || *q.Bytes != (epQuotaValue{-1, 0}) || !q.IsDefault {
			t.Errorf("GET quota of an empty tenant = %s", r.Body)
		}
	})

	t.Run("refused", func(t *testing.T) {
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/quotas/tenant1", f.t2Admin, ""), http.StatusNotFound, "NOT_FOUND")
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/quotas/tenant9", f.t1Admin, ""), http.StatusNotFound, "NOT_FOUND")
		for _, bad := range []string{"a%20b", strings.Repeat("t", 129), "a%2Fb", "t%C3%BC"} {
			wantError(t, f.do(t, http.MethodGet, "/keppel/v1/quotas/"+bad, f.admin, ""), http.StatusBadRequest, "BAD_REQUEST")
			wantError(t, f.do(t, http.MethodPut, "/keppel/v1/quotas/"+bad, f.admin, `{"manifests":{"quota":1}}`), http.StatusBadRequest, "BAD_REQUEST")
		}
		// Only server admins change quotas.
		body := `{"manifests":{"quota":100}}`
		r := f.do(t, http.MethodPut, "/keppel/v1/quotas/tenant1", f.t1Admin, body)
		wantError(t, r, http.StatusForbidden, "DENIED")
		wantError(t, f.do(t, http.MethodPut, "/keppel/v1/quotas/tenant1", f.t1Viewer, body), http.StatusForbidden, "DENIED")
		wantError(t, f.do(t, http.MethodPut, "/keppel/v1/quotas/tenant1", f.t2Admin, body), http.StatusNotFound, "NOT_FOUND")
		if q, r := get(t, f.admin, "tenant1"); !q.IsDefault {
			t.Errorf("refused PUTs changed the quota: %s", r.Body)
		}
	})

	t.Run("set", func(t *testing.T) {
		r := f.do(t, http.MethodPut, "/keppel/v1/quotas/tenant1", f.admin, `{"manifests":{"quota":10},"bytes":{"quota":1000000}}`)
		var q epQuota
		epDecode(t, r, http.StatusOK, &q)
		if *q.Manifests != (epQuotaValue{10, 2}) || *q.Bytes != (epQuotaValue{1000000, usedBytes}) || q.IsDefault {
			t.Errorf("PUT answer = %s", r.Body)
		}
		if q, r := get(t, f.t1Viewer, "tenant1"); *q.Manifests != (epQuotaValue{10, 2}) || q.Bytes.Quota != 1000000 || q.IsDefault ||
			strings.Contains(string(r.Body), "is_default") {
			t.Errorf("GET after PUT = %s", r.Body)
		}
		// Fields left out keep their value.
		r = f.do(t, http.MethodPut, "/keppel/v1/quotas/tenant1", f.admin, `{"bytes":{"quota":-1}}`)
		epDecode(t, r, http.StatusOK, &q)
		if q.Manifests.Quota != 10 || q.Bytes.Quota != -1 {
			t.Errorf("partial PUT = %s", r.Body)
		}
		// Zero is a valid quota.
		r = f.do(t, http.MethodPut, "/keppel/v1/quotas/tenant9", f.admin, `{"manifests":{"quota":0},"bytes":{"quota":0}}`)
		epDecode(t, r, http.StatusOK, &q)
		if *q.Manifests != (epQuotaValue{0, 0}) || *q.Bytes != (epQuotaValue{0, 0}) {
			t.Errorf("zero quota = %s", r.Body)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		_, before := get(t, f.admin, "tenant1")
		for _, body := range []string{
			`{"manifests":{"quota":-2}}`,
			`{"bytes":{"quota":-100}}`,
			`{"manifests":{"quota":"ten"}}`,
			`{"manifests":{"quota":1.5}}`,
			`{"manifests":{"limit":3}}`,
			`{"manifests":{"quota":3},"colour":"red"}`,
			`{"manifests":`,
			`[1,2]`,
		} {
			r := f.do(t, http.MethodPut, "/keppel/v1/quotas/tenant1", f.admin, body)
			wantError(t, r, http.StatusBadRequest, "BAD_REQUEST")
		}
		if _, after := get(t, f.admin, "tenant1"); !bytes.Equal(before.Body, after.Body) {
			t.Errorf("bad input changed the quota:\nbefore %s\nafter  %s", before.Body, after.Body)
		}
	})

	t.Run("usage follows pushes and deletes", func(t *testing.T) {
		c := epPushImage(t, f.s, f.admin, "test/app", "v2", "c")
		q, r := get(t, f.t1Admin, "tenant1")
		if q.Manifests.Usage != 3 {
			t.Errorf("usage after a push = %s", r.Body)
		}
		// Only tenant1's content counts: other/app has the same layer "c".
		if q.Bytes.Usage != usedBytes+epSum(c.blobs) {
			t.Errorf("bytes usage = %d, want %d", q.Bytes.Usage, usedBytes+epSum(c.blobs))
		}
		if r := f.do(t, http.MethodDelete, "/keppel/v1/accounts/test/repositories/app/_manifests/"+c.digest, f.t1Admin, ""); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", r.Status, r.Body)
		}
		if q, r := get(t, f.t1Admin, "tenant1"); q.Manifests.Usage != 2 {
			t.Errorf("usage after a delete = %s", r.Body)
		}
	})
}

func epSum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// epEvent is the wire form of an audit event.
type epEvent struct {
	ID           int64           `json:"id"`
	Time         time.Time       `json:"time"`
	Actor        string          `json:"actor"`
	RemoteAddr   string          `json:"remote_addr"`
	Action       string          `json:"action"`
	AuthTenantID string          `json:"auth_tenant_id"`
	Account      string          `json:"account"`
	Target       string          `json:"target"`
	Outcome      string          `json:"outcome"`
	Reason       string          `json:"reason"`
	Details      json.RawMessage `json:"details"`
}

func TestEndpointAudit(t *testing.T) {
	t.Parallel()
	f := newEPFixture(t)
	// Events in both tenants: the fixture created "test" and "other" as admin.
	if r := f.do(t, http.MethodPut, "/keppel/v1/accounts/t1-more", f.t1Admin, `{"account":{"auth_tenant_id":"tenant1"}}`); r.Status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	if r := f.do(t, http.MethodPut, "/keppel/v1/quotas/tenant2", f.admin, `{"manifests":{"quota":5}}`); r.Status != http.StatusOK {
		t.Fatalf("PUT quota: %d %s", r.Status, r.Body)
	}
	list := func(t *testing.T, token, query string) []epEvent {
		t.Helper()
		var out struct {
			Events []epEvent `json:"events"`
		}
		epDecode(t, f.do(t, http.MethodGet, "/keppel/v1/audit"+query, token, ""), http.StatusOK, &out)
		return out.Events
	}

	t.Run("admin sees all, newest first", func(t *testing.T) {
		events := list(t, f.admin, "")
		var got []string
		for _, e := range events {
			got = append(got, e.Action+" "+e.Actor+" "+e.AuthTenantID+"/"+e.Account)
		}
		// The accounts of the fixture come in map order.
		want := []string{"quota.update admin tenant2/", "account.create ep-t1-admin tenant1/t1-more"}
		if len(got) != 4 || !slices.Equal(got[:2], want) {
			t.Fatalf("events = %q", got)
		}
		for i, e := range events {
			if i > 0 && e.ID >= events[i-1].ID {
				t.Errorf("events are not newest first: %d after %d", e.ID, events[i-1].ID)
			}
			if e.Outcome != "success" || e.RemoteAddr != "127.0.0.1" || e.Time.IsZero() {
				t.Errorf("event %+v", e)
			}
			epRecent(t, "time", e.Time.Unix())
		}
		if string(events[0].Details) != `{"bytes":-1,"manifests":5}` {
			t.Errorf("quota.update details = %s", events[0].Details)
		}
	})

	t.Run("filters and paging", func(t *testing.T) {
		if e := list(t, f.admin, "?action=account.create"); len(e) != 3 {
			t.Errorf("action filter: %d events", len(e))
		}
		if e := list(t, f.admin, "?actor=ep-t1-admin"); len(e) != 1 || e[0].Account != "t1-more" {
			t.Errorf("actor filter: %+v", e)
		}
		if e := list(t, f.admin, "?account=other"); len(e) != 1 || e[0].Action != "account.create" {
			t.Errorf("account filter: %+v", e)
		}
		if e := list(t, f.admin, "?auth_tenant_id=tenant2&action=quota.update"); len(e) != 1 {
			t.Errorf("tenant and action filter: %+v", e)
		}
		all := list(t, f.admin, "")
		page := list(t, f.admin, "?limit=2")
		if len(page) != 2 || page[0].ID != all[0].ID || page[1].ID != all[1].ID {
			t.Fatalf("limit=2: %+v", page)
		}
		next := list(t, f.admin, "?limit=2&before_id="+epItoa(int(page[1].ID)))
		if len(next) != 2 || next[0].ID != all[2].ID || next[1].ID != all[3].ID {
			t.Errorf("second page: %+v", next)
		}
		if e := list(t, f.admin, "?before_id="+epItoa(int(all[3].ID))); len(e) != 0 {
			t.Errorf("before the first event: %+v", e)
		}
		since := all[0].Time.Add(-time.Minute).Format(time.RFC3339)
		if e := list(t, f.admin, "?since="+url.QueryEscape(since)); len(e) != 4 {
			t.Errorf("since: %d events", len(e))
		}
		if e := list(t, f.admin, "?until="+url.QueryEscape(since)); len(e) != 0 {
			t.Errorf("until: %d events", len(e))
		}
	})

	t.Run("tenant admins see their tenant only", func(t *testing.T) {
		events := list(t, f.t1Admin, "?auth_tenant_id=tenant1")
		if len(events) != 2 {
			t.Errorf("tenant1 admin sees %d events", len(events))
		}
		for _, e := range events {
			if e.AuthTenantID != "tenant1" {
				t.Errorf("tenant1 admin sees %+v", e)
			}
		}
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/audit", f.t1Admin, ""), http.StatusForbidden, "DENIED")
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/audit?auth_tenant_id=tenant2", f.t1Admin, ""), http.StatusForbidden, "DENIED")
		wantError(t, f.do(t, http.MethodGet, "/keppel/v1/audit?auth_tenant_id=tenant1", f.t1Viewer, ""), http.StatusForbidden, "DENIED")
	})

	t.Run("bad input", func(t *testing.T) {
		for _, q := range []string{"limit=0", "limit=-1", "limit=abc", "before_id=0", "before_id=x", "since=yesterday", "until=2024-01-01"} {
			wantError(t, f.do(t, http.MethodGet, "/keppel/v1/audit?"+q, f.admin, ""), http.StatusBadRequest, "BAD_REQUEST")
		}
	})
}
