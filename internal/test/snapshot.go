package test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The SQLite driver, to read the metadata of embedded test servers.
	_ "modernc.org/sqlite"
)

// snapshotTables are the tables whose content makes up the registry's state.
var snapshotTables = []string{
	"accounts", "quotas", "repos", "blobs", "blob_mounts", "uploads", "manifests",
	"manifest_contents", "manifest_blob_refs", "manifest_manifest_refs", "tags", "users",
	"tenant_roles", "api_keys", "tenant_usage", "audit_events",
}

// Snapshot returns a textual dump of the server's whole state: every row
// of the metadata tables (on SQLite or PostgreSQL) and every file in
// storage with its size. Two equal snapshots mean that nothing changed.
func (s *Server) Snapshot(t testing.TB) string {
	t.Helper()
	s.WaitForManifestCopies(t)
	var b strings.Builder
	var (
		db  *sql.DB
		err error
	)
	if s.postgresURL != "" {
		db, err = sql.Open("pgx", s.postgresURL)
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, "keppel.db")+"?mode=ro")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, table := range snapshotTables {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1, 2")
		if err != nil {
			t.Fatalf("snapshot of %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %v\n", table, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	root := filepath.Join(s.DataDir, "storage")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(&b, "file %s %d\n", rel, info.Size())
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of storage: %v", err)
	}
	return b.String()
}

// DiffLines lists the lines that only one of two snapshots has.
func DiffLines(before, after string) string {
	count := map[string]int{}
	for _, l := range strings.Split(before, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(after, "\n") {
		count[l]--
	}
	var b strings.Builder
	for l, n := range count {
		switch {
		case n > 0:
			fmt.Fprintf(&b, "- %.300s\n", l)
		case n < 0:
			fmt.Fprintf(&b, "+ %.300s\n", l)
		}
	}
	return b.String()
}

// WaitForManifestCopies waits until the background writer has written the
// storage copy of every manifest (and recorded that it did), so that its
// writes do not show up in a later snapshot.
func (s *Server) WaitForManifestCopies(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending, err := s.srv.Store().ListManifestsNotInStorage(context.Background(), time.Now().Add(time.Hour), 1)
		if err != nil {
			t.Fatalf("listing manifests without a storage copy: %v", err)
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("manifest %s has no storage copy after 10s", pending[0].Digest)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
