package e2e

import (
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"keppel/internal/test"
)

// gcStressEnv shortens the garbage collector's grace periods and cadences
// to seconds.
var gcStressEnv = map[string]string{
	"KEPPEL_JANITOR_GC_GRACE_PERIOD":        "2s",
	"KEPPEL_JANITOR_GC_SWEEP_INTERVAL":      "1s",
	"KEPPEL_JANITOR_STORAGE_SWEEP_INTERVAL": "2s",
}

func TestGCStressSQLite(t *testing.T) {
	t.Parallel()
	runGCStress(t, test.Options{Env: gcStressEnv})
}

func TestGCStressPostgres(t *testing.T) {
	t.Parallel()
	runGCStress(t, test.Options{Env: gcStressEnv, PostgresURL: test.PostgresDatabase(t)})
}

// gcStressDuration is how long pushes and deletes run (at least 60 s, as
// the GC's acceptance asks; KEPPEL_GC_STRESS_DURATION shortens it while
// developing).
func gcStressDuration(t *testing.T) time.Duration {
	if v := os.Getenv("KEPPEL_GC_STRESS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("KEPPEL_GC_STRESS_DURATION: %v", err)
		}
		return d
	}
	return 60 * time.Second
}

type pushedImage struct {
	ref    name.Digest
	unique v1.Hash // the digest of the layer no other image has
}

// runGCStress pushes images that share layers from several clients while
// another deletes some of them and the janitor collects garbage with
// grace periods of seconds. Afterwards every image that was not deleted
// must pull completely with correct digests, the unique layers of deleted
// images must be gone, and, once the sweeps have run, the storage must hold
// nothing that the database does not refer to.
func runGCStress(t *testing.T, opts test.Options) {
	s := test.NewServer(t, opts)
	s.RunJanitor(t)
	auth := adminAuth()
	shared := make([]v1.Layer, 4)
	for i := range shared {
		l, err := random.Layer(4096, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		shared[i] = l
	}

	var (
		mu       sync.Mutex
		live     []pushedImage
		deleted  []pushedImage
		pushes   int
		failures int
	)
	deadline := time.Now().Add(gcStressDuration(t))
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			repo := []string{"test/stress-a", "test/stress-b"}[w%2]
			for n := 0; time.Now().Before(deadline); n++ {
				unique, err := random.Layer(1024, types.OCILayer)
				if err != nil {
					t.Error(err)
					return
				}
				img, err := mutate.AppendLayers(empty.Image, shared[rand.IntN(len(shared))], unique)
				if err != nil {
					t.Error(err)
					return
				}
				tag, err := name.NewTag(s.Host+"/"+repo+":w"+string(rune('0'+w))+"-"+itoa(n), name.Insecure)
				if err != nil {
					t.Error(err)
					return
				}
				err = remote.Write(tag, img, auth)
				mu.Lock()
				pushes++
				if err != nil {
					// A layer that the collector took between the
					// client's check and its manifest push makes the
					// push fail; the client would push again.
					failures++
					mu.Unlock()
					continue
				}
				d, _ := img.Digest()
				ud, _ := unique.Digest()
				live = append(live, pushedImage{ref: tag.Context().Digest(d.String()), unique: ud})
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for time.Now().Before(deadline) {
			time.Sleep(150 * time.Millisecond)
			mu.Lock()
			if len(live) < 4 {
				mu.Unlock()
				continue
			}
			i := rand.IntN(len(live))
			victim := live[i]
			live = append(live[:i], live[i+1:]...)
			mu.Unlock()
			if err := remote.Delete(victim.ref, auth); err != nil {
				t.Errorf("delete %s: %v", victim.ref, err)
				return
			}
			mu.Lock()
			deleted = append(deleted, victim)
			mu.Unlock()
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d pushes (%d failed and were not retried), %d images deleted, %d left", pushes, failures, len(deleted), len(live))
	if len(live) == 0 || len(deleted) == 0 {
		t.Fatal("the stress run pushed or deleted nothing")
	}
	if failures*5 > pushes {
		t.Errorf("%d of %d pushes failed", failures, pushes)
	}

	// Objects that a crash could leave behind: content without a row.
	acct := filepath.Join(s.DataDir, "storage", "tenant1", "test")
	for _, f := range []string{
		filepath.Join(acct, "b", "orphan-after-crash"),
		filepath.Join(acct, "m", "stress-a", "sha256:"+strings.Repeat("0", 64)),
	} {
		if err := os.WriteFile(f, []byte("left behind"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.UnreferencedObjects(t)); n < 2 {
		t.Fatalf("the planted objects are not seen as unreferenced (%d)", n)
	}

	// Let the sweeps finish: mounts, then blobs, then unknown objects,
	// each after its grace period.
	settle := time.Now().Add(60 * time.Second)
	for {
		unknown := s.UnreferencedObjects(t)
		gone := true
		for _, d := range deleted {
			if blobExists(t, s, d.ref, d.unique) {
				gone = false
				break
			}
		}
		if len(unknown) == 0 && gone {
			break
		}
		if time.Now().After(settle) {
			t.Fatalf("60 s after the stress run: %d objects in the storage that the database does not know (%v), unique layers of deleted images gone: %v",
				len(unknown), unknown, gone)
		}
		time.Sleep(500 * time.Millisecond)
	}

	for _, p := range live {
		img, err := remote.Image(p.ref, auth)
		if err != nil {
			t.Fatalf("pull %s: %v", p.ref, err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("image %s is broken: %v", p.ref, err)
		}
	}
}

// blobExists asks the registry whether the repository of ref has the blob.
func blobExists(t *testing.T, s *test.Server, ref name.Digest, d v1.Hash) bool {
	t.Helper()
	repo := ref.Context().RepositoryStr()
	r := s.Do(t, http.MethodHead, "/v2/"+repo+"/blobs/"+d.String(), s.Token(t, "repository:"+repo+":pull"), nil, nil)
	switch r.Status {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	default:
		t.Fatalf("HEAD %s in %s: HTTP %d", d, repo, r.Status)
		return false
	}
}
