package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"keppel/internal/db/sqlcore"
	"keppel/internal/models"
)

// TestStatementCacheNested runs a cached query again while rows of it are
// still open on the same connection (in one transaction), and fills the
// cache beyond its bound meanwhile: every result must stay right.
func TestStatementCacheNested(t *testing.T) {
	s := newStoreAt(t, filepath.Join(t.TempDir(), "keppel.db"))
	ctx := t.Context()
	for _, name := range []string{"a", "b", "c"} {
		if err := s.CreateAccount(ctx, models.Account{Name: name, AuthTenantID: "t", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := s.(*sqlcore.Store).DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT name FROM accounts WHERE name > $1 ORDER BY name`
	outer, err := tx.QueryContext(ctx, q, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var name string
		if err := outer.Scan(&name); err != nil {
			t.Fatal(err)
		}
		// The same query while the outer rows are open.
		var inner []string
		rows, err := tx.QueryContext(ctx, q, name)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			inner = append(inner, n)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s>%v", name, inner))
		// More distinct queries than the cache holds.
		for i := range maxCachedStatements + 10 {
			var v int
			if err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT $1 + %d`, i), 1).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v != i+1 {
				t.Fatalf("SELECT 1 + %d = %d", i, v)
			}
		}
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	want := "[a>[b c] b>[c] c>[]]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}
