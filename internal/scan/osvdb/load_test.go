package osvdb

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOpenEmptyAndMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(empty dir): %v", err)
	}
	if len(db.Stats()) != 0 || len(db.Match([]Query{{"Alpine:v3.10", "musl", "1.1.22-r3"}})) != 0 {
		t.Errorf("empty dir gives a non-empty DB: %v", db.Stats())
	}

	// An ecosystem folder without documents is counted with zero.
	if err := os.Mkdir(filepath.Join(dir, "Alpine"), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := db.Stats(); len(got) != 1 || got["Alpine"] != 0 {
		t.Errorf("Stats() = %v", got)
	}

	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing dir) = %v, want an error wrapping ErrNotExist", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		setup     func(t *testing.T, dir string)
		wantFile  string
		malformed bool
	}{
		{
			name: "bad JSON in an archive",
			setup: func(t *testing.T, dir string) {
				writeZip(t, filepath.Join(dir, "Alpine", "all.zip"), map[string]string{
					"ALPINE-CVE-2020-28928.json": alpineMusl,
					"BROKEN.json":                `{"id": "BROKEN", "affected": [`,
				})
			},
			wantFile:  "Alpine/all.zip:BROKEN.json",
			malformed: true,
		},
		{
			name: "bad JSON in a plain file",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "Go", "broken.json"), "not json")
			},
			wantFile:  "Go/broken.json",
			malformed: true,
		},
		{
			name: "wrong type",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "Go", "types.json"), `{"id": "X", "affected": [{"versions": "1.0.0"}]}`)
			},
			wantFile:  "Go/types.json",
			malformed: true,
		},
		{
			name: "event version of the wrong type",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "Go", "event.json"), `{"id": "X", "affected": [{"ranges": [{"type": "SEMVER", "events": [{"introduced": 0}]}]}]}`)
			},
			wantFile:  "Go/event.json",
			malformed: true,
		},
		{
			name: "no id",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "Go", "noid.json"), `{"summary": "x"}`)
			},
			wantFile:  "Go/noid.json",
			malformed: true,
		},
		{
			name: "not a zip archive",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "Debian", "all.zip"), "PK but not really")
			},
			wantFile: "Debian/all.zip",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.setup(t, dir)
			db, err := Open(dir)
			if err == nil {
				t.Fatalf("Open succeeded with %v", db.Stats())
			}
			if !strings.Contains(err.Error(), tc.wantFile) {
				t.Errorf("error %q does not name %s", err, tc.wantFile)
			}
			if errors.Is(err, ErrMalformedDocument) != tc.malformed {
				t.Errorf("errors.Is(%q, ErrMalformedDocument) = %t", err, !tc.malformed)
			}
		})
	}
}

func TestOpenSkipsLargeDocuments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Valid JSON, padded past the limit.
	large := `{"id": "LARGE",` + strings.Repeat(" ", MaxDocumentSize) + `"summary": "x"}`
	writeZip(t, filepath.Join(dir, "Alpine", "all.zip"), map[string]string{
		"ALPINE-CVE-2020-28928.json": alpineMusl,
		"LARGE.json":                 large,
	})
	writeFile(t, filepath.Join(dir, "Go", "LARGE.json"), large)
	writeFile(t, filepath.Join(dir, "Go", "GO-2020-0015.json"), goText)
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, s := range db.Skipped() {
		files = append(files, s.File)
		if !strings.Contains(s.Reason, "larger than") {
			t.Errorf("reason for %s: %q", s.File, s.Reason)
		}
	}
	if want := []string{"Alpine/all.zip:LARGE.json", "Go/LARGE.json"}; !slices.Equal(files, want) {
		t.Errorf("skipped %q, want %q", files, want)
	}
	if got := db.Stats(); got["Alpine"] != 1 || got["Go"] != 1 {
		t.Errorf("Stats() = %v", got)
	}
}

func TestOpenPlainDocumentsReplaceArchived(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "Go", "all.zip"), map[string]string{
		"GO-2020-0015.json": goText,
		"GO-2022-0969.json": goHTTP2,
	})
	// The plain document withdraws GO-2020-0015.
	writeFile(t, filepath.Join(dir, "Go", "GO-2020-0015.json"),
		strings.Replace(goText, `"id": "GO-2020-0015",`, `"id": "GO-2020-0015", "withdrawn": "2024-01-01T00:00:00Z",`, 1))
	// And moves the fix of GO-2022-0969's first range.
	writeFile(t, filepath.Join(dir, "Go", "GO-2022-0969.json"), strings.Replace(goHTTP2, `"1.18.6"`, `"1.18.7"`, 1))
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := describeAll(db.Match([]Query{{"Go", "golang.org/x/text", "0.3.0"}, {"Go", "stdlib", "1.18.6"}}))
	if want := []string{"GO-2022-0969 fix=1.18.7 sev=Unknown score=0.0"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := db.Stats(); got["Go"] != 1 {
		t.Errorf("Stats() = %v", got)
	}
}

func TestOpenFollowsSymlinkedEcosystems(t *testing.T) {
	t.Parallel()
	real := t.TempDir()
	writeZip(t, filepath.Join(real, "all.zip"), map[string]string{"DSA-4539-1.json": debianOpenSSL})
	dir := t.TempDir()
	if err := os.Symlink(real, filepath.Join(dir, "Debian")); err != nil {
		t.Skip("symbolic links:", err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := db.Match([]Query{{"Debian:10", "openssl", "1.1.1c-1"}}); len(got) != 1 {
		t.Errorf("got %v", got)
	}
}

func TestSummaryOf(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxSummaryLength) // two bytes each
	cases := []struct {
		doc  osvDocument
		want string
	}{
		{osvDocument{Summary: " s ", Details: "d"}, "s"},
		{osvDocument{Details: "\n first \nsecond"}, "first"},
		{osvDocument{}, ""},
		{osvDocument{Details: long}, strings.Repeat("é", maxSummaryLength/2) + "…"},
		{osvDocument{Details: "a" + long}, "a" + strings.Repeat("é", maxSummaryLength/2-1) + "…"},
	}
	for _, tc := range cases {
		if got := summaryOf(&tc.doc); got != tc.want {
			t.Errorf("summaryOf(%+v) = %q, want %q", tc.doc, got, tc.want)
		}
	}
}

func TestCompileWithdrawn(t *testing.T) {
	t.Parallel()
	doc, err := decodeDocument([]byte(goWithdrawn))
	if err != nil {
		t.Fatal(err)
	}
	if c := compile(doc, interner{}); !c.withdrawn || len(c.entries) != 0 {
		t.Errorf("compile(withdrawn) = %+v", c)
	}
}
