package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/db/dbtest"
	"keppel/internal/db/sqlcore"
	"keppel/internal/models"
)

func newStore(t *testing.T) db.Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "keppel.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSuite(t *testing.T) {
	dbtest.RunSuite(t, newStore)
}

func TestSuiteInMemory(t *testing.T) {
	dbtest.RunSuite(t, func(t *testing.T) db.Store {
		s, err := Open(t.Context(), MemoryPath)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestOperatorInsert checks that an operator can create a tenant's quota and
// an account by hand, naming only the essential columns.
func TestOperatorInsert(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	_, err := s.(*sqlcore.Store).DB().ExecContext(ctx,
		`insert into quotas(auth_tenant_id, manifests) values('keppel', 10000); insert into accounts(auth_tenant_id, name) values('keppel', 'library');`)
	if err != nil {
		t.Fatalf("operator SQL: %v", err)
	}
	a, err := s.GetAccount(ctx, "library")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	if a.AuthTenantID != "keppel" || a.IsDeleting || a.IsManaged || a.IsProtected {
		t.Errorf("GetAccount: %+v", a)
	}
	if d := time.Since(a.CreatedAt); d < -time.Minute || d > time.Minute {
		t.Errorf("GetAccount: CreatedAt = %v, want about now", a.CreatedAt)
	}
	// 10000 manifests, unlimited bytes
	q, err := s.GetQuota(ctx, "keppel")
	if err != nil {
		t.Fatalf("GetQuota: %v", err)
	}
	if q != (models.Quota{AuthTenantID: "keppel", ManifestCount: 10000, SizeBytes: -1}) {
		t.Errorf("GetQuota: %+v", q)
	}
}

// TestReopen checks that data survives closing and that opening a migrated
// database applies nothing twice.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "dir with spaces?and#marks%20", "keppel.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.CreateAccount(ctx, models.Account{Name: "library", AuthTenantID: "t"}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not at the given path: %v", err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer s.Close()
	if _, err := s.GetAccount(ctx, "library"); err != nil {
		t.Fatalf("GetAccount after reopening: %v", err)
	}
	var versions int
	if err := s.(*sqlcore.Store).DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	migrations, err := sqlcore.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if versions != len(migrations) {
		t.Fatalf("schema_migrations has %d rows, want %d", versions, len(migrations))
	}
}

// TestConcurrentOpen opens the same new database from several goroutines at
// once, as several processes might: all must succeed.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keppel.db")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(t.Context(), path)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestNewerSchema checks that a program refuses a database migrated by a
// newer version of itself.
func TestNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keppel.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_, err = s.(*sqlcore.Store).DB().ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, path); err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database with a newer schema")
	}
}

// TestForeignKeysEnforced checks the constraints that the database itself
// must enforce, bypassing the store's own checks.
func TestForeignKeysEnforced(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	sqlDB := s.(*sqlcore.Store).DB()
	_, err := sqlDB.ExecContext(ctx, `INSERT INTO repos (account_name, name) VALUES ('missing', 'x')`)
	if classify(err) != sqlcore.KindForeignKey {
		t.Fatalf("insert with missing account: got %v, want a foreign key violation", err)
	}
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO accounts (name, auth_tenant_id) VALUES ('a', 't'), ('a', 't')`)
	if classify(err) != sqlcore.KindUnique {
		t.Fatalf("duplicate account: got %v, want a unique violation", err)
	}
}

// TestTwoStoresOneFile has two stores on the same file write at the same
// time, as two processes would: they do not share the in-process write
// queue, so this relies on BEGIN IMMEDIATE and the busy timeout.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keppel.db")
	stores := make([]db.Store, 2)
	for i := range stores {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		defer s.Close()
		stores[i] = s
	}
	if err := stores[0].CreateAccount(ctx, models.Account{Name: "library", AuthTenantID: "t"}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}

	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	blobIDs := make([]int64, workers)
	for i := range workers {
		wg.Go(func() {
			s := stores[i%2]
			repo, err := s.FindOrCreateRepository(ctx, "library", fmt.Sprintf("repo-%d", i%3))
			if err != nil {
				errs[i] = err
				return
			}
			b, _, err := s.CreateBlobAndMount(ctx, models.Blob{
				AccountName: "library", Digest: "sha256:" + strings.Repeat("ab", 32), SizeBytes: 1,
				StorageID: fmt.Sprintf("s%d", i), PushedAt: time.Unix(1_700_000_000, 0),
			}, repo.ID)
			blobIDs[i] = b.ID
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, id := range blobIDs {
		if id != blobIDs[0] {
			t.Fatalf("worker %d got blob %d, worker 0 got %d", i, id, blobIDs[0])
		}
	}
}

// TestClock checks that the injected clock supplies missing creation times.
func TestClock(t *testing.T) {
	ctx := t.Context()
	now := time.Unix(1_234_567_890, 0).UTC()
	s, err := Open(ctx, MemoryPath, sqlcore.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.CreateAccount(ctx, models.Account{Name: "library", AuthTenantID: "t"}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	a, err := s.GetAccount(ctx, "library")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	if !a.CreatedAt.Equal(now) {
		t.Fatalf("CreatedAt = %v, want %v", a.CreatedAt, now)
	}
	if err := s.PutUser(ctx, models.User{Name: "admin", PasswordHash: "h"}); err != nil {
		t.Fatalf("PutUser: %v", err)
	}
	u, err := s.GetUser(ctx, "admin")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if !u.CreatedAt.Equal(now) {
		t.Fatalf("user CreatedAt = %v, want %v", u.CreatedAt, now)
	}
}

// TestDurableCommits checks that every connection syncs the WAL on commit
// (synchronous=FULL), so that an acknowledged write survives a power loss.
func TestDurableCommits(t *testing.T) {
	s := newStore(t)
	sqlDB := s.(*sqlcore.Store).DB()
	// Several connections at once, so that more than one is checked.
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		c, err := sqlDB.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		var level int
		if err := c.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&level); err != nil {
			t.Fatal(err)
		}
		if level != 2 {
			t.Errorf("connection %d: synchronous = %d, want 2 (FULL)", i, level)
		}
	}
}
