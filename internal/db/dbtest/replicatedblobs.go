package dbtest

import (
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// testReplicatedBlobs covers blobs without content (of replica accounts,
// before their first pull): SetBlobStorage sets the content once, and a
// push of the same blob gives it the pushed content.
func testReplicatedBlobs(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")

	pending := f.newBlob("library", "replicated layer")
	pending.StorageID = ""
	b, created, err := s.CreateBlobAndMount(ctx, pending, repo.ID)
	if err != nil || !created || b.StorageID != "" {
		t.Fatalf("CreateBlobAndMount(without content): %+v, created=%v, err=%v", b, created, err)
	}
	if _, err := s.SetBlobStorage(ctx, b.ID, ""); err == nil {
		t.Fatal("SetBlobStorage(\"\"): no error")
	}
	set, err := s.SetBlobStorage(ctx, b.ID, "fetched-1")
	if err != nil || !set {
		t.Fatalf("SetBlobStorage: set=%v, err=%v", set, err)
	}
	set, err = s.SetBlobStorage(ctx, b.ID, "fetched-2")
	if err != nil || set {
		t.Fatalf("second SetBlobStorage: set=%v, err=%v (want false: the first one won)", set, err)
	}
	got, err := s.GetBlobInRepository(ctx, repo.ID, b.Digest)
	if err != nil || got.StorageID != "fetched-1" {
		t.Fatalf("GetBlobInRepository after SetBlobStorage: %+v, %v", got, err)
	}
	if set, err := s.SetBlobStorage(ctx, 1<<40, "x"); err != nil || set {
		t.Fatalf("SetBlobStorage(unknown blob): set=%v, err=%v", set, err)
	}

	// a blob without content takes the content of a push
	other := f.newBlob("library", "other layer")
	other.StorageID = ""
	if _, _, err := s.CreateBlobAndMount(ctx, other, repo.ID); err != nil {
		t.Fatalf("CreateBlobAndMount(without content): %v", err)
	}
	pushed := f.newBlob("library", "other layer")
	got, created, err = s.CreateBlobAndMount(ctx, pushed, repo.ID)
	if err != nil || !created || got.StorageID != pushed.StorageID {
		t.Fatalf("push onto blob without content: %+v, created=%v, err=%v", got, created, err)
	}
	// and a blob without content never replaces one with content
	again := f.newBlob("library", "other layer")
	again.StorageID = ""
	got, created, err = s.CreateBlobAndMount(ctx, again, repo.ID)
	if err != nil || created || got.StorageID != pushed.StorageID {
		t.Fatalf("blob without content onto pushed blob: %+v, created=%v, err=%v", got, created, err)
	}
}

// testReplicaSyncClaims: ClaimReplicaSync hands out the repositories of
// replica accounts (not of other accounts, nor of accounts in deletion)
// once per interval.
func testReplicaSyncClaims(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	f.account(t, "primary")
	f.repo(t, "primary", "app")
	replica := models.Account{Name: "replica", AuthTenantID: "t", CreatedAt: f.tick(),
		ReplicationJSON: `{"strategy":"on_first_use","upstream":"registry.example.com"}`}
	if err := s.CreateAccount(ctx, replica); err != nil {
		t.Fatal(err)
	}
	deleting := models.Account{Name: "deleting", AuthTenantID: "t", CreatedAt: f.tick(), IsDeleting: true,
		ReplicationJSON: `{"strategy":"on_first_use","upstream":"registry.example.com"}`}
	if err := s.CreateAccount(ctx, deleting); err != nil {
		t.Fatal(err)
	}
	a := f.repo(t, "replica", "a")
	b := f.repo(t, "replica", "b")
	f.repo(t, "deleting", "c")

	now := time.Unix(1_000_000, 0)
	next := now.Add(time.Hour)
	got := map[int64]bool{}
	for range 2 {
		acct, repo, claimed, err := s.ClaimReplicaSync(ctx, now, next)
		if err != nil || !claimed {
			t.Fatalf("ClaimReplicaSync: claimed=%v, err=%v", claimed, err)
		}
		if acct.Name != "replica" || acct.ReplicationJSON == "" || repo.AccountName != "replica" {
			t.Fatalf("ClaimReplicaSync: %+v in %+v", repo, acct)
		}
		got[repo.ID] = true
	}
	if !got[a.ID] || !got[b.ID] {
		t.Fatalf("claimed %v, want %d and %d", got, a.ID, b.ID)
	}
	if _, _, claimed, err := s.ClaimReplicaSync(ctx, now, next); err != nil || claimed {
		t.Fatalf("ClaimReplicaSync before the next is due: claimed=%v, err=%v", claimed, err)
	}
	if _, _, claimed, err := s.ClaimReplicaSync(ctx, next, next.Add(time.Hour)); err != nil || !claimed {
		t.Fatalf("ClaimReplicaSync when due again: claimed=%v, err=%v", claimed, err)
	}
}
