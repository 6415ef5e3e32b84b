// Package osvdb is an offline database of security advisories in the OSV
// format (https://ossf.github.io/osv-schema/) and the matcher that finds the
// advisories affecting installed packages.
//
// The database is a directory in the layout in which osv.dev publishes its
// exports: one folder per ecosystem, holding an all.zip with one OSV JSON
// document per advisory (<dir>/Alpine/all.zip, <dir>/Debian/all.zip,
// <dir>/Go/all.zip, …). Plain <dir>/<Ecosystem>/*.json documents are read as
// well. Only what matching needs is kept in memory, indexed by ecosystem and
// package name.
//
// Versions are compared by the rules of each ecosystem (Alpine's apk, Debian's
// dpkg, semantic versions for Go, …), as implemented by osv-scalibr's
// semantic package.
package osvdb

import (
	"cmp"
	"maps"
	"slices"
)

// Query is one installed package.
type Query struct {
	// Ecosystem is written as in OSV's affected[].package.ecosystem,
	// including the release where the ecosystem has one: "Alpine:v3.10",
	// "Debian:10", "Go".
	Ecosystem string
	// Name is the OSV package name: the source package for Alpine and
	// Debian, the module path (or "stdlib" for the standard library) for Go.
	Name string
	// Version is the installed version in the ecosystem's syntax:
	// "1.1.24-r2", "1.1.1c-1", "v1.2.3" or "1.2.3" for Go.
	Version string
}

func compareQueries(a, b Query) int {
	return cmp.Or(
		cmp.Compare(a.Ecosystem, b.Ecosystem),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
	)
}

// Severity is the severity of an advisory. Levels are ordered: a greater
// value is more severe.
type Severity int

// The severity levels.
const (
	SeverityUnknown Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

// String returns the level's name: "Unknown", "Low", "Medium", "High" or
// "Critical".
func (s Severity) String() string {
	switch s {
	case SeverityLow:
		return "Low"
	case SeverityMedium:
		return "Medium"
	case SeverityHigh:
		return "High"
	case SeverityCritical:
		return "Critical"
	default:
		return "Unknown"
	}
}

// Finding is an advisory that affects a queried package.
type Finding struct {
	// ID is the advisory's ID ("ALPINE-CVE-2020-28928", "DSA-4539-1",
	// "GO-2023-1234").
	ID string
	// Aliases are the advisory's aliases and upstream IDs, sorted.
	Aliases []string
	// Summary is the advisory's summary, or the first line of its details
	// when it has no summary.
	Summary string
	// Severity is the highest severity that the advisory states for the
	// package (see Score).
	Severity Severity
	// Score is the highest CVSS base score computed from the advisory's
	// vectors, or 0 if there was none. When it is set, Severity is its
	// qualitative rating; otherwise Severity comes from the advisory's
	// severity labels (LOW, MODERATE, HIGH, CRITICAL).
	Score float64
	// Query is the query that the advisory matched, as given.
	Query Query
	// FixedVersion is the first fixed version of the matching range, or ""
	// if no fix has been released (or the version was only listed).
	FixedVersion string
}

// Skip is a document that Open did not load, and why.
type Skip struct {
	// File names the document: a path relative to the database directory,
	// followed by the name inside the archive for documents in an archive
	// ("Debian/all.zip:DSA-4539-1.json").
	File   string
	Reason string
}

// DB is a loaded advisory database. It is immutable and safe for concurrent
// use.
type DB struct {
	index   map[packageKey][]*entry
	stats   map[string]int
	skipped []Skip
}

// packageKey is what advisories are indexed by: the ecosystem as written in
// the advisory (with its release) and the package name.
type packageKey struct {
	ecosystem string
	name      string
}

// advisory holds the fields of an OSV document that findings report.
type advisory struct {
	id      string
	aliases []string
	summary string
}

// entry is one affected[] element of an advisory: a package and the versions
// of it that are affected.
type entry struct {
	adv      *advisory
	severity Severity
	score    float64
	// versions are the versions listed as affected.
	versions []string
	// ranges are the version ranges that can be evaluated, with their
	// events in order.
	ranges []versionRange
}

// Match returns the findings for the queries, sorted by query then ID,
// without duplicates. An advisory that matches a query more than once (in
// several affected entries, or because the query was given twice) gives one
// finding, with the highest severity and the first fixed version found.
func (db *DB) Match(qs []Query) []Finding {
	var out []Finding
	for _, q := range qs {
		entries := db.index[packageKey{ecosystem: q.Ecosystem, name: q.Name}]
		if len(entries) == 0 {
			continue
		}
		pq := newPreparedQuery(q)
		for _, e := range entries {
			if ok, fix := pq.matches(e); ok {
				out = append(out, Finding{
					ID:           e.adv.id,
					Aliases:      slices.Clone(e.adv.aliases),
					Summary:      e.adv.summary,
					Severity:     e.severity,
					Score:        e.score,
					Query:        q,
					FixedVersion: fix,
				})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(compareQueries(a.Query, b.Query), cmp.Compare(a.ID, b.ID))
	})
	return mergeDuplicates(out)
}

// mergeDuplicates folds adjacent findings of the same query and ID into one.
func mergeDuplicates(fs []Finding) []Finding {
	out := fs[:0]
	for _, f := range fs {
		if n := len(out); n > 0 && out[n-1].ID == f.ID && out[n-1].Query == f.Query {
			last := &out[n-1]
			last.Severity = max(last.Severity, f.Severity)
			last.Score = max(last.Score, f.Score)
			if last.FixedVersion == "" {
				last.FixedVersion = f.FixedVersion
			}
			continue
		}
		out = append(out, f)
	}
	return out
}

// Stats reports how many advisories were loaded per ecosystem folder
// ("Alpine", "Debian", "Go", …). Withdrawn advisories are not counted.
func (db *DB) Stats() map[string]int {
	return maps.Clone(db.stats)
}

// Skipped returns the documents that were not loaded because they were too
// large, in the order in which they were found.
func (db *DB) Skipped() []Skip {
	return slices.Clone(db.skipped)
}
