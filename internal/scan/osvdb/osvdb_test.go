package osvdb

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
)

// describe renders a finding compactly for comparisons.
func describe(f Finding) string {
	return fmt.Sprintf("%s fix=%s sev=%s score=%.1f", f.ID, f.FixedVersion, f.Severity, f.Score)
}

func describeAll(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, describe(f))
	}
	return out
}

func openFixtures(t *testing.T) *DB {
	t.Helper()
	db, err := Open(fixtureDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMatch(t *testing.T) {
	t.Parallel()
	db := openFixtures(t)
	cases := []struct {
		name  string
		query Query
		want  []string
	}{
		{
			name:  "Alpine: before the fix",
			query: Query{"Alpine:v3.10", "musl", "1.1.22-r3"},
			want:  []string{"ALPINE-CVE-2020-28928 fix=1.1.22-r4 sev=Medium score=5.5"},
		},
		{
			name:  "Alpine: the fixed version",
			query: Query{"Alpine:v3.10", "musl", "1.1.22-r4"},
		},
		{
			name:  "Alpine: after the fix",
			query: Query{"Alpine:v3.10", "musl", "1.1.24-r2"},
		},
		{
			name:  "Alpine: much older",
			query: Query{"Alpine:v3.10", "musl", "1.1.9-r0"},
			want:  []string{"ALPINE-CVE-2020-28928 fix=1.1.22-r4 sev=Medium score=5.5"},
		},
		{
			name:  "Alpine: two advisories, sorted by ID; the v3.11 one does not match",
			query: Query{"Alpine:v3.10", "openssl", "1.1.1c-r0"},
			want: []string{
				"ALPINE-CVE-2019-1547 fix=1.1.1d-r0 sev=Medium score=4.7",
				"ALPINE-CVE-2019-1563 fix=1.1.1d-r0 sev=Low score=3.7",
			},
		},
		{
			name:  "Alpine: the other release",
			query: Query{"Alpine:v3.11", "openssl", "1.1.1c-r0"},
			want:  []string{"ALPINE-CVE-2021-3449 fix=1.1.1k-r0 sev=Unknown score=0.0"},
		},
		{
			name:  "Alpine: without a release",
			query: Query{"Alpine", "openssl", "1.1.1c-r0"},
		},
		{
			name:  "Alpine: unparsable version",
			query: Query{"Alpine:v3.10", "musl", "garbage"},
		},
		{
			name:  "Alpine: unknown package",
			query: Query{"Alpine:v3.10", "busybox", "1.30.1-r2"},
		},
		{
			name:  "Debian: before the fix",
			query: Query{"Debian:10", "openssl", "1.1.1c-1"},
			want:  []string{"DSA-4539-1 fix=1.1.1d-0+deb10u1 sev=Unknown score=0.0"},
		},
		{
			name:  "Debian: the fixed version",
			query: Query{"Debian:10", "openssl", "1.1.1d-0+deb10u1"},
		},
		{
			name:  "Debian: a later security update",
			query: Query{"Debian:10", "openssl", "1.1.1d-0+deb10u2"},
		},
		{
			name:  "Debian: the other release of the same advisory",
			query: Query{"Debian:9", "openssl", "1.1.0k-1~deb9u1"},
			want:  []string{"DSA-4539-1 fix=1.1.0l-1~deb9u1 sev=Unknown score=0.0"},
		},
		{
			name:  "Debian: with an epoch above every fix",
			query: Query{"Debian:10", "openssl", "1:1.0"},
		},
		{
			name:  "Debian: unparsable version",
			query: Query{"Debian:10", "openssl", "x:1.0"},
		},
		{
			name:  "Go: introduced 0, fixed, without v",
			query: Query{"Go", "golang.org/x/text", "0.3.2"},
			want:  []string{"GO-2020-0015 fix=0.3.3 sev=Medium score=0.0"},
		},
		{
			name:  "Go: with v; the withdrawn advisory does not match",
			query: Query{"Go", "golang.org/x/text", "v0.3.0"},
			want:  []string{"GO-2020-0015 fix=0.3.3 sev=Medium score=0.0"},
		},
		{
			name:  "Go: fixed",
			query: Query{"Go", "golang.org/x/text", "v0.3.3"},
		},
		{
			name:  "Go: pseudo-version before the fix",
			query: Query{"Go", "golang.org/x/net", "v0.0.0-20220225172249-27dd8689420f"},
			want:  []string{"GO-2022-0969 fix=0.0.0-20220906165146-f3363e06e74c sev=Unknown score=0.0"},
		},
		{
			name:  "Go: unparsable version",
			query: Query{"Go", "golang.org/x/text", "not-a-version"},
		},
		{
			name:  "stdlib: first range",
			query: Query{"Go", "stdlib", "go1.18.5"},
			want:  []string{"GO-2022-0969 fix=1.18.6 sev=Unknown score=0.0"},
		},
		{
			name:  "stdlib: between the ranges",
			query: Query{"Go", "stdlib", "1.18.6"},
		},
		{
			name:  "stdlib: second range",
			query: Query{"Go", "stdlib", "v1.19.0"},
			want:  []string{"GO-2022-0969 fix=1.19.1 sev=Unknown score=0.0"},
		},
		{
			name:  "stdlib: after both",
			query: Query{"Go", "stdlib", "1.19.1"},
		},
		{
			name:  "last_affected: below introduced",
			query: Query{"Go", "example.com/lib", "0.9.0"},
		},
		{
			name:  "last_affected: introduced",
			query: Query{"Go", "example.com/lib", "1.0.0"},
			want:  []string{"TEST-LAST-AFFECTED fix= sev=Critical score=0.0"},
		},
		{
			name:  "last_affected: the last affected version",
			query: Query{"Go", "example.com/lib", "1.4.0"},
			want:  []string{"TEST-LAST-AFFECTED fix= sev=Critical score=0.0"},
		},
		{
			name:  "last_affected: above",
			query: Query{"Go", "example.com/lib", "1.4.1"},
		},
		{
			name:  "versions: listed",
			query: Query{"Go", "example.com/lib", "v2.0.1"},
			want:  []string{"TEST-VERSIONS fix= sev=Low score=3.7"},
		},
		{
			name:  "versions: not listed",
			query: Query{"Go", "example.com/lib", "2.0.2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := db.Match([]Query{tc.query})
			if !slices.Equal(describeAll(got), append([]string{}, tc.want...)) {
				t.Errorf("Match(%v):\n got %q\nwant %q", tc.query, describeAll(got), tc.want)
			}
			for _, f := range got {
				if f.Query != tc.query {
					t.Errorf("finding %s has query %v, want %v", f.ID, f.Query, tc.query)
				}
			}
		})
	}
}

func TestMatchFields(t *testing.T) {
	t.Parallel()
	db := openFixtures(t)
	q := Query{"Alpine:v3.10", "musl", "1.1.22-r3"}
	got := db.Match([]Query{q})
	want := Finding{
		ID:           "ALPINE-CVE-2020-28928",
		Aliases:      []string{"CVE-2020-28928"},
		Summary:      "In musl libc through 1.2.1, wcsnrtombs mishandles particular combinations of destination buffer size and source character limit, as demonstrated by an invalid write access (buffer overflow).",
		Severity:     SeverityMedium,
		Score:        5.5,
		Query:        q,
		FixedVersion: "1.1.22-r4",
	}
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("got  %+v\nwant %+v", got[0], want)
	}

	debian := db.Match([]Query{{"Debian:10", "openssl", "1.1.1c-1"}})
	if len(debian) != 1 || !slices.Equal(debian[0].Aliases, []string{"CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"}) {
		t.Errorf("DSA aliases: %+v", debian)
	}
	versions := db.Match([]Query{{"Go", "example.com/lib", "2.0.0"}})
	if len(versions) != 1 || !slices.Equal(versions[0].Aliases, []string{"CVE-0000-0001", "CVE-0000-0002"}) {
		t.Errorf("aliases are not sorted and unique without the ID: %+v", versions)
	}
	// The caller's copy of the aliases is its own.
	versions[0].Aliases[0] = "changed"
	if again := db.Match([]Query{{"Go", "example.com/lib", "2.0.0"}}); again[0].Aliases[0] != "CVE-0000-0001" {
		t.Error("Match shares the aliases with its callers")
	}
}

func TestMatchSortsAndDeduplicates(t *testing.T) {
	t.Parallel()
	db := openFixtures(t)
	musl := Query{"Alpine:v3.10", "musl", "1.1.22-r3"}
	openssl := Query{"Alpine:v3.10", "openssl", "1.1.1c-r0"}
	stdlib := Query{"Go", "stdlib", "1.18.0"}
	got := db.Match([]Query{stdlib, openssl, musl, openssl, {"Go", "nothing", "1.0.0"}, stdlib})
	var keys []string
	for _, f := range got {
		keys = append(keys, f.Query.Name+" "+f.ID)
	}
	want := []string{
		"musl ALPINE-CVE-2020-28928",
		"openssl ALPINE-CVE-2019-1547",
		"openssl ALPINE-CVE-2019-1563",
		"stdlib GO-2022-0969",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("got %q\nwant %q", keys, want)
	}
	if got := db.Match(nil); len(got) != 0 {
		t.Errorf("Match(nil) = %v", got)
	}
}

func TestMergeDuplicates(t *testing.T) {
	t.Parallel()
	q := Query{"Go", "m", "1.0.0"}
	in := []Finding{
		{ID: "A", Query: q, Severity: SeverityLow, Score: 3},
		{ID: "A", Query: q, Severity: SeverityHigh, Score: 7.5, FixedVersion: "1.1.0"},
		{ID: "A", Query: q, FixedVersion: "1.2.0"},
		{ID: "B", Query: q},
	}
	got := describeAll(mergeDuplicates(in))
	want := []string{"A fix=1.1.0 sev=High score=7.5", "B fix= sev=Unknown score=0.0"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	db := openFixtures(t)
	want := map[string]int{"Alpine": 4, "Debian": 1, "Go": 4}
	if got := db.Stats(); !maps.Equal(got, want) {
		t.Errorf("Stats() = %v, want %v", got, want)
	}
	db.Stats()["Alpine"] = 0
	if db.Stats()["Alpine"] != 4 {
		t.Error("Stats shares its map with callers")
	}
	if len(db.Skipped()) != 0 {
		t.Errorf("Skipped() = %v", db.Skipped())
	}
}

func TestSeverityString(t *testing.T) {
	t.Parallel()
	want := map[Severity]string{
		SeverityUnknown:  "Unknown",
		SeverityLow:      "Low",
		SeverityMedium:   "Medium",
		SeverityHigh:     "High",
		SeverityCritical: "Critical",
		Severity(42):     "Unknown",
	}
	for s, name := range want {
		if s.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), name)
		}
	}
	if !(SeverityUnknown < SeverityLow && SeverityLow < SeverityMedium && SeverityMedium < SeverityHigh && SeverityHigh < SeverityCritical) {
		t.Error("levels are not ordered")
	}
}
