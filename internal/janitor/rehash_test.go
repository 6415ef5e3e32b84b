package janitor

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"keppel/internal/registry"
)

// TestRehashFindsCorruptBlob corrupts a blob's file on disk: the re-hash
// job finds it, counts it in the metrics, and the blob is no longer served;
// pushing the blob again replaces the content and heals it.
func TestRehashFindsCorruptBlob(t *testing.T) {
	ctx := t.Context()
	env, root := newFSTestEnv(t, "app")
	svc, clock, log, repo := env.svc, env.clock, env.log, env.repo
	content := "the layer's content"
	d := digest.FromString(content)
	push := func() {
		t.Helper()
		u, err := svc.StartUpload(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.FinishUpload(ctx, repo, u.UUID, d, nil, strings.NewReader(content)); err != nil {
			t.Fatalf("FinishUpload: %v", err)
		}
	}
	push()
	healthy, err := svc.StatBlob(ctx, repo, d)
	if err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	job := jobNamed(t, New(svc, Config{AbandonedUploadAge: time.Hour, Registerer: reg}, log), "blob-rehash")
	// Not due before a week has passed; then the intact blob passes.
	runUntilIdle(t, job)
	if n := validations(t, reg, "ok") + validations(t, reg, "corrupt"); n != 0 {
		t.Fatalf("a blob was re-hashed before it was due (%v)", n)
	}
	clock.Add(int64(registry.DefaultBlobRehashInterval / time.Second))
	runUntilIdle(t, job)
	if ok := validations(t, reg, "ok"); ok != 1 {
		t.Fatalf("intact re-hashes: %v, want 1", ok)
	}

	// Flip the content on disk, keeping its size.
	path := filepath.Join(root, "tenant1", "test", "b", healthy.StorageID)
	if err := os.WriteFile(path, []byte(strings.ToUpper(content)), 0o640); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(2 * registry.DefaultBlobRehashInterval / time.Second))
	runUntilIdle(t, job)
	if bad := validations(t, reg, "corrupt"); bad != 1 {
		t.Fatalf("corrupt re-hashes: %v, want 1", bad)
	}
	_, err = svc.StatBlob(ctx, repo, d)
	if !errors.Is(err, registry.ErrBlobUnknown) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("StatBlob of the corrupt blob: %v, want ErrBlobUnknown saying it is corrupt", err)
	}

	// Pushing it again replaces the content.
	push()
	healed, err := svc.StatBlob(ctx, repo, d)
	if err != nil {
		t.Fatalf("StatBlob after pushing again: %v", err)
	}
	if healed.StorageID == healthy.StorageID {
		t.Fatal("the corrupt content was kept")
	}
	rc, err := svc.OpenBlob(ctx, repo, healed, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != content {
		t.Fatalf("content after healing: %q", got)
	}
}

// validations returns keppel_blob_validations_total{result}.
func validations(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	return counter(t, reg, "keppel_blob_validations_total", result)
}
