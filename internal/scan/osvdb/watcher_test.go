package osvdb

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestWatcher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "Alpine", "all.zip"), map[string]string{"ALPINE-CVE-2020-28928.json": alpineMusl})
	w, err := NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	musl := Query{"Alpine:v3.10", "musl", "1.1.22-r3"}
	text := Query{"Go", "golang.org/x/text", "0.3.0"}
	count := func(db *DB) int { return len(db.Match([]Query{musl, text})) }

	first := w.DB()
	if count(first) != 1 {
		t.Fatalf("initial DB: %v", first.Stats())
	}
	check := func(step string, wantReloaded, wantErr bool) {
		t.Helper()
		reloaded, err := w.Check(ctx)
		if reloaded != wantReloaded || (err != nil) != wantErr {
			t.Fatalf("%s: Check() = %t, %v; want %t, error %t", step, reloaded, err, wantReloaded, wantErr)
		}
	}
	check("unchanged", false, false)
	if w.DB() != first {
		t.Fatal("DB replaced without a change")
	}

	// A new file is picked up; the old DB stays usable for its readers.
	writeFile(t, filepath.Join(dir, "Go", "GO-2020-0015.json"), goText)
	check("new file", true, false)
	second := w.DB()
	if count(second) != 2 || count(first) != 1 {
		t.Fatalf("after the new file: %d findings (old DB %d)", count(second), count(first))
	}
	check("unchanged again", false, false)

	// A broken file keeps the DB, and the error is reported until the
	// files change.
	broken := filepath.Join(dir, "Go", "broken.json")
	writeFile(t, broken, `{"id": `)
	_, err1 := w.Check(ctx)
	_, err2 := w.Check(ctx)
	if err1 == nil || err1 != err2 {
		t.Fatalf("broken file: Check() = %v, then %v; want the same error, not a second load", err1, err2)
	}
	if w.DB() != second {
		t.Fatal("broken file replaced the DB")
	}

	// Repaired: a complete document is loaded.
	writeFile(t, broken, goHTTP2)
	check("repaired", true, false)
	if got := w.DB().Match([]Query{{"Go", "stdlib", "1.19.0"}}); len(got) != 1 {
		t.Fatalf("after the repair: %v", got)
	}

	// Removing a file is a change as well.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	check("removed", true, false)
	if got := w.DB().Match([]Query{{"Go", "stdlib", "1.19.0"}}); len(got) != 0 {
		t.Fatalf("after the removal: %v", got)
	}

	// A file of the same name and size but a new time is reloaded.
	goPath := filepath.Join(dir, "Go", "GO-2020-0015.json")
	fi, err := os.Stat(goPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(goPath, fi.ModTime(), fi.ModTime().Add(1e9)); err != nil {
		t.Fatal(err)
	}
	check("touched", true, false)

	// Hidden files are not looked at.
	writeFile(t, filepath.Join(dir, "Go", ".GO-2022-0969.json.tmp"), `{"id": `)
	check("hidden file", false, false)

	// The directory disappears: the DB stays.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	check("directory gone", false, true)
	if count(w.DB()) != 2 {
		t.Fatal("DB lost with the directory")
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestWatcherCanceled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Go", "GO-2020-0015.json"), goText)
	if reloaded, err := w.Check(canceled()); reloaded || err == nil {
		t.Fatalf("Check(canceled) = %t, %v", reloaded, err)
	}
	if reloaded, err := w.Check(context.Background()); !reloaded || err != nil {
		t.Fatalf("Check() = %t, %v", reloaded, err)
	}
}

func TestNewWatcherErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewWatcher(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("NewWatcher(missing dir) succeeded")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Go", "broken.json"), "{")
	if _, err := NewWatcher(dir, nil); err == nil {
		t.Error("NewWatcher(broken dir) succeeded")
	}
}

// Readers match while the watcher reloads (run with -race).
func TestWatcherConcurrentReaders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "Alpine", "all.zip"), map[string]string{"ALPINE-CVE-2020-28928.json": alpineMusl})
	w, err := NewWatcher(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if got := w.DB().Match([]Query{{"Alpine:v3.10", "musl", "1.1.22-r3"}}); len(got) != 1 {
					t.Errorf("reader got %v", got)
					return
				}
			}
		}()
	}
	docs := []string{goText, goHTTP2, goLastAffected, goVersions}
	for i, doc := range docs {
		writeFile(t, filepath.Join(dir, "Go", "doc"+string(rune('a'+i))+".json"), doc)
		if reloaded, err := w.Check(context.Background()); !reloaded || err != nil {
			t.Errorf("Check() = %t, %v", reloaded, err)
		}
		// Concurrent checks are serialised.
		var cw sync.WaitGroup
		for range 2 {
			cw.Go(func() {
				if _, err := w.Check(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		cw.Wait()
	}
	close(done)
	wg.Wait()
	if got := w.DB().Stats()["Go"]; got != len(docs) {
		t.Errorf("Go advisories: %d, want %d", got, len(docs))
	}
}
