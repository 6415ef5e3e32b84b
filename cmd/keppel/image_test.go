package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
	// Built before the environment changes, with the user's Go caches.
	keppelBinary := test.BuildKeppel(t)
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
	// The binary puts the message on standard error and exits non-zero.
	bin := exec.Command(keppelBinary, "copy", src, b.Host+"/test/s390x:v1", "--platform", "linux/s390x")
	var binOut, binErr bytes.Buffer
	bin.Stdout, bin.Stderr = &binOut, &binErr
	var exitErr *exec.ExitError
	if err := bin.Run(); !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
		t.Errorf("keppel copy of an unknown platform: %v, want a non-zero exit", err)
	}
	if binOut.Len() != 0 || !strings.Contains(binErr.String(), "available platforms: linux/amd64, linux/arm64, linux/arm/v7") {
		t.Errorf("keppel copy of an unknown platform printed %q, and %q on standard error", binOut.String(), binErr.String())
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

	// --all-tags copies every tag and prints a line for each.
	stdout, stderr, err = runSplit(t, "copy", "--all-tags", a.Host+"/test/app", b.Host+"/test/mirror")
	if err != nil {
		t.Fatalf("copy --all-tags: %v\n%s", err, stderr)
	}
	if want := b.Host + "/test/mirror@" + idxDigest.String() + "\n"; stdout != want {
		t.Errorf("copy --all-tags printed %q, want %q", stdout, want)
	}
	if _, _, err := runSplit(t, "copy", "--all-tags", src, b.Host+"/test/mirror"); err == nil {
		t.Error("copy --all-tags of a tag succeeded")
	}
}

// ociLayout writes an OCI image layout with the image or index.
func ociLayout(t *testing.T, img v1.Image, idx v1.ImageIndex) string {
	t.Helper()
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if img != nil {
		err = lp.AppendImage(img)
	} else {
		err = lp.AppendIndex(idx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// tarDir packs the files of dir into a tar file.
func tarDir(t *testing.T, dir string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "layout.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(body)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return file
}

// layoutDigests lists the digests of the entries of a layout's index.json.
func layoutDigests(t *testing.T, dir string) []string {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("%s is no layout: %v", dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range m.Manifests {
		out = append(out, d.Digest.String())
	}
	return out
}

// pushOK runs `keppel push` and returns the digest it printed, checking
// that it printed nothing else.
func pushOK(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := runSplit(t, append([]string{"push"}, args...)...)
	if err != nil {
		t.Fatalf("push %q: %v\n%s", args, err, stderr)
	}
	if stderr != "" || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("push %q printed %q and %q on standard error", args, stdout, stderr)
	}
	_, digest, ok := strings.Cut(strings.TrimSpace(stdout), "@")
	if !ok {
		t.Fatalf("push %q printed %q, not repository@digest", args, stdout)
	}
	return digest
}

func TestPushAndPullRoundTrip(t *testing.T) {
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	imageTestEnv(t, s)
	img, err := random.Image(4000, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	// An OCI layout goes up and comes back with the same digest.
	if got := pushOK(t, ociLayout(t, img, nil), s.Host+"/test/app:v1"); got != want.String() {
		t.Errorf("push of a layout gave %s, want %s", got, want)
	}
	out := filepath.Join(t.TempDir(), "pulled")
	stdout, stderr, err := runSplit(t, "pull", s.Host+"/test/app:v1", out)
	if err != nil || stdout != s.Host+"/test/app@"+want.String()+"\n" || stderr != "" {
		t.Fatalf("pull: %v, printed %q and %q", err, stdout, stderr)
	}
	if got := layoutDigests(t, out); len(got) != 1 || got[0] != want.String() {
		t.Errorf("the pulled layout lists %q, want %s", got, want)
	}
	// A second pull of the same name replaces the entry.
	if _, stderr, err := runSplit(t, "pull", s.Host+"/test/app:v1", out); err != nil {
		t.Fatalf("second pull: %v\n%s", err, stderr)
	}
	if got := layoutDigests(t, out); len(got) != 1 {
		t.Errorf("after a second pull the layout lists %q", got)
	}
	if got := pushOK(t, out, s.Host+"/test/app:again"); got != want.String() {
		t.Errorf("push of the pulled layout gave %s, want %s", got, want)
	}

	// A docker tarball likewise.
	tarFile := filepath.Join(t.TempDir(), "app.tar")
	if err := tarball.WriteToFile(tarFile, mustRef(t, "example.test/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	if got := pushOK(t, tarFile, s.Host+"/test/fromtar:v1"); got != want.String() {
		t.Errorf("push of a tarball gave %s, want %s", got, want)
	}
	pulledTar := filepath.Join(t.TempDir(), "pulled.tar")
	stdout, stderr, err = runSplit(t, "pull", s.Host+"/test/fromtar:v1", pulledTar, "--format", "tarball")
	if err != nil || stdout != s.Host+"/test/fromtar@"+want.String()+"\n" || stderr != "" {
		t.Fatalf("pull --format tarball: %v, printed %q and %q", err, stdout, stderr)
	}
	fromTar, err := tarball.ImageFromPath(pulledTar, nil)
	if err != nil {
		t.Fatalf("the pulled tarball does not load: %v", err)
	}
	if got, err := fromTar.Digest(); err != nil || got != want {
		t.Errorf("the pulled tarball holds %s (%v), want %s", got, err, want)
	}
	if got := pushOK(t, pulledTar, s.Host+"/test/fromtar:again"); got != want.String() {
		t.Errorf("push of the pulled tarball gave %s, want %s", got, want)
	}

	// --output json prints the reference and the digest.
	stdout, stderr, err = runSplit(t, "push", pulledTar, s.Host+"/test/json:v1", "--output", "json")
	if err != nil {
		t.Fatalf("push --output json: %v\n%s", err, stderr)
	}
	var result imageResult
	if err := json.Unmarshal([]byte(stdout), &result); err != nil {
		t.Fatalf("push --output json printed %q: %v", stdout, err)
	}
	if result.Digest != want.String() || result.Reference != s.Host+"/test/json@"+want.String() {
		t.Errorf("push --output json printed %+v", result)
	}
}

func TestPushAndPullIndex(t *testing.T) {
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	imageTestEnv(t, s)
	idx, images := multiArchIndex(t)
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}

	// A layout of an index pushes the index; so does the layout tarred.
	dir := ociLayout(t, nil, idx)
	if got := pushOK(t, dir, s.Host+"/test/multi:v1"); got != want.String() {
		t.Errorf("push of an index layout gave %s, want %s", got, want)
	}
	if got := pushOK(t, tarDir(t, dir), s.Host+"/test/multi:tarred"); got != want.String() {
		t.Errorf("push of a tarred index layout gave %s, want %s", got, want)
	}

	// Pulled whole (the default), or one platform.
	out := filepath.Join(t.TempDir(), "multi")
	if _, stderr, err := runSplit(t, "pull", s.Host+"/test/multi:v1", out); err != nil {
		t.Fatalf("pull: %v\n%s", err, stderr)
	}
	if got := layoutDigests(t, out); len(got) != 1 || got[0] != want.String() {
		t.Errorf("the pulled layout lists %q, want the index %s", got, want)
	}
	armWant, err := images["linux/arm/v7"].Digest()
	if err != nil {
		t.Fatal(err)
	}
	armTar := filepath.Join(t.TempDir(), "arm.tar")
	stdout, stderr, err := runSplit(t, "pull", s.Host+"/test/multi:v1", armTar, "--format", "tarball", "--platform", "linux/arm/v7")
	if err != nil || stdout != s.Host+"/test/multi@"+armWant.String()+"\n" {
		t.Fatalf("pull --platform linux/arm/v7: %v, printed %q\n%s", err, stdout, stderr)
	}
	if got := pushOK(t, armTar, s.Host+"/test/arm:v7"); got != armWant.String() {
		t.Errorf("push of the pulled arm/v7 tarball gave %s, want %s", got, armWant)
	}

	// A layout of two images pushes an index of both, with index.json's
	// digest.
	two := ociLayout(t, images["linux/amd64"], nil)
	lp, err := layout.FromPath(two)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(images["linux/arm64"]); err != nil {
		t.Fatal(err)
	}
	rootIdx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rootDigest, err := rootIdx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got := pushOK(t, two, s.Host+"/test/two:v1"); got != rootDigest.String() {
		t.Errorf("push of a layout of two images gave %s, want index.json's %s", got, rootDigest)
	}

	failures := []struct {
		name string
		args []string
		want []string
	}{
		{"tarball of an index", []string{"pull", s.Host + "/test/multi:v1", filepath.Join(t.TempDir(), "x.tar"), "--format", "tarball", "--platform", "all"},
			[]string{"--platform", "linux/amd64", "linux/arm/v7"}},
		{"unknown platform", []string{"pull", s.Host + "/test/multi:v1", filepath.Join(t.TempDir(), "x"), "--platform", "windows/amd64"},
			[]string{"windows/amd64", "linux/arm64"}},
		{"bad platform", []string{"pull", s.Host + "/test/multi:v1", filepath.Join(t.TempDir(), "x"), "--platform", "linux"}, []string{"--platform"}},
		{"bad format", []string{"pull", s.Host + "/test/multi:v1", filepath.Join(t.TempDir(), "x"), "--format", "zip"}, []string{"oci or tarball"}},
		{"missing tag", []string{"pull", s.Host + "/test/multi:nope", filepath.Join(t.TempDir(), "x")}, []string{"MANIFEST_UNKNOWN"}},
		{"missing account", []string{"push", dir, s.Host + "/nosuchaccount/app:v1"}, []string{"keppel account create nosuchaccount"}},
		{"not a source", []string{"push", t.TempDir(), s.Host + "/test/app:v1"}, []string{"not an OCI image layout"}},
		{"missing source", []string{"push", filepath.Join(t.TempDir(), "nothing"), s.Host + "/test/app:v1"}, []string{"nothing"}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runSplit(t, tc.args...)
			if err == nil {
				t.Fatalf("%q succeeded", tc.args)
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if stdout != "" {
				t.Errorf("printed %q on standard output", stdout)
			}
		})
	}

	// Without credentials the error says how to log in.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	_, _, err = runSplit(t, "push", dir, s.Host+"/test/anon:v1")
	t.Logf("anonymous push: %v", err)
	if err == nil || !strings.Contains(err.Error(), "keppel login "+s.Host) {
		t.Errorf("anonymous push: %v", err)
	}
}
