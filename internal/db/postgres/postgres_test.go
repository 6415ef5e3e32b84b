package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"keppel/internal/db"
	"keppel/internal/db/dbtest"
	"keppel/internal/db/sqlcore"
	"keppel/internal/models"
)

const defaultTestURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Tests run in parallel; these bound how many connections they use at once,
// to stay well within the server's max_connections on machines with many
// cores.
const (
	maxOpenStores    = 8
	maxConnsPerStore = 5
)

// storeSlots limits the number of stores open at the same time.
var storeSlots = make(chan struct{}, maxOpenStores)

// server is the PostgreSQL server that the tests of this package use. Every
// test gets a database of its own, copied from a template database that has
// the schema already (much faster than migrating each time).
var server struct {
	baseURL  string
	admin    *sql.DB // connected to the database of baseURL
	template string  // name of the template database
	err      error   // why the server cannot be used, if it cannot
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	server.baseURL = os.Getenv("KEPPEL_TEST_POSTGRES_URL")
	if server.baseURL == "" {
		server.baseURL = defaultTestURL
	}
	if err := setUpServer(); err != nil {
		server.err = err
		return m.Run() // every test reports the problem (or skips)
	}
	code := m.Run()
	if err := dropDatabase(server.template); err != nil {
		fmt.Fprintf(os.Stderr, "drop template database: %v\n", err)
		code = 1
	}
	server.admin.Close()
	return code
}

func setUpServer() error {
	cfg, err := pgx.ParseConfig(server.baseURL)
	if err != nil {
		return errors.New("cannot parse KEPPEL_TEST_POSTGRES_URL")
	}
	server.admin = stdlib.OpenDB(*cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pingCtx, cancelPing := context.WithTimeout(ctx, 5*time.Second)
	defer cancelPing()
	if err := server.admin.PingContext(pingCtx); err != nil {
		server.admin.Close()
		return fmt.Errorf("cannot reach PostgreSQL at %s:%d: %w", cfg.Host, cfg.Port, err)
	}

	server.template = randomName("keppel_test_tmpl_")
	if _, err := server.admin.ExecContext(ctx, `CREATE DATABASE `+server.template); err != nil {
		server.admin.Close()
		return fmt.Errorf("create template database: %w", err)
	}
	s, err := Open(ctx, databaseURL(server.template))
	if err == nil {
		err = s.Close()
	}
	if err != nil {
		_ = dropDatabase(server.template)
		server.admin.Close()
		return fmt.Errorf("migrate template database: %w", err)
	}
	return nil
}

// requireServer fails the test if PostgreSQL cannot be used, or skips it if
// KEPPEL_TEST_SKIP_POSTGRES=1.
func requireServer(t *testing.T) {
	t.Helper()
	if server.err == nil {
		return
	}
	if os.Getenv("KEPPEL_TEST_SKIP_POSTGRES") == "1" {
		t.Skipf("skipping PostgreSQL tests (KEPPEL_TEST_SKIP_POSTGRES=1): %v", server.err)
	}
	t.Fatalf("%v\nStart PostgreSQL (or point KEPPEL_TEST_POSTGRES_URL at a server), "+
		"or set KEPPEL_TEST_SKIP_POSTGRES=1 to skip these tests.", server.err)
}

// randomName returns prefix followed by random hex digits: a valid,
// unquoted PostgreSQL identifier.
func randomName(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails
	return prefix + hex.EncodeToString(b)
}

// databaseURL returns the connection string of the server's database name.
func databaseURL(name string) string {
	if u, err := url.Parse(server.baseURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return server.baseURL + " dbname=" + name // keyword/value form: the last value wins
}

// newDatabase creates an empty database (or a copy of the template) that is
// dropped when the test ends, and returns its name.
func newDatabase(t *testing.T, fromTemplate bool) string {
	t.Helper()
	requireServer(t)
	name := randomName("keppel_test_")
	stmt := `CREATE DATABASE ` + name
	if fromTemplate {
		stmt += ` TEMPLATE ` + server.template
	}
	if _, err := server.admin.ExecContext(t.Context(), stmt); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}

func dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := server.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	return err
}

// newStore opens a store on a fresh database with the schema in place.
func newStore(t *testing.T) db.Store {
	t.Helper()
	requireServer(t)
	storeSlots <- struct{}{}
	t.Cleanup(func() { <-storeSlots })
	name := newDatabase(t, true)
	s, err := Open(t.Context(), databaseURL(name))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.(*sqlcore.Store).DB().SetMaxOpenConns(maxConnsPerStore)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSuite(t *testing.T) {
	requireServer(t)
	dbtest.RunSuite(t, newStore)
}

// TestOperatorInsert checks that an operator can create a tenant's quota and
// an account by hand, naming only the essential columns.
func TestOperatorInsert(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	_, err := s.(*sqlcore.Store).DB().ExecContext(ctx,
		`insert into quotas(auth_tenant_id, manifests) values('keppel', 10000); insert into accounts(auth_tenant_id, name) values('keppel', 'library');`)
	if err != nil {
		t.Fatalf("operator SQL: %v", err)
	}
	a, err := s.GetAccount(ctx, "library")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	if a.Name != "library" || a.AuthTenantID != "keppel" || a.IsDeleting || a.RBACPoliciesJSON != "" ||
		a.GCPoliciesJSON != "" || a.TagPoliciesJSON != "" || a.ValidationRule != "" || a.PlatformFilterJSON != "" ||
		a.IsManaged || a.IsProtected {
		t.Errorf("GetAccount: %+v", a)
	}
	// 10000 manifests, unlimited bytes
	q, err := s.GetQuota(ctx, "keppel")
	if err != nil {
		t.Fatalf("GetQuota: %v", err)
	}
	if q != (models.Quota{AuthTenantID: "keppel", ManifestCount: 10000, SizeBytes: -1}) {
		t.Errorf("GetQuota: %+v", q)
	}
	if a.CreatedAt.Before(before) || a.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("GetAccount: CreatedAt = %v, want about now", a.CreatedAt)
	}
	if _, err := s.FindOrCreateRepository(ctx, "library", "alpine"); err != nil {
		t.Errorf("FindOrCreateRepository in hand-made account: %v", err)
	}
}

// TestBytewiseCollation checks that every text column sorts bytewise, which
// the suite alone cannot prove on a server whose default collation happens
// to be bytewise already.
func TestBytewiseCollation(t *testing.T) {
	s := newStore(t)
	rows, err := s.(*sqlcore.Store).DB().QueryContext(t.Context(), `
		SELECT table_name, column_name, COALESCE(collation_name, '')
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type = 'text' AND table_name <> 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var table, column, collation string
		if err := rows.Scan(&table, &column, &collation); err != nil {
			t.Fatal(err)
		}
		n++
		if collation != "C" {
			t.Errorf("%s.%s has collation %q, want \"C\"", table, column, collation)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("found only %d text columns", n)
	}
}

// TestConcurrentMigration opens a new, empty database from several
// goroutines at once, as several processes starting together would.
func TestConcurrentMigration(t *testing.T) {
	name := newDatabase(t, false)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(t.Context(), databaseURL(name))
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

	s, err := Open(t.Context(), databaseURL(name))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	var versions int
	err = s.(*sqlcore.Store).DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&versions)
	if err != nil {
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

// TestErrorClassification checks classify against errors of the server.
func TestErrorClassification(t *testing.T) {
	s := newStore(t)
	sqlDB := s.(*sqlcore.Store).DB()
	ctx := t.Context()
	cases := []struct {
		stmt string
		want sqlcore.ErrorKind
	}{
		{`INSERT INTO repos (account_name, name) VALUES ('missing', 'x')`, sqlcore.KindForeignKey},
		{`INSERT INTO accounts (name, auth_tenant_id) VALUES ('a', 't'), ('a', 't')`, sqlcore.KindUnique},
		{`SELECT nonsense FROM accounts`, sqlcore.KindOther},
	}
	for _, c := range cases {
		_, err := sqlDB.ExecContext(ctx, c.stmt)
		if got := classify(err); got != c.want {
			t.Errorf("%s: classify(%v) = %v, want %v", c.stmt, err, got, c.want)
		}
	}
}

// TestBadURL checks that Open does not echo the URL (it may hold a password).
func TestBadURL(t *testing.T) {
	_, err := Open(t.Context(), "postgres://user:secret@[bad")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open with a bad URL: %v", err)
	}
}
