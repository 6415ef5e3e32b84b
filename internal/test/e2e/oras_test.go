package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"

	"keppel/internal/test"
)

func orasRepo(t *testing.T, s *test.Server, name string) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(s.Host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	repo.Client = &auth.Client{
		Client: retry.DefaultClient,
		Cache:  auth.NewCache(),
		Credential: auth.StaticCredential(s.Host, auth.Credential{
			Username: "admin",
			Password: test.AdminPassword,
		}),
	}
	return repo
}

func TestArtifactWithSubjectAndReferrers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := test.NewServer(t, test.Options{})
	repo := orasRepo(t, s, "test/app")
	store := memory.New()

	// The subject: a small image.
	layer := content.NewDescriptorFromBytes("application/vnd.oci.image.layer.v1.tar", []byte("layer content"))
	if err := store.Push(ctx, layer, bytesReader("layer content")); err != nil {
		t.Fatal(err)
	}
	subject, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "application/vnd.example.app",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Tag(ctx, subject, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := oras.Copy(ctx, store, "v1", repo, "v1", oras.DefaultCopyOptions); err != nil {
		t.Fatalf("push subject: %v", err)
	}

	// Two artifacts that refer to it, of different types.
	for _, artifactType := range []string{"application/vnd.example.sbom", "application/vnd.example.signature"} {
		blob := []byte("payload of " + artifactType)
		desc := content.NewDescriptorFromBytes("application/octet-stream", blob)
		if err := store.Push(ctx, desc, bytesReader(string(blob))); err != nil {
			t.Fatal(err)
		}
		artifact, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, artifactType, oras.PackManifestOptions{
			Subject:             &subject,
			Layers:              []ocispec.Descriptor{desc},
			ManifestAnnotations: map[string]string{"org.example.kind": artifactType},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := oras.CopyGraph(ctx, store, repo, artifact, oras.DefaultCopyGraphOptions); err != nil {
			t.Fatalf("push artifact: %v", err)
		}
	}

	var all []ocispec.Descriptor
	if err := repo.Referrers(ctx, subject, "", func(refs []ocispec.Descriptor) error {
		all = append(all, refs...)
		return nil
	}); err != nil {
		t.Fatalf("referrers: %v", err)
	}
	if len(all) != 2 {
		t.Fatalf("got %d referrers, want 2: %+v", len(all), all)
	}
	var filtered []ocispec.Descriptor
	if err := repo.Referrers(ctx, subject, "application/vnd.example.sbom", func(refs []ocispec.Descriptor) error {
		filtered = append(filtered, refs...)
		return nil
	}); err != nil {
		t.Fatalf("filtered referrers: %v", err)
	}
	if len(filtered) != 1 || filtered[0].ArtifactType != "application/vnd.example.sbom" ||
		filtered[0].Annotations["org.example.kind"] != "application/vnd.example.sbom" {
		t.Fatalf("filtered referrers: %+v", filtered)
	}

	// The referrers API is used, not the tag schema fallback.
	tags := s.Do(t, "GET", "/v2/test/app/tags/list", s.Token(t, "repository:test/app:pull"), nil, nil)
	if string(tags.Body) != `{"name":"test/app","tags":["v1"]}` {
		t.Fatalf("unexpected tags (fallback tag schema used?): %s", tags.Body)
	}
}

// TestReferrersPagination pages through the referrers of one subject with n
// and the Link header, with and without an artifactType filter.
func TestReferrersPagination(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{})
	token := s.Token(t, "repository:test/refs:pull,push")
	empty := pushBlob(t, s, "test/refs", token, []byte("{}"))
	subjectManifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + empty.String() + `","size":2},"layers":[]}`)
	putManifest(t, s, "test/refs", token, "subject", subjectManifest)
	subject := digestOf(subjectManifest)
	for i := 0; i < 7; i++ {
		artifactType := "application/vnd.example.even"
		if i%2 == 1 {
			artifactType = "application/vnd.example.odd"
		}
		m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"` + artifactType + `",` +
			`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + empty.String() + `","size":2},"layers":[],` +
			`"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + subject + `","size":` + itoa(len(subjectManifest)) + `},` +
			`"annotations":{"i":"` + itoa(i) + `"}}`)
		putManifest(t, s, "test/refs", token, digestOf(m), m)
	}

	for _, c := range []struct {
		query string
		want  int
	}{{"n=3", 7}, {"n=2&artifactType=application/vnd.example.odd", 3}, {"n=10", 7}} {
		seen := map[string]bool{}
		path := "/v2/test/refs/referrers/" + subject + "?" + c.query
		pages := 0
		for path != "" && pages < 10 {
			pages++
			resp := s.Do(t, "GET", path, token, nil, nil)
			if resp.Status != 200 {
				t.Fatalf("%s: %d %s", path, resp.Status, resp.Body)
			}
			var idx struct {
				Manifests []struct{ Digest string } `json:"manifests"`
			}
			if err := json.Unmarshal(resp.Body, &idx); err != nil {
				t.Fatal(err)
			}
			for _, m := range idx.Manifests {
				if seen[m.Digest] {
					t.Fatalf("%s: %s listed twice", c.query, m.Digest)
				}
				seen[m.Digest] = true
			}
			path = ""
			if link := resp.Header.Get("Link"); link != "" {
				path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			}
		}
		if len(seen) != c.want {
			t.Errorf("%s: %d referrers over %d pages, want %d", c.query, len(seen), pages, c.want)
		}
	}
}

func putManifest(t *testing.T, s *test.Server, repo, token, ref string, m []byte) {
	t.Helper()
	resp := s.Do(t, "PUT", "/v2/"+repo+"/manifests/"+ref, token,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, bytes.NewReader(m))
	if resp.Status != http.StatusCreated {
		t.Fatalf("push %s: %d %s", ref, resp.Status, resp.Body)
	}
}

func digestOf(b []byte) string { return digest.FromBytes(b).String() }
