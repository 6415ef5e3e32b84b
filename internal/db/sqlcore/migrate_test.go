package sqlcore

import (
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	good := fstest.MapFS{
		"m/0010_later.sql":   file("B"),
		"m/0002_second.sql":  file("A2"),
		"m/0001_initial.sql": file("A1"),
		"m/README.md":        file("not a migration"),
	}
	got, err := LoadMigrations(good, "m")
	if err != nil {
		t.Fatalf("LoadMigrations: %v", err)
	}
	want := []Migration{
		{Version: 1, Name: "0001_initial.sql", SQL: "A1"},
		{Version: 2, Name: "0002_second.sql", SQL: "A2"},
		{Version: 10, Name: "0010_later.sql", SQL: "B"},
	}
	if len(got) != len(want) {
		t.Fatalf("LoadMigrations: got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("migration %d: got %+v, want %+v", i, got[i], want[i])
		}
	}

	bad := map[string]fstest.MapFS{
		"no version":           {"m/initial.sql": file("x")},
		"version not a number": {"m/abc_initial.sql": file("x")},
		"version zero":         {"m/0000_initial.sql": file("x")},
		"duplicate version":    {"m/0001_a.sql": file("x"), "m/1_b.sql": file("y")},
		"missing directory":    {"other/0001_a.sql": file("x")},
	}
	for name, fsys := range bad {
		if _, err := LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: LoadMigrations succeeded", name)
		}
	}
}
