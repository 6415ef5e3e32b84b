package janitor

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"

	"keppel/internal/db/sqlite"
	"keppel/internal/registry"
	"keppel/internal/storage/fs"
)

func TestAccountDeletion(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "keppel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	driver, err := fs.New(filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := registry.New(store, driver, registry.WithLogger(log))
	for _, name := range []string{"doomed", "keeper"} {
		if _, _, err := svc.CreateAccount(ctx, name, "tenant1"); err != nil {
			t.Fatal(err)
		}
	}

	pushBlob := func(repo registry.Repo, content []byte) digest.Digest {
		t.Helper()
		u, err := svc.StartUpload(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(content)
		if _, err := svc.FinishUpload(ctx, repo, u.UUID, d, nil, bytes.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	pushImage := func(repoName, tag string) (registry.Repo, []byte) {
		t.Helper()
		repo, err := svc.FindOrCreateRepository(ctx, repoName)
		if err != nil {
			t.Fatal(err)
		}
		config := []byte(`{"architecture":"amd64","os":"linux","tag":"` + tag + `"}`)
		cd := pushBlob(repo, config)
		ld := pushBlob(repo, []byte("layer of "+repoName))
		m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cd.String() + `","size":` + strconv.Itoa(len(config)) + `},` +
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + ld.String() + `","size":` + strconv.Itoa(len("layer of "+repoName)) + `}]}`)
		if _, err := svc.PutManifest(ctx, repo, tag, "", m, nil, nil); err != nil {
			t.Fatal(err)
		}
		return repo, m
	}
	var children []string
	for i, name := range []string{"doomed/a", "doomed/b/c", "keeper/a"} {
		repo, m := pushImage(name, "v"+strconv.Itoa(i))
		if name == "doomed/a" {
			children = append(children, digest.FromBytes(m).String())
			idx := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
				`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + children[0] + `","size":` + strconv.Itoa(len(m)) + `}]}`)
			if _, err := svc.PutManifest(ctx, repo, "index", "", idx, nil, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.StartUpload(ctx, repo); err != nil { // an upload in progress
				t.Fatal(err)
			}
		}
	}

	if _, err := svc.MarkAccountForDeletion(ctx, "doomed", false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.FindOrCreateRepository(ctx, "doomed/new"); !errors.Is(err, registry.ErrAccountDeleting) {
		t.Fatalf("push into a deleting account: %v", err)
	}
	if _, err := svc.FindRepository(ctx, "doomed/a"); !errors.Is(err, registry.ErrRepositoryUnknown) {
		t.Fatalf("pull from a deleting account: %v", err)
	}

	job := jobNamed(t, New(svc, Config{AbandonedUploadAge: 24 * 60 * 60 * 1e9}, log), "account-deletion")
	for i := 0; ; i++ {
		more, err := job.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		if i > 10 {
			t.Fatal("deletion does not finish")
		}
	}
	if _, err := store.GetAccount(ctx, "doomed"); err == nil {
		t.Fatal("account still exists")
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "storage", "tenant1", "doomed")); err == nil && len(entries) > 0 {
		t.Fatalf("storage of the deleted account is not empty: %v", entries)
	}
	// The other account of the tenant is untouched, and usage counts only it.
	if _, err := svc.FindRepository(ctx, "keeper/a"); err != nil {
		t.Fatalf("other account damaged: %v", err)
	}
	u, err := store.GetUsage(ctx, "tenant1")
	if err != nil || u.ManifestCount != 1 {
		t.Fatalf("usage after deletion: %+v %v", u, err)
	}
	// The name can be used again.
	if _, created, err := svc.CreateAccount(ctx, "doomed", "tenant2"); err != nil || !created {
		t.Fatalf("recreating: %v %v", created, err)
	}
}

// jobNamed returns the janitor's job of that name.
func jobNamed(t *testing.T, j *Janitor, name string) Job {
	t.Helper()
	for _, job := range j.Jobs() {
		if job.Name == name {
			return job
		}
	}
	t.Fatalf("the janitor has no job %q", name)
	return Job{}
}
