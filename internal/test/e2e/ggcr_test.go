package e2e

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"keppel/internal/test"
)

func adminAuth() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword})
}

func ref(t *testing.T, s *test.Server, repoAndTag string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s.Host+"/"+repoAndTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPushPullImage(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{})
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, s, "test/hello/world:v1")
	if err := remote.Write(r, img, adminAuth()); err != nil {
		t.Fatalf("push: %v", err)
	}

	pulled, err := remote.Image(r, adminAuth())
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	wantDigest, _ := img.Digest()
	gotDigest, _ := pulled.Digest()
	if wantDigest != gotDigest {
		t.Fatalf("digest: got %s, want %s", gotDigest, wantDigest)
	}
	wantLayers, _ := img.Layers()
	gotLayers, err := pulled.Layers()
	if err != nil || len(gotLayers) != len(wantLayers) {
		t.Fatalf("layers: %d, %v", len(gotLayers), err)
	}
	for i := range wantLayers {
		assertSameContent(t, wantLayers[i], gotLayers[i])
	}

	tags, err := remote.List(r.Context(), adminAuth())
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags: %v %v", tags, err)
	}
}

func assertSameContent(t *testing.T, want, got v1.Layer) {
	t.Helper()
	wr, err := want.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	gr, err := got.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := io.ReadAll(wr)
	gb, err := io.ReadAll(gr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wb, gb) {
		t.Fatalf("layer content differs (%d vs %d bytes)", len(wb), len(gb))
	}
}

func TestPushPullMultiPlatformIndex(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{})
	idx, err := random.Index(512, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, s, "test/multi:latest")
	if err := remote.WriteIndex(r, idx, adminAuth()); err != nil {
		t.Fatalf("push index: %v", err)
	}
	pulled, err := remote.Index(r, adminAuth())
	if err != nil {
		t.Fatalf("pull index: %v", err)
	}
	want, _ := idx.Digest()
	got, _ := pulled.Digest()
	if want != got {
		t.Fatalf("index digest: got %s, want %s", got, want)
	}
	im, err := pulled.IndexManifest()
	if err != nil || len(im.Manifests) != 3 {
		t.Fatalf("index manifest: %v %v", im, err)
	}
	for _, desc := range im.Manifests {
		child, err := pulled.Image(desc.Digest)
		if err != nil {
			t.Fatalf("child %s: %v", desc.Digest, err)
		}
		layers, err := child.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("child layer: %v", err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("child layer: %v", err)
			}
			rc.Close()
		}
	}

	// A child of the index cannot be deleted while the index exists.
	child := ref(t, s, "test/multi@"+im.Manifests[0].Digest.String())
	if err := remote.Delete(child, adminAuth()); err == nil {
		t.Fatal("deleting a child of an index succeeded")
	}
	if err := remote.Delete(ref(t, s, "test/multi@"+got.String()), adminAuth()); err != nil {
		t.Fatalf("deleting the index: %v", err)
	}
	if err := remote.Delete(child, adminAuth()); err != nil {
		t.Fatalf("deleting the former child: %v", err)
	}
}

func TestWindowsImageWithForeignLayer(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{})
	base := mutate.MediaType(empty.Image, types.DockerManifestSchema2)
	base = mutate.ConfigMediaType(base, types.DockerConfigJSON)
	foreign := static.NewLayer([]byte("windows base layer that is never pushed"), types.DockerForeignLayer)
	own, err := random.Layer(4096, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(base,
		mutate.Addendum{Layer: foreign, MediaType: types.DockerForeignLayer, URLs: []string{"https://mcr.example.invalid/windows/base.tar.gz"}},
		mutate.Addendum{Layer: own, MediaType: types.DockerLayer},
	)
	if err != nil {
		t.Fatal(err)
	}
	r := ref(t, s, "test/windows:ltsc2022")
	if err := remote.Write(r, img, adminAuth()); err != nil {
		t.Fatalf("push: %v", err)
	}
	desc, err := remote.Get(r, adminAuth())
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if desc.MediaType != types.DockerManifestSchema2 {
		t.Fatalf("media type %s", desc.MediaType)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].MediaType != types.DockerForeignLayer || len(m.Layers[0].URLs) != 1 {
		t.Fatalf("foreign layer lost: %+v", m.Layers[0])
	}
	// The foreign layer's blob was never pushed and is not served.
	fd, _ := foreign.Digest()
	token := s.Token(t, "repository:test/windows:pull")
	if resp := s.Do(t, "HEAD", "/v2/test/windows/blobs/"+fd.String(), token, nil, nil); resp.Status != 404 {
		t.Fatalf("foreign layer blob: status %d, want 404", resp.Status)
	}
}
