package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"keppel/internal/test"
)

// fixedImage is an image whose digest is the same on every run (no random
// content, no timestamps), so that golden outputs can show it.
func fixedImage(t *testing.T, content, arch string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer([]byte(content), types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// browseFixture pushes test/app:v1 and :latest (one image), test/app:multi
// (an index of two images) and test/tools:1.0 to the server.
func browseFixture(t *testing.T, s *test.Server) (image, index string) {
	t.Helper()
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword})
	host := strings.TrimPrefix(s.URL, "http://")
	push := func(ref string, w func(name.Reference) error) {
		t.Helper()
		r, err := name.ParseReference(host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := w(r); err != nil {
			t.Fatalf("pushing %s: %v", ref, err)
		}
	}
	img := fixedImage(t, "hello", "amd64")
	for _, tag := range []string{"test/app:v1", "test/app:latest"} {
		push(tag, func(r name.Reference) error { return remote.Write(r, img, auth) })
	}
	arm := fixedImage(t, "hello arm", "arm64")
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	push("test/app:multi", func(r name.Reference) error { return remote.WriteIndex(r, idx, auth) })
	push("test/tools:1.0", func(r name.Reference) error { return remote.Write(r, fixedImage(t, "tools", "amd64"), auth) })
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	di, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), di.String()
}

// TestBrowseCommands: ls, catalog, tags, manifest and delete, in every
// output format, against golden outputs; and what they refuse.
func TestBrowseCommands(t *testing.T) {
	isolateClient(t)
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	t.Setenv("KEPPEL_REGISTRY_URL", s.URL)
	image, index := browseFixture(t, s)
	host := strings.TrimPrefix(s.URL, "http://")
	replace := map[string]string{host: "REGISTRY"}

	for _, c := range []struct {
		golden string
		args   []string
	}{
		{"ls_accounts", []string{"ls"}},
		{"ls_account", []string{"ls", "test"}},
		{"ls_repository", []string{"ls", "test/app"}},
		{"catalog", []string{"catalog"}},
		{"tags", []string{"tags", "test/app"}},
		{"account_list", []string{"account", "list"}},
		{"account_show", []string{"account", "show", "test"}},
		{"quota_show", []string{"quota", "show", "tenant1"}},
		{"tenant_members", []string{"tenant", "members", "tenant1"}},
		{"user_list", []string{"user", "list"}},
		// Manifest pulls come last: they would show up as pull times.
		{"manifest_image", []string{"manifest", "test/app:v1"}},
		{"manifest_index", []string{"manifest", host + "/test/app:multi"}},
	} {
		for _, format := range []string{"table", "json", "yaml"} {
			out := mustRun(t, "", append(c.args, "--output", format)...)
			checkGolden(t, "output/"+c.golden+"."+format, normalize(out, replace))
		}
	}

	// Commands that change things print what they did, in every format.
	for _, format := range []string{"table", "json", "yaml"} {
		for _, c := range []struct {
			golden string
			args   []string
		}{
			{"account_create", []string{"account", "create", "test", "--auth-tenant-id", "tenant1"}},
			{"copy", []string{"copy", host + "/test/app:multi", host + "/test/copy-" + format + ":v1"}},
			{"validate", []string{"validate", host + "/test/app:multi"}},
		} {
			out := mustRun(t, "", append(c.args, "--output", format)...)
			checkGolden(t, "output/"+c.golden+"."+format, normalize(out, map[string]string{host: "REGISTRY", "copy-" + format: "copy-FORMAT"}))
		}
	}

	// The JSON of a manifest is the manifest byte for byte.
	out := mustRun(t, "", "manifest", "test/app:multi", "-o", "json")
	sum := sha256.Sum256([]byte(strings.TrimSuffix(out, "\n")))
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != index {
		t.Errorf("manifest -o json has digest %s, want %s", got, index)
	}
	// By digest as well, and the tags listing points at the right digests.
	if out := mustRun(t, "", "manifest", "test/app@"+image); !strings.Contains(out, "digest:      "+image) {
		t.Errorf("manifest by digest printed %q", out)
	}
	var tags []struct{ Name, Digest string }
	if err := json.Unmarshal([]byte(mustRun(t, "", "tags", "test/app", "-o", "json")), &tags); err != nil || len(tags) != 3 ||
		tags[0].Name != "latest" || tags[0].Digest != image || tags[1].Name != "multi" || tags[1].Digest != index {
		t.Errorf("tags -o json = %+v (%v)", tags, err)
	}

	// Shell completion asks the registry for accounts and repositories.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ls", "te"}, "test/\n:6\n"},
		{[]string{"tags", "test/a"}, "test/app\n:4\n"},
		{[]string{"manifest", "test/"}, "test/app\ntest/copy-json\ntest/copy-table\ntest/copy-yaml\ntest/tools\n:4\n"},
		{[]string{"account", "show", ""}, "test\n:4\n"},
		{[]string{"account", "show", "test", ""}, ":4\n"},
		{[]string{"ls", "--output", ""}, "table\njson\nyaml\n:4\n"},
	} {
		out := mustRun(t, "", append([]string{"__complete"}, c.args...)...)
		if got, _, _ := strings.Cut(out, "Completion ended"); got != c.want {
			t.Errorf("completing %q: %q, want %q", c.args, got, c.want)
		}
	}

	// delete: a tag keeps the manifest; a digest takes the manifest and its
	// tags; an index keeps its children.
	if out := mustRun(t, "", "delete", "test/app:latest"); out != "deleted tag test/app:latest\n" {
		t.Errorf("delete tag printed %q", out)
	}
	wantRunError(t, "referenced by an index", "", "delete", "test/app@"+image)
	mustRun(t, "", "delete", "test/app@"+index)
	if out := mustRun(t, "", "delete", "test/app@"+image, "-o", "json"); !strings.Contains(out, `"deleted": "manifest"`) {
		t.Errorf("delete -o json printed %q", out)
	}
	if out := mustRun(t, "", "tags", "test/app"); out != "TAG  DIGEST  PUSHED  LAST PULLED\n" {
		t.Errorf("tags after deleting everything: %q", out)
	}

	// Bad arguments are refused with a message that says what to write.
	for _, c := range []struct {
		want string
		args []string
	}{
		{"no such manifest or tag", []string{"delete", "test/app:nope"}},
		{"say what to delete", []string{"delete", "test/app"}},
		{"is not an image", []string{"manifest", "app"}},
		{"without a tag or digest", []string{"tags", "test/app:v1"}},
		{"not a digest", []string{"manifest", "test/app@v1"}},
		{"no such account", []string{"ls", "nope"}},
		{"unknown output format \"xml\": use one of table, json, yaml", []string{"ls", "-o", "xml"}},
		{"MANIFEST_UNKNOWN", []string{"manifest", "test/app:nope"}},
	} {
		wantRunError(t, c.want, "", c.args...)
	}
}
