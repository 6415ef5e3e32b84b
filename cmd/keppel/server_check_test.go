package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/consistency"
	"keppel/internal/test"
)

// pushRandomImages pushes n random images of two layers each to the
// account "test" and returns their references.
func pushRandomImages(t *testing.T, s *test.Server, n int) []name.Reference {
	t.Helper()
	var refs []name.Reference
	for i := range n {
		ref, err := name.ParseReference(fmt.Sprintf("%s/test/app%d:v1", s.Host, i), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword})); err != nil {
			t.Fatalf("pushing %s: %v", ref, err)
		}
		refs = append(refs, ref)
	}
	return refs
}

// runCheck runs `keppel server check` with the arguments and decodes its
// JSON report.
func runCheck(t *testing.T, args ...string) (consistency.Report, error) {
	t.Helper()
	cmd := newRootCommand()
	var stdout, stderr strings.Builder
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(append([]string{"server", "check", "--output", "json"}, args...))
	err := cmd.ExecuteContext(t.Context())
	var rep consistency.Report
	if jerr := json.Unmarshal([]byte(stdout.String()), &rep); jerr != nil {
		t.Fatalf("server check %v printed %q: %v (error %v)", args, stdout.String(), jerr, err)
	}
	return rep, err
}

func TestServerCheckSQLite(t *testing.T) {
	testServerCheck(t, "")
}

func TestServerCheckPostgres(t *testing.T) {
	testServerCheck(t, test.PostgresDatabase(t))
}

// testServerCheck breaks a registry in two ways (the content of a blob
// in use is deleted, an object unknown to the database appears) and checks
// that `server check` reports exactly that without changing anything, that
// --repair repairs just that, and that the registry is consistent then.
func testServerCheck(t *testing.T, postgresURL string) {
	clearConfigEnv(t)
	s := test.NewServer(t, test.Options{PostgresURL: postgresURL})
	t.Setenv("KEPPEL_DATA_DIR", s.DataDir)
	t.Setenv("KEPPEL_STORAGE_DRIVER", "filesystem")
	t.Setenv("KEPPEL_DB_URL", postgresURL)
	const grace = time.Second
	t.Setenv("KEPPEL_JANITOR_GC_GRACE_PERIOD", grace.String())
	refs := pushRandomImages(t, s, 3)
	s.WaitForManifestCopies(t)

	if rep, err := runCheck(t); err != nil || len(rep.Findings) != 0 || rep.Blobs != 9 || rep.ManifestCopies != 3 || rep.Objects != 12 {
		t.Fatalf("check of a clean registry: %+v, %v", rep, err)
	}

	// (a) The content of the first image's first layer disappears.
	img, err := remote.Image(refs[0], remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword}))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layerDigest, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := s.Store().GetBlobInAccount(t.Context(), "test", layerDigest.String())
	if err != nil {
		t.Fatal(err)
	}
	accountDir := filepath.Join(s.DataDir, "storage", "tenant1", "test")
	if err := os.Remove(filepath.Join(accountDir, "b", blob.StorageID)); err != nil {
		t.Fatal(err)
	}
	// (b) An object that no row refers to.
	const orphan = "orphan0123456789abcdef"
	if err := os.WriteFile(filepath.Join(accountDir, "b", orphan), []byte("left behind"), 0o600); err != nil {
		t.Fatal(err)
	}

	before := s.Snapshot(t)
	rep, err := runCheck(t)
	if !errors.Is(err, errInconsistent) || !strings.Contains(err.Error(), "run `keppel server check --repair` to") {
		t.Errorf("check of a broken registry returned %v", err)
	}
	assertFindings(t, rep, blob.Digest, blob.StorageID, orphan)
	out, err := run(t, "", "server", "check")
	if !errors.Is(err, errInconsistent) || !strings.Contains(out, "missing_blob") || !strings.Contains(out, orphan) ||
		!strings.Contains(out, "2 findings") {
		t.Errorf("check printed %q, %v", out, err)
	}
	t.Logf("check printed:\n%s", out)
	if after := s.Snapshot(t); after != before {
		t.Fatalf("check without --repair changed the registry:\n%s", test.DiffLines(before, after))
	}

	// The repair records the blob as broken at once; the orphan goes one
	// grace period after it was first found.
	rep, err = runCheck(t, "--repair")
	assertFindings(t, rep, blob.Digest, blob.StorageID, orphan)
	if !errors.Is(err, errInconsistent) || rep.Unresolved() != 1 {
		t.Errorf("first repair: %v, %+v", err, rep.Findings)
	}
	deadline := time.Now().Add(20 * grace)
	for {
		time.Sleep(grace / 4)
		rep, err = runCheck(t, "--repair")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orphan was not deleted within %s: %v, %+v", 20*grace, err, rep.Findings)
		}
	}
	if len(rep.Findings) != 1 || rep.Findings[0].StorageID != orphan || !rep.Findings[0].Repaired {
		t.Errorf("last repair: %+v", rep.Findings)
	}

	// Only the blob's row and the orphan changed.
	diff := strings.TrimSpace(test.DiffLines(before, s.Snapshot(t)))
	lines := strings.Split(diff, "\n")
	if len(lines) != 3 {
		t.Errorf("the repair changed more (or less) than the blob and the orphan:\n%s", diff)
	}
	for _, l := range lines {
		if !strings.Contains(l, orphan) && !(strings.HasPrefix(l[2:], "blobs ") && strings.Contains(l, blob.Digest)) {
			t.Errorf("unexpected change: %s", l)
		}
	}
	if _, err := os.Stat(filepath.Join(accountDir, "b", orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the orphan is still there: %v", err)
	}

	rep, err = runCheck(t)
	if err != nil || len(rep.Findings) != 0 || rep.KnownBroken != 1 {
		t.Errorf("check after the repair: %v, %+v", err, rep)
	}
	out, err = run(t, "", "server", "check")
	if err != nil || !strings.Contains(out, "0 findings") || !strings.Contains(out, "1 blobs without content are recorded as broken") {
		t.Errorf("check after the repair printed %q, %v", out, err)
	}

	// The image stays visible; its broken layer is not served.
	tok := s.Token(t, "repository:test/app0:pull")
	if r := s.Do(t, http.MethodGet, "/v2/test/app0/manifests/v1", tok, nil, nil); r.Status != http.StatusOK {
		t.Errorf("manifest after the repair: %d", r.Status)
	}
	if r := s.Do(t, http.MethodGet, "/v2/test/app0/blobs/"+blob.Digest, tok, nil, nil); r.Status == http.StatusOK {
		t.Error("the broken layer is still served")
	}
}

// assertFindings checks that the report has exactly the missing blob and
// the orphan.
func assertFindings(t *testing.T, rep consistency.Report, digest, storageID, orphan string) {
	t.Helper()
	if len(rep.Findings) != 2 {
		t.Fatalf("findings = %+v, want the missing blob and the orphan", rep.Findings)
	}
	missing, orphaned := rep.Findings[0], rep.Findings[1]
	if missing.Kind != consistency.KindMissingBlob || missing.Account != "test" || missing.Digest != digest || missing.StorageID != storageID {
		t.Errorf("first finding = %+v, want the missing blob %s", missing, digest)
	}
	if orphaned.Kind != consistency.KindOrphanedBlob || orphaned.Account != "test" || orphaned.StorageID != orphan {
		t.Errorf("second finding = %+v, want the orphan %s", orphaned, orphan)
	}
}

func TestServerCheckRefusesOldSchema(t *testing.T) {
	clearConfigEnv(t)
	t.Setenv("KEPPEL_DATA_DIR", t.TempDir())
	_, err := run(t, "", "server", "check")
	if err == nil || !strings.Contains(err.Error(), "run `keppel server migrate` first") {
		t.Errorf("check of a database without schema: %v", err)
	}
}
