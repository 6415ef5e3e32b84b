package janitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"keppel/internal/registry"
	"keppel/internal/storage"
	"keppel/internal/storage/memory"
)

// TestDeletedImageFreedWithinAnHour pushes an image, deletes it, and runs
// the janitor's jobs on a simulated clock with the default settings, once
// a simulated minute: the layer's content must stay for at least one grace
// period and be gone within an hour of the delete.
func TestDeletedImageFreedWithinAnHour(t *testing.T) {
	ctx := t.Context()
	driver := memory.New()
	env := newTestEnv(t, driver, "app")
	svc, clock, log, repo, now := env.svc, env.clock, env.log, env.repo, env.now

	upload := func(content string) string {
		t.Helper()
		u, err := svc.StartUpload(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromString(content)
		b, err := svc.FinishUpload(ctx, repo, u.UUID, d, nil, strings.NewReader(content))
		if err != nil {
			t.Fatalf("FinishUpload: %v", err)
		}
		return b.StorageID
	}
	layer := "layer content"
	layerID := upload(layer)
	config := `{"architecture":"amd64","os":"linux"}`
	upload(config)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}`,
		digest.FromString(config), len(config), digest.FromString(layer), len(layer))
	pushed, err := svc.PutManifest(ctx, repo, "v1", "application/vnd.oci.image.manifest.v1+json", []byte(manifest), nil, nil)
	if err != nil {
		t.Fatalf("PutManifest: %v", err)
	}

	j := New(svc, Config{AbandonedUploadAge: 24 * time.Hour}, log)
	runJobs := func() {
		t.Helper()
		for _, name := range []string{"blob-mount-sweep", "blob-sweep"} {
			runUntilIdle(t, jobNamed(t, j, name))
		}
	}
	stored := func() bool {
		rc, err := driver.ReadBlob(context.Background(), repo.StorageRef(), layerID, 0, -1)
		if errors.Is(err, storage.ErrNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		return true
	}

	// While the image exists, an hour of sweeps keeps its layer.
	for range 60 {
		clock.Add(60)
		runJobs()
	}
	if !stored() {
		t.Fatal("the layer of an existing image was deleted")
	}

	if err := svc.DeleteManifest(ctx, repo, pushed.Digest.String()); err != nil {
		t.Fatal(err)
	}
	deletedAt := now()
	for minute := 1; minute <= 60; minute++ {
		clock.Add(60)
		runJobs()
		if !stored() {
			if elapsed := now().Sub(deletedAt); elapsed < registry.DefaultGCGracePeriod {
				t.Fatalf("the layer was freed %s after the delete, before one grace period", elapsed)
			}
			t.Logf("the layer was freed %d minutes after the delete", minute)
			return
		}
	}
	t.Fatal("the layer of the deleted image was not freed within an hour")
}
