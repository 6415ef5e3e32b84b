package dbtest

import (
	"errors"
	"testing"
	"time"

	"keppel/internal/db"
)

// testVulnerabilityScans: new manifests are claimed first and once per
// lease; a recorded result sets the status (seen in GetManifest), keeps
// the report and schedules the next scan; an index's children's statuses
// are listed; reports go with their manifest.
func testVulnerabilityScans(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "scans")
	repo := f.repo(t, "scans", "app")
	child := f.manifest(t, repo, "child", nil, nil, "")
	index := f.manifest(t, repo, "index", nil, []string{child.Digest}, "latest")

	now := time.Unix(2_000_000, 0)
	retry := now.Add(10 * time.Minute)
	claimed := map[string]db.ScanCandidate{}
	for range 2 {
		c, ok, err := s.ClaimVulnerabilityScan(ctx, now, retry)
		if err != nil || !ok {
			t.Fatalf("ClaimVulnerabilityScan: %v, %v", ok, err)
		}
		if c.RepoName != "app" || c.Storage.AccountName != "scans" || len(c.Content) == 0 || c.MediaType == "" {
			t.Fatalf("claimed %+v", c)
		}
		claimed[c.Digest] = c
	}
	if len(claimed) != 2 {
		t.Fatalf("claimed %d distinct manifests, want 2", len(claimed))
	}
	if _, ok, err := s.ClaimVulnerabilityScan(ctx, now, retry); ok || err != nil {
		t.Fatalf("claim within the lease: %v, %v", ok, err)
	}

	key := db.ManifestKey{RepositoryID: repo.ID, Digest: child.Digest}
	if _, _, err := s.GetVulnerabilityReport(ctx, key); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("report before a scan: %v", err)
	}
	next := now.Add(24 * time.Hour)
	if err := s.RecordVulnerabilityScan(ctx, key, db.ScanRecord{Status: "High", Scanner: "builtin", Report: []byte(`{"x":1}`), At: now, Next: next}); err != nil {
		t.Fatal(err)
	}
	m, err := s.GetManifest(ctx, repo.ID, child.Digest)
	if err != nil || m.VulnerabilityStatus != "High" {
		t.Fatalf("status after the scan: %q, %v", m.VulnerabilityStatus, err)
	}
	scanner, report, err := s.GetVulnerabilityReport(ctx, key)
	if err != nil || scanner != "builtin" || string(report) != `{"x":1}` {
		t.Fatalf("report: %q %q %v", scanner, report, err)
	}
	statuses, err := s.ListChildVulnerabilityStatuses(ctx, db.ManifestKey{RepositoryID: repo.ID, Digest: index.Digest})
	if err != nil || len(statuses) != 1 || statuses[0] != "High" {
		t.Fatalf("child statuses: %q, %v", statuses, err)
	}
	// a result without a report drops the old one
	if err := s.RecordVulnerabilityScan(ctx, key, db.ScanRecord{Status: "Unsupported", At: now, Next: next}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetVulnerabilityReport(ctx, key); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("report after a result without one: %v", err)
	}
	// the child's result made the index due at once
	c, ok, err := s.ClaimVulnerabilityScan(ctx, now, retry)
	if err != nil || !ok || c.Digest != index.Digest {
		t.Fatalf("claim of the index after its child's result: %+v, %v, %v", c, ok, err)
	}
	if _, ok, _ := s.ClaimVulnerabilityScan(ctx, now, retry); ok {
		t.Fatal("the scanned child was claimed before its next scan")
	}
	// at next, both are due again: the index (whose lease ran out at
	// retry) first
	for _, want := range []string{index.Digest, child.Digest} {
		if c, ok, _ := s.ClaimVulnerabilityScan(ctx, next, next.Add(time.Minute)); !ok || c.Digest != want {
			t.Fatalf("claim at the next scan: %+v, %v; want %s", c, ok, want)
		}
	}
	// results of deleted manifests are refused
	gone := db.ManifestKey{RepositoryID: repo.ID, Digest: digestOf("gone")}
	if err := s.RecordVulnerabilityScan(ctx, gone, db.ScanRecord{Status: "Clean", At: now, Next: next}); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("result of an unknown manifest: %v", err)
	}
}
