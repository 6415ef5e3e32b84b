package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMigrateAndStatus(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keppel.db")
	pending, err := MigrationStatus(ctx, path)
	if err != nil || len(pending) == 0 || pending[0].Applied {
		t.Errorf("MigrationStatus of a missing file: %+v, %v", pending, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("MigrationStatus created the file: %v", err)
	}
	applied, err := Migrate(ctx, path)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(applied) == 0 || applied[0].Version != 1 {
		t.Fatalf("Migrate of a new database applied %+v", applied)
	}
	status, err := MigrationStatus(ctx, path)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	if len(status) != len(applied) {
		t.Fatalf("status has %d migrations, %d were applied", len(status), len(applied))
	}
	for _, s := range status {
		if !s.Applied || s.AppliedAt.IsZero() {
			t.Errorf("after Migrate: %s applied=%v at %v", s.Name, s.Applied, s.AppliedAt)
		}
	}
	if again, err := Migrate(ctx, path); err != nil || len(again) != 0 {
		t.Errorf("second Migrate applied %+v, %v", again, err)
	}
}
