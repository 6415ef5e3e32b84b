package e2e

import (
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"keppel/internal/test"
)

// TestProcessesShareChanges runs two API processes on one PostgreSQL
// database and one storage directory, as a load balancer would spread
// clients over them. Each process caches what pulls read; a tag that one
// process moves or deletes must show in the other one's pulls (through the
// database's change notifications), not only after a restart.
func TestProcessesShareChanges(t *testing.T) {
	t.Parallel()
	dbURL := test.PostgresDatabase(t)
	storage := filepath.Join(t.TempDir(), "storage")
	env := []string{"KEPPEL_DB_URL=" + dbURL, "KEPPEL_STORAGE_PATH=" + storage}
	a := test.StartKeppel(t, env...)
	b := test.StartKeppel(t, env...)
	a.CreateAccount(t, "shared", "tenant")

	refAt := func(p *test.Process) name.Reference {
		r, err := name.ParseReference(p.Addr+"/shared/app:latest", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	push := func() v1.Hash {
		img, err := random.Image(1024, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(refAt(a), img, adminAuth()); err != nil {
			t.Fatalf("push through process A: %v", err)
		}
		d, _ := img.Digest()
		return d
	}
	// pulledAt returns the digest that process B serves for the tag.
	pulledAt := func() (v1.Hash, error) {
		desc, err := remote.Head(refAt(b), adminAuth())
		if err != nil {
			return v1.Hash{}, err
		}
		if _, err := remote.Get(refAt(b), adminAuth()); err != nil {
			return v1.Hash{}, err
		}
		return desc.Digest, nil
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("process B did not show within 5s that %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	first := push()
	// Pull several times, so that B serves the tag from its cache.
	for range 3 {
		waitFor("the first image was pushed", func() bool {
			d, err := pulledAt()
			return err == nil && d == first
		})
	}
	second := push()
	waitFor("process A moved the tag", func() bool {
		d, err := pulledAt()
		return err == nil && d == second
	})

	if err := remote.Delete(refAt(a), adminAuth()); err != nil {
		t.Fatalf("delete the tag through process A: %v", err)
	}
	waitFor("process A deleted the tag", func() bool {
		_, err := pulledAt()
		var terr *transport.Error
		return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
	})
}
