package test

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RunJanitor runs the server's background jobs until the test ends.
func (s *Server) RunJanitor(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.srv.RunJanitor(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// UnreferencedObjects lists the finished blobs and manifest copies in the
// server's filesystem storage that its database does not refer to (by
// path relative to the storage root).
func (s *Server) UnreferencedObjects(t testing.TB) []string {
	t.Helper()
	var conn *sql.DB
	var err error
	if s.postgresURL != "" {
		conn, err = sql.Open("pgx", s.postgresURL)
	} else {
		conn, err = sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, "keppel.db")+"?mode=ro")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	known := map[string]bool{}
	for _, q := range []string{
		`SELECT a.auth_tenant_id || '/' || a.name || '/b/' || b.storage_id
			FROM blobs b JOIN accounts a ON a.name = b.account_name`,
		`SELECT a.auth_tenant_id || '/' || a.name || '/m/' || r.name || '/' || m.digest
			FROM manifests m JOIN repos r ON r.id = m.repo_id JOIN accounts a ON a.name = r.account_name`,
	} {
		rows, err := conn.Query(q)
		if err != nil {
			t.Fatalf("listing what the database knows: %v", err)
		}
		for rows.Next() {
			var path string
			if err := rows.Scan(&path); err != nil {
				t.Fatal(err)
			}
			known[path] = true
		}
		rows.Close()
	}

	root := filepath.Join(s.DataDir, "storage")
	var unknown []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		// <tenant>/<account>/<b|m|u>/…; uploads in progress are not objects.
		if parts := strings.SplitN(rel, string(filepath.Separator), 4); len(parts) < 4 || parts[2] == "u" {
			return nil
		}
		if !known[filepath.ToSlash(rel)] {
			unknown = append(unknown, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return unknown
}
