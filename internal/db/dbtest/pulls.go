package dbtest

import (
	"testing"

	"keppel/internal/db"
)

func testRecordPulls(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	m := f.manifest(t, repo, "manifest", nil, nil, "latest")
	f.manifest(t, repo, "other", nil, nil, "other")

	early, late := f.tick(), f.tick()
	if err := s.RecordPulls(ctx, []db.Pull{
		{RepositoryID: repo.ID, Digest: m.Digest, Tag: "latest", At: late},
		{RepositoryID: repo.ID, Digest: m.Digest, At: early}, // older: must not move it back
		{RepositoryID: repo.ID, Digest: digestOf("gone"), Tag: "gone", At: late},
	}); err != nil {
		t.Fatalf("RecordPulls: %v", err)
	}
	if err := s.RecordPulls(ctx, nil); err != nil {
		t.Fatalf("RecordPulls(nil): %v", err)
	}
	got, err := s.GetManifest(ctx, repo.ID, m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastPulledAt == nil || !got.LastPulledAt.Equal(late) {
		t.Errorf("manifest last_pulled_at = %v, want %v", got.LastPulledAt, late)
	}
	tag, err := s.GetTag(ctx, repo.ID, "latest")
	if err != nil || tag.LastPulledAt == nil || !tag.LastPulledAt.Equal(late) {
		t.Errorf("tag last_pulled_at = %v (%v), want %v", tag.LastPulledAt, err, late)
	}
	other, err := s.GetTag(ctx, repo.ID, "other")
	if err != nil || other.LastPulledAt != nil {
		t.Errorf("unpulled tag has last_pulled_at %v (%v)", other.LastPulledAt, err)
	}
}
