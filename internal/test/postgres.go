package test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// PostgresDatabase creates an empty database on the PostgreSQL server of
// KEPPEL_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432), drops it when
// the test ends, and returns its URL.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv("KEPPEL_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "keppel_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating database (is PostgreSQL running?): %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("dropping database: %v", err)
		}
	})
	return strings.Replace(base, "/postgres?", "/"+name+"?", 1)
}
