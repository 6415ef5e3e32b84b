package sqlite

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// TestVersionWatcher checks that a Version call that starts after another
// connection committed sees a new version, while many callers share reads.
func TestVersionWatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keppel.db")
	watched := newStoreAt(t, path)
	other := newStoreAt(t, path)
	w, err := WatchVersion(t.Context(), watched)
	if err != nil {
		t.Fatalf("WatchVersion: %v", err)
	}
	defer w.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, ok := w.Version(t.Context()); !ok {
					t.Error("Version failed")
					return
				}
			}
		})
	}
	for i := range 20 {
		before, ok := w.Version(t.Context())
		if !ok {
			t.Fatal("Version failed")
		}
		name := "acct-" + string(rune('a'+i))
		if err := other.CreateAccount(t.Context(), models.Account{Name: name, AuthTenantID: "t", CreatedAt: time.Now()}); err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		after, ok := w.Version(t.Context())
		if !ok {
			t.Fatal("Version failed")
		}
		if after == before {
			t.Fatalf("commit %d: the version stayed %d", i, before)
		}
	}
	close(stop)
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, ok := w.Version(t.Context()); ok {
		t.Error("Version after Close succeeded")
	}
}

// newStoreAt opens the database file at path, closed when the test ends.
func newStoreAt(t *testing.T, path string) db.Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
