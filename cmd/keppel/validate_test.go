package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/test"
)

func TestValidate(t *testing.T) {
	clearConfigEnv(t)
	t.Setenv("HOME", t.TempDir()) // no stored login
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	s := test.NewServer(t, test.Options{})
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword})

	idx, err := random.Index(2048, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.Host+"/test/multi:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, auth); err != nil {
		t.Fatalf("push: %v", err)
	}
	t.Setenv("KEPPEL_USERNAME", "admin")
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	out, err := run(t, "", "validate", s.Host+"/test/multi:v1")
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	// An index, two images with two layers and a config each.
	if !strings.Contains(out, "is valid: 3 manifests, 6 blobs") {
		t.Errorf("output: %s", out)
	}

	// Without credentials the pull is anonymous, which the account refuses.
	t.Setenv("KEPPEL_PASSWORD", "")
	if out, err := run(t, "", "validate", s.Host+"/test/multi:v1"); err == nil {
		t.Fatalf("anonymous validate of a private image succeeded: %s", out)
	}
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)

	// A blob whose stored content changed (same size) is found.
	var blobs []string
	root := filepath.Join(s.DataDir, "storage")
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(filepath.ToSlash(path), "/b/") {
			blobs = append(blobs, path)
		}
		return nil
	})
	if len(blobs) != 6 {
		t.Fatalf("found %d blob files, want 6", len(blobs))
	}
	largest, largestSize := "", 0
	for _, path := range blobs {
		if fi, err := os.Stat(path); err == nil && int(fi.Size()) > largestSize {
			largest, largestSize = path, int(fi.Size())
		}
	}
	content, err := os.ReadFile(largest) // a layer
	if err != nil {
		t.Fatal(err)
	}
	content[len(content)/2] ^= 0xff
	if err := os.WriteFile(largest, content, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "", "validate", s.Host+"/test/multi:v1")
	if err == nil || !strings.Contains(err.Error(), "blob sha256:") {
		t.Fatalf("validate of a corrupted image: %v\n%s", err, out)
	}

	if _, err := run(t, "", "validate", "not a reference"); err == nil {
		t.Error("validate of a malformed reference succeeded")
	}
}

func TestIsLocalRegistry(t *testing.T) {
	for ref, want := range map[string]bool{
		"localhost:5000/a/b":      true,
		"127.0.0.1:5000/a/b:v1":   true,
		"127.0.0.2/a/b":           true,
		"[::1]:5000/a/b":          true,
		"registry.example.com/a":  false,
		"10.0.0.1:5000/a/b":       false,
		"library/alpine":          false,
		"localhost.example.com/a": false,
	} {
		if got := isLocalRegistry(ref); got != want {
			t.Errorf("isLocalRegistry(%q) = %v, want %v", ref, got, want)
		}
	}
}
