package postgres

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/db/dbcache"
	"keppel/internal/db/dbtest"
	"keppel/internal/db/sqlcore"
	"keppel/internal/models"
)

// signalingCache tells when the listener (re)connects.
type signalingCache struct {
	*dbcache.Store
	resets chan struct{}
}

func (s signalingCache) Reset() {
	s.Store.Reset()
	select {
	case s.resets <- struct{}{}:
	default:
	}
}

// listeningCache puts a cache with a listener in front of a new store on
// the database name, and waits until the listener listens. It returns the
// cache and a channel that receives on every later (re)connection.
func listeningCache(t *testing.T, name string) (*dbcache.Store, <-chan struct{}) {
	t.Helper()
	inner, err := Open(t.Context(), databaseURL(name))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	inner.(*sqlcore.Store).DB().SetMaxOpenConns(maxConnsPerStore)
	cache := signalingCache{dbcache.New(inner, dbcache.Options{Feed: true}), make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { Listen(ctx, databaseURL(name), cache, slog.New(slog.NewTextHandler(io.Discard, nil))) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = inner.Close()
	})
	select {
	case <-cache.resets:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not connect within 10s")
	}
	return cache.Store, cache.resets
}

func TestSuiteCached(t *testing.T) {
	requireServer(t)
	dbtest.RunSuite(t, func(t *testing.T) db.Store {
		storeSlots <- struct{}{}
		t.Cleanup(func() { <-storeSlots })
		cache, _ := listeningCache(t, newDatabase(t, true))
		return cache
	})
}

// TestCacheCoherence changes the database through another store, as
// another API process would: the notifications must reach the cache.
func TestCacheCoherence(t *testing.T) {
	name := newDatabase(t, true)
	cache, _ := listeningCache(t, name)
	other, err := Open(t.Context(), databaseURL(name))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer other.Close()
	dbtest.RunCacheCoherence(t, cache, other, 5*time.Second)
	if st := cache.Stats(); st.Hits == 0 {
		t.Errorf("the coherence run had no cache hit at all: %+v", st)
	}
}

// TestListenerReconnects kills the listener's connection: the cache must be
// bypassed until the listener is back, and then work again.
func TestListenerReconnects(t *testing.T) {
	name := newDatabase(t, true)
	cache, resets := listeningCache(t, name)
	ctx := t.Context()
	if err := cache.CreateAccount(ctx, models.Account{Name: "acct", AuthTenantID: "t", CreatedAt: time.Now()}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	// The notification of the insert arrives some time after the commit.
	for i := 0; cache.Stats().Hits == 0; i++ {
		if i == 500 {
			t.Fatal("no hit within 5s before the connection was killed")
		}
		if _, err := cache.GetAccount(ctx, "acct"); err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	res, err := server.admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND query LIKE 'LISTEN%'`, name)
	if err != nil {
		t.Fatalf("terminate the listener: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("found %d listening connections, want 1", n)
	}
	select {
	case <-resets:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not reconnect within 10s")
	}
	before := cache.Stats().Hits
	for range 2 {
		if _, err := cache.GetAccount(ctx, "acct"); err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
	}
	if cache.Stats().Hits != before+1 {
		t.Errorf("after reconnecting: %d hits, want %d", cache.Stats().Hits, before+1)
	}
}
