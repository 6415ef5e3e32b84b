package janitor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keppel/internal/db/sqlcore"
	"keppel/internal/registry"
)

// TestManifestRevalidation: re-validation writes a missing or different
// storage copy again from the database, and flags a manifest whose stored
// content no longer has its digest, which is then not served until it is
// pushed again.
func TestManifestRevalidation(t *testing.T) {
	ctx := t.Context()
	env, root := newFSTestEnv(t, "app")
	reg := prometheus.NewRegistry()
	job := jobNamed(t, New(env.svc, Config{AbandonedUploadAge: time.Hour, Registerer: reg}, env.log), "manifest-revalidation")
	day := int64(registry.DefaultManifestRevalidationInterval / time.Second)
	content := `{"schemaVersion":2,"mediaType":"` + indexType + `","manifests":[]}`
	pushed, err := env.svc.PutManifest(ctx, env.repo, "v1", indexType, []byte(content), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := pushed.Digest.String()
	copyPath := filepath.Join(root, "tenant1", "test", "m", "app", d)

	// No background writer runs here: the copy is missing, and the first
	// re-validation (a day after the push) writes it.
	runUntilIdle(t, job)
	if _, err := os.Stat(copyPath); err == nil {
		t.Fatal("re-validated before it was due")
	}
	env.clock.Add(day + 1)
	runUntilIdle(t, job)
	if got, err := os.ReadFile(copyPath); err != nil || string(got) != content {
		t.Fatalf("the missing copy was not written: %q, %v", got, err)
	}
	if n := counter(t, reg, "keppel_manifest_validations_total", "copy_repaired"); n != 1 {
		t.Fatalf("copy_repaired = %v, want 1", n)
	}

	// A different copy is written again too.
	if err := os.WriteFile(copyPath, []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	env.clock.Add(2 * day)
	runUntilIdle(t, job)
	if got, _ := os.ReadFile(copyPath); string(got) != content {
		t.Fatalf("the different copy was not repaired: %q", got)
	}

	// Corrupt content in the database: flagged, not served.
	sqlDB := env.store.(*sqlcore.Store).DB()
	if _, err := sqlDB.ExecContext(ctx, `UPDATE manifest_contents SET content = $1`, []byte(strings.ToUpper(content))); err != nil {
		t.Fatal(err)
	}
	env.clock.Add(2 * day)
	runUntilIdle(t, job)
	if n := counter(t, reg, "keppel_manifest_validations_total", "invalid"); n != 1 {
		t.Fatalf("invalid = %v, want 1", n)
	}
	_, err = env.svc.GetManifest(ctx, env.repo, "v1")
	if !errors.Is(err, registry.ErrManifestUnknown) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("GetManifest of a corrupt manifest: %v", err)
	}
	infos, err := env.svc.ListManifestInfos(ctx, env.repo, "", 10)
	if err != nil || len(infos) != 1 || infos[0].ValidationError != "the content does not match the digest" {
		t.Fatalf("the management API does not see the problem: %+v, %v", infos, err)
	}

	// Pushing it again heals it.
	if _, err := env.svc.PutManifest(ctx, env.repo, "v1", indexType, []byte(content), nil, nil); err != nil {
		t.Fatal(err)
	}
	m, err := env.svc.GetManifest(ctx, env.repo, "v1")
	if err != nil || string(m.Content) != content {
		t.Fatalf("after pushing again: %q, %v", m.Content, err)
	}
}

// counter returns the value of a counter metric with the result label.
func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
