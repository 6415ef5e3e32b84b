package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"keppel/internal/test"
)

func TestServerMigratePostgres(t *testing.T) {
	clearConfigEnv(t)
	t.Setenv("KEPPEL_DATA_DIR", t.TempDir())
	t.Setenv("KEPPEL_DB_URL", test.PostgresDatabase(t))
	testServerMigrate(t)
}

func TestServerMigrateSQLite(t *testing.T) {
	clearConfigEnv(t)
	dir := t.TempDir()
	t.Setenv("KEPPEL_DATA_DIR", dir)
	t.Setenv("KEPPEL_DB_SQLITE_PATH", filepath.Join(dir, "meta", "keppel.db"))
	testServerMigrate(t)
}

func testServerMigrate(t *testing.T) {
	// A fresh database has every migration pending, and gets them all.
	out, err := run(t, "", "server", "migrate", "--status")
	if err != nil || !strings.Contains(out, "pending") || !strings.Contains(out, "run `keppel server migrate` to apply them") {
		t.Errorf("migrate --status of a fresh database printed %q, %v", out, err)
	}
	out, err = run(t, "", "server", "migrate", "--output", "json")
	if err != nil {
		t.Fatalf("migrate: %v (%s)", err, out)
	}
	var applied []migrationJSON
	if err := json.Unmarshal([]byte(out), &applied); err != nil {
		t.Fatalf("migrate printed %q: %v", out, err)
	}
	if len(applied) < 2 || applied[0].Version != 1 || !strings.HasPrefix(applied[0].Name, "0001_") {
		t.Fatalf("migrate of a fresh database applied %+v", applied)
	}

	// Then the schema is current.
	out, err = run(t, "", "server", "migrate")
	if err != nil || !strings.Contains(out, "the database schema is current: no migration was applied") {
		t.Errorf("second migrate printed %q, %v", out, err)
	}
	out, err = run(t, "", "server", "migrate", "--status", "--output", "json")
	if err != nil {
		t.Fatalf("migrate --status: %v (%s)", err, out)
	}
	var status []migrationJSON
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatalf("migrate --status printed %q: %v", out, err)
	}
	if len(status) != len(applied) {
		t.Errorf("--status lists %d migrations, %d were applied", len(status), len(applied))
	}
	for _, m := range status {
		if !m.Applied || m.AppliedAt == "" {
			t.Errorf("--status: %+v", m)
		}
	}
	out, err = run(t, "", "server", "migrate", "--status")
	if err != nil || !strings.Contains(out, applied[0].Name) || !strings.Contains(out, "the database schema is current") {
		t.Errorf("migrate --status printed %q, %v", out, err)
	}
}
