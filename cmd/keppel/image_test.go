package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"keppel/internal/test"
)

// runSplit executes the CLI and returns standard output and standard
// error apart, to check that only the result goes to standard output.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// imageTestEnv isolates the client's configuration: no KEPPEL_* variables,
// and a docker config with the admin login for each of the servers.
func imageTestEnv(t *testing.T, servers ...*test.Server) {
	t.Helper()
	clearConfigEnv(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	auths := map[string]map[string]string{}
	for _, s := range servers {
		auths[s.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("admin:" + test.AdminPassword))}
	}
	body, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), body, 0o600); err != nil {
		t.Fatal(err)
	}
}

var adminAuth = remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword})

// multiArchIndex builds an index of random images for linux/amd64,
// linux/arm64 and linux/arm/v7 and returns it with its images by platform.
func multiArchIndex(t *testing.T) (v1.ImageIndex, map[string]v1.Image) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	images := map[string]v1.Image{}
	for _, p := range []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64"},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
	} {
		img, err := random.Image(3000, 2)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		images[p.String()] = img
	}
	return idx, images
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// blobDigests lists the config and layer digests of an image.
func blobDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// blobExists asks the registry whether repo has the blob.
func blobExists(t *testing.T, repo name.Repository, d v1.Hash) bool {
	t.Helper()
	l, err := remote.Layer(repo.Digest(d.String()), adminAuth)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err == nil {
		rc.Close()
		return true
	}
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == 404 {
		return false
	}
	t.Fatalf("blob %s in %s: %v", d, repo, err)
	return false
}

func TestCopyBetweenRegistries(t *testing.T) {
	a := test.NewServer(t, test.Options{StorageDriver: "memory"})
	b := test.NewServer(t, test.Options{StorageDriver: "memory"})
	imageTestEnv(t, a, b)

	idx, images := multiArchIndex(t)
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	src := a.Host + "/test/app:v1"
	if err := remote.WriteIndex(mustRef(t, src), idx, adminAuth); err != nil {
		t.Fatalf("pushing the index to A: %v", err)
	}

	// --platform linux/arm64: only that image manifest and its blobs.
	armDst := b.Host + "/test/arm:v1"
	stdout, stderr, err := runSplit(t, "copy", src, armDst, "--platform", "linux/arm64")
	if err != nil {
		t.Fatalf("copy --platform linux/arm64: %v\n%s", err, stderr)
	}
	armDigest, err := images["linux/arm64"].Digest()
	if err != nil {
		t.Fatal(err)
	}
	if want := b.Host + "/test/arm@" + armDigest.String() + "\n"; stdout != want || stderr != "" {
		t.Errorf("copy printed %q and %q on standard error, want %q", stdout, stderr, want)
	}
	desc, err := remote.Get(mustRef(t, armDst), adminAuth)
	if err != nil {
		t.Fatalf("B has no arm64 image: %v", err)
	}
	if desc.Digest != armDigest || desc.MediaType.IsIndex() {
		t.Errorf("B's tag is %s (%s), want the arm64 image manifest %s", desc.Digest, desc.MediaType, armDigest)
	}
	armRepo := mustRef(t, armDst).Context()
	for p, img := range images {
		for _, blob := range blobDigests(t, img) {
			if got, want := blobExists(t, armRepo, blob), p == "linux/arm64"; got != want {
				t.Errorf("blob %s of the %s image at B: present %v, want %v", blob, p, got, want)
			}
		}
	}
	if _, err := remote.Get(armRepo.Digest(idxDigest.String()), adminAuth); err == nil {
		t.Error("the single-platform copy wrote the index too")
	}

	// An unknown platform fails and names the available ones; nothing on
	// standard output.
	stdout, _, err = runSplit(t, "copy", src, b.Host+"/test/s390x:v1", "--platform", "linux/s390x")
	if err == nil {
		t.Fatal("copy of an unknown platform succeeded")
	}
	for _, want := range []string{"linux/s390x", "linux/amd64", "linux/arm64", "linux/arm/v7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if stdout != "" {
		t.Errorf("a failed copy printed %q on standard output", stdout)
	}

	// --platform all: the index, every child and every blob.
	dst := b.Host + "/test/app:v1"
	stdout, stderr, err = runSplit(t, "copy", src, dst, "--platform", "all")
	if err != nil {
		t.Fatalf("copy --platform all: %v\n%s", err, stderr)
	}
	if want := b.Host + "/test/app@" + idxDigest.String() + "\n"; stdout != want {
		t.Errorf("copy printed %q, want %q", stdout, want)
	}
	if stderr != "" {
		t.Errorf("copy printed %q on standard error, which is no terminal", stderr)
	}
	desc, err = remote.Get(mustRef(t, dst), adminAuth)
	if err != nil {
		t.Fatalf("B has no index: %v", err)
	}
	if desc.Digest != idxDigest || !desc.MediaType.IsIndex() {
		t.Errorf("B's tag is %s (%s), want the index %s", desc.Digest, desc.MediaType, idxDigest)
	}
	dstRepo := mustRef(t, dst).Context()
	for p, img := range images {
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Get(dstRepo.Digest(d.String()), adminAuth); err != nil {
			t.Errorf("B lacks the %s image %s: %v", p, d, err)
		}
		for _, blob := range blobDigests(t, img) {
			if !blobExists(t, dstRepo, blob) {
				t.Errorf("B lacks the blob %s of the %s image", blob, p)
			}
		}
	}
}
