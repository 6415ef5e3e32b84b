package upstream_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"keppel/internal/upstream"
)

const manifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`

// fakeRegistry serves one repository "library/app" with the manifest under
// the tag "v1", the blob "{}", and 2500 tags in pages of 1000. auth wraps
// every /v2/ request.
func fakeRegistry(t *testing.T, auth func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	t.Helper()
	md := digest.FromString(manifest)
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if !auth(w, r) {
			return
		}
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case r.URL.Path == "/v2/library/app/manifests/v1" || r.URL.Path == "/v2/library/app/manifests/"+md.String():
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", md.String())
			w.Header().Set("Content-Length", fmt.Sprint(len(manifest)))
			if r.Method == http.MethodGet {
				_, _ = io.WriteString(w, manifest)
			}
		case r.URL.Path == "/v2/library/app/manifests/liar":
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			_, _ = io.WriteString(w, manifest+" ")
		case r.URL.Path == "/v2/library/app/blobs/"+digest.FromString("{}").String():
			_, _ = io.WriteString(w, "{}")
		case r.URL.Path == "/v2/library/app/tags/list":
			last := r.URL.Query().Get("last")
			start := 0
			if last != "" {
				_, _ = fmt.Sscanf(last, "t%05d", &start)
				start++
			}
			var tags []string
			for i := start; i < 2500 && len(tags) < 1000; i++ {
				tags = append(tags, fmt.Sprintf("t%05d", i))
			}
			if start+len(tags) < 2500 {
				w.Header().Set("Link", fmt.Sprintf(`</v2/library/app/tags/list?n=1000&last=%s>; rel="next"`, tags[len(tags)-1]))
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"name": "library/app", "tags": tags})
		case r.URL.Path == "/v2/library/limited/manifests/v1":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"nope"}]}`)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// exercise runs the client's operations against the fake registry.
func exercise(t *testing.T, r *upstream.Registry, repo string) {
	t.Helper()
	ctx := t.Context()
	m, err := r.GetManifest(ctx, repo, "v1")
	if err != nil {
		t.Fatalf("GetManifest: %v", err)
	}
	if string(m.Content) != manifest || m.Digest != digest.FromString(manifest) || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("GetManifest: %+v", m)
	}
	if _, err := r.GetManifest(ctx, repo, m.Digest.String()); err != nil {
		t.Fatalf("GetManifest by digest: %v", err)
	}
	desc, err := r.HeadManifest(ctx, repo, "v1")
	if err != nil || desc.Digest != m.Digest || desc.Size != int64(len(manifest)) {
		t.Fatalf("HeadManifest: %+v, %v", desc, err)
	}
	rc, size, err := r.GetBlob(ctx, repo, digest.FromString("{}"))
	if err != nil {
		t.Fatalf("GetBlob: %v", err)
	}
	content, _ := io.ReadAll(rc)
	rc.Close()
	if string(content) != "{}" || size != 2 {
		t.Fatalf("GetBlob: %q, %d", content, size)
	}
	tags, err := r.ListTags(ctx, repo)
	if err != nil || len(tags) != 2500 || tags[0] != "t00000" || tags[2499] != "t02499" {
		t.Fatalf("ListTags: %d tags, %v", len(tags), err)
	}
	_, err = r.GetManifest(ctx, repo, "missing")
	var ue *upstream.Error
	if !errors.As(err, &ue) || !ue.NotFound() || ue.Code != "MANIFEST_UNKNOWN" {
		t.Fatalf("GetManifest(missing): %v", err)
	}
}

func TestAnonymous(t *testing.T) {
	srv := fakeRegistry(t, func(http.ResponseWriter, *http.Request) bool { return true })
	r, err := upstream.New(srv.URL, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, r, "library/app")

	// a path in the URL is a prefix of the repository names
	prefixed, err := upstream.New(srv.URL+"/library", "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, prefixed, "app")
}

func TestBasicAuth(t *testing.T) {
	var refused atomic.Int32
	srv := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "secret" {
			return true
		}
		refused.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return false
	})
	r, err := upstream.New(srv.URL, "alice", "secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, r, "library/app")

	wrong, err := upstream.New(srv.URL, "alice", "wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.GetManifest(t.Context(), "library/app", "v1")
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestBearerTokens(t *testing.T) {
	var tokenRequests atomic.Int32
	var realm string
	srv := fakeRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "Bearer tok-repository:library/app:pull" {
			return true
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s",service="fake"`, realm))
		w.WriteHeader(http.StatusUnauthorized)
		return false
	})
	// The token endpoint is on the registry's host (an upstream on a
	// private address may not send clients elsewhere).
	srv.Config.Handler.(*http.ServeMux).HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		u, p, ok := r.BasicAuth()
		if !ok || u != "alice" || p != "secret" || r.URL.Query().Get("service") != "fake" ||
			!strings.HasPrefix(r.URL.Query().Get("scope"), "repository:library/app:pull") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"token": "tok-" + r.URL.Query().Get("scope"), "expires_in": 300})
	})
	realm = srv.URL + "/token"
	r, err := upstream.New(srv.URL, "alice", "secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, r, "library/app")
	if n := tokenRequests.Load(); n != 1 {
		t.Fatalf("token requests: %d, want 1 (the token is reused)", n)
	}
}

func TestErrors(t *testing.T) {
	srv := fakeRegistry(t, func(http.ResponseWriter, *http.Request) bool { return true })
	r, err := upstream.New(srv.URL, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.GetManifest(t.Context(), "library/limited", "v1")
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != http.StatusTooManyRequests || ue.RetryAfter != "30" || ue.Code != "TOOMANYREQUESTS" {
		t.Fatalf("429: %#v", err)
	}
	// a manifest by digest is checked against the digest
	want := digest.FromString(manifest + "x")
	if _, err := r.GetManifest(t.Context(), "library/app", want.String()); err == nil {
		t.Fatal("a manifest that does not match its digest was accepted")
	}
	// an unreachable registry
	srv.Close()
	if _, err := r.GetManifest(t.Context(), "other/repo", "v1"); !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("unreachable: %v", err)
	}
	if _, err := upstream.New("http://bad host", "", "", nil); err == nil {
		t.Fatal("a malformed URL was accepted")
	}
}
