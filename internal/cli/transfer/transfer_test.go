package transfer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParsePlatform(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":              "",
		"all":           "",
		"linux/amd64":   "linux/amd64",
		"linux/arm/v7":  "linux/arm/v7",
		"windows/amd64": "windows/amd64",
	} {
		p, err := ParsePlatform(in)
		if err != nil {
			t.Errorf("ParsePlatform(%q): %v", in, err)
			continue
		}
		got := ""
		if p != nil {
			got = p.String()
		}
		if got != want {
			t.Errorf("ParsePlatform(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"linux", "/amd64", "linux/", "linux/arm/v7/x"} {
		if _, err := ParsePlatform(in); err == nil {
			t.Errorf("ParsePlatform(%q) succeeded", in)
		}
	}
}

func TestSelectPlatform(t *testing.T) {
	t.Parallel()
	d := func(digit string, p *v1.Platform) v1.Descriptor {
		return v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(digit, 64)}, Platform: p}
	}
	m := &v1.IndexManifest{Manifests: []v1.Descriptor{
		d("1", &v1.Platform{OS: "linux", Architecture: "amd64"}),
		d("2", &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}),
		d("3", &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}),
		d("4", &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}),
		d("5", nil), // an attestation, say
	}}
	for spec, want := range map[string]string{
		"linux/amd64":  "1",
		"linux/arm/v7": "3",
		"linux/arm":    "2", // the first that satisfies it
		"linux/arm64":  "4",
	} {
		p, err := ParsePlatform(spec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := selectPlatform("r", m, *p)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if got.Digest.Hex[:1] != want {
			t.Errorf("%s chose %s, want the one with %s", spec, got.Digest, want)
		}
	}
	_, err := selectPlatform("host/repo:v1", m, v1.Platform{OS: "linux", Architecture: "s390x"})
	var perr *PlatformError
	if !errors.Is(err, ErrNoSuchPlatform) || !errors.As(err, &perr) {
		t.Fatalf("an unknown platform gave %v", err)
	}
	want := "host/repo:v1 has no image for platform linux/s390x; available platforms: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, unknown"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
}

// writeTar writes a tar file of the given files (name → content).
func writeTar(t *testing.T, files [][2]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenRefusesWhatItCannotPush(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	emptyLayout := filepath.Join(dir, "empty-layout")
	if _, err := layout.Write(emptyLayout, empty.Index); err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(dir, "x.tar.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte("not even a tar"))
	_ = zw.Close()
	if err := os.WriteFile(gz, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("this is not a tar file"), 0o600); err != nil {
		t.Fatal(err)
	}

	img1, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	img2, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two.tar")
	tag1, _ := name.NewTag("example.test/a:one")
	tag2, _ := name.NewTag("example.test/b:two")
	if err := tarball.MultiWriteToFile(two, map[name.Tag]v1.Image{tag1: img1, tag2: img2}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, source string
		want         error
		text         string
	}{
		{"empty directory", t.TempDir(), ErrUnknownSource, ""},
		{"empty layout", emptyLayout, errEmptyLayout, ""},
		{"gzip", gz, errCompressed, "gunzip"},
		{"other tar", writeTar(t, [][2]string{{"etc/passwd", "root"}}), ErrUnknownSource, ""},
		{"not a tar", junk, ErrUnknownSource, ""},
		{"two images", two, errManyImages, "example.test/a:one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(tc.source, t.TempDir())
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%s) succeeded", tc.source)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Open: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("Open: %v, want it to mention %q", err, tc.text)
			}
		})
	}
}

func TestUnpackLayoutWritesOnlyLayoutFiles(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("a", 64)
	src := writeTar(t, [][2]string{
		{"./oci-layout", `{"imageLayoutVersion":"1.0.0"}`},
		{"index.json", `{"schemaVersion":2,"manifests":[]}`},
		{"blobs/sha256/" + hex, "blob"},
		{"../escape", "x"},
		{"blobs/sha256/../../../escape2", "x"},
		{"manifest.json", "[]"},
	})
	root := t.TempDir()
	dir := filepath.Join(root, "layout")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unpackLayout(src, dir); err != nil {
		t.Fatal(err)
	}
	var got []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	want := []string{"layout/blobs/sha256/" + hex, "layout/index.json", "layout/oci-layout"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("unpacked %q, want %q", got, want)
	}
}

func TestWriteLayoutRefusesOtherDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference("example.test/a:v1")
	if err := writeLayout(dir, ref, d, img, nil); err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Errorf("writing into a directory of other files: %v", err)
	}
}
