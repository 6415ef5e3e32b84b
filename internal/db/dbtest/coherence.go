package dbtest

import (
	"errors"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// RunCacheCoherence checks that a caching store shows the changes that
// another store on the same database (standing for another process) commits:
// tag moves, manifest and tag deletions (also in tag lists), blob unmounts, the
// content of replicated blobs, account updates and
// repository deletions. cached and other must share one empty database.
// Changes made through other must show within wait (0: at once); changes
// made through cached must always show at once.
func RunCacheCoherence(t *testing.T, cached, other db.Store, wait time.Duration) {
	ctx := t.Context()
	f := newFixture(other)
	acct := f.account(t, "coherence")
	repo := f.repo(t, acct.Name, "app")
	layer := f.blob(t, repo, "layer")
	m1 := f.manifest(t, repo, "m1", []models.Blob{layer}, nil, "latest")
	m2 := f.manifest(t, repo, "m2", nil, nil, "")

	// eventually polls check until it holds or wait is over.
	eventually := func(what string, check func() error) {
		t.Helper()
		deadline := time.Now().Add(wait)
		for {
			err := check()
			if err == nil {
				return
			}
			if !time.Now().Before(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	tagged := func(want string) func() error {
		return func() error {
			m, err := cached.GetTaggedManifest(ctx, repo.ID, "latest")
			if err != nil {
				return err
			}
			if m.Digest != want {
				return errors.New("the tag points at " + m.Digest + ", want " + want)
			}
			return nil
		}
	}
	gone := func(get func() error) func() error {
		return func() error {
			if err := get(); !errors.Is(err, db.ErrNotFound) {
				return errors.New("still found (or another error)")
			}
			return nil
		}
	}

	// Warm the cache, twice, so that a second read would be served from it.
	for range 2 {
		if _, err := cached.GetAccount(ctx, acct.Name); err != nil {
			t.Fatalf("GetAccount: %v", err)
		}
		if _, err := cached.GetRepository(ctx, acct.Name, repo.Name); err != nil {
			t.Fatalf("GetRepository: %v", err)
		}
		if _, err := cached.GetBlobInRepository(ctx, repo.ID, layer.Digest); err != nil {
			t.Fatalf("GetBlobInRepository: %v", err)
		}
		if _, err := cached.GetManifest(ctx, repo.ID, m2.Digest); err != nil {
			t.Fatalf("GetManifest: %v", err)
		}
		eventually("tag before the move", tagged(m1.Digest))
		if tags, err := cached.ListTags(ctx, repo.ID, "", db.NoLimit); err != nil || len(tags) != 1 {
			t.Fatalf("ListTags = %q, %v; want [latest]", tags, err)
		}
	}

	// Another process moves the tag.
	moved := m2
	moved.PushedAt = f.tick()
	if err := other.PutManifest(ctx, moved, nil, nil, "latest"); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	eventually("tag moved by another process", tagged(m2.Digest))

	// This process moves it back: visible at once.
	back := m1
	back.PushedAt = f.tick()
	if err := cached.PutManifest(ctx, back, []int64{layer.ID}, nil, "latest"); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	if err := tagged(m1.Digest)(); err != nil {
		t.Fatalf("tag moved by this process: %v", err)
	}

	// Another process deletes the tag, then a manifest.
	if err := other.DeleteTag(ctx, repo.ID, "latest"); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	eventually("tag deleted by another process", gone(func() error {
		_, err := cached.GetTaggedManifest(ctx, repo.ID, "latest")
		return err
	}))
	eventually("tag list after another process deleted the tag", func() error {
		tags, err := cached.ListTags(ctx, repo.ID, "", db.NoLimit)
		if err != nil {
			return err
		}
		if len(tags) != 0 {
			return errors.New("the tag is still listed")
		}
		return nil
	})
	if err := other.DeleteManifest(ctx, repo.ID, m2.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	eventually("manifest deleted by another process", gone(func() error {
		_, err := cached.GetManifest(ctx, repo.ID, m2.Digest)
		return err
	}))

	// Another process unmounts the blob (after deleting the manifest that
	// references it).
	if err := other.DeleteManifest(ctx, repo.ID, m1.Digest); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	if err := other.UnmountBlob(ctx, layer.ID, repo.ID); err != nil {
		t.Fatalf("UnmountBlob: %v", err)
	}
	eventually("blob unmounted by another process", gone(func() error {
		_, err := cached.GetBlobInRepository(ctx, repo.ID, layer.Digest)
		return err
	}))

	// Another process fetches the content of a replicated blob.
	pending := f.newBlob(acct.Name, "replicated")
	pending.StorageID = ""
	pending, _, err := other.CreateBlobAndMount(ctx, pending, repo.ID)
	if err != nil {
		t.Fatalf("CreateBlobAndMount(without content): %v", err)
	}
	for range 2 {
		if b, err := cached.GetBlobInRepository(ctx, repo.ID, pending.Digest); err != nil || b.StorageID != "" {
			t.Fatalf("GetBlobInRepository(without content) = %+v, %v", b, err)
		}
	}
	if set, err := other.SetBlobStorage(ctx, pending.ID, "fetched"); err != nil || !set {
		t.Fatalf("SetBlobStorage: %v, %v", set, err)
	}
	eventually("blob content recorded by another process", func() error {
		b, err := cached.GetBlobInRepository(ctx, repo.ID, pending.Digest)
		if err == nil && b.StorageID != "fetched" {
			return errors.New("storage ID " + b.StorageID)
		}
		return err
	})

	// Another process starts deleting the account.
	deleting := acct
	deleting.IsDeleting = true
	if err := other.UpdateAccount(ctx, deleting); err != nil {
		t.Fatalf("UpdateAccount: %v", err)
	}
	eventually("account updated by another process", func() error {
		a, err := cached.GetAccount(ctx, acct.Name)
		if err != nil {
			return err
		}
		if !a.IsDeleting {
			return errors.New("the account is not marked as being deleted")
		}
		return nil
	})

	// Another process deletes the repository.
	if err := other.DeleteRepository(ctx, repo.ID); err != nil {
		t.Fatalf("DeleteRepository: %v", err)
	}
	eventually("repository deleted by another process", gone(func() error {
		_, err := cached.GetRepository(ctx, acct.Name, repo.Name)
		return err
	}))
}
