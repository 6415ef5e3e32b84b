package consistency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"keppel/internal/db"
	"keppel/internal/storage"
)

// checkOrphans finds the objects in the storage that the database does not
// refer to, and with Repair deletes those that it has not referred to for a
// grace period.
func (c *checker) checkOrphans(ctx context.Context, storedBlobs []storage.StoredBlob, storedManifests []storage.StoredManifest) error {
	known, err := c.knownObjects(ctx)
	if err != nil {
		return err
	}
	var unknown []db.StorageObject
	for _, s := range storedBlobs {
		if o := (db.StorageObject{StorageID: s.StorageID}); !known[o] {
			unknown = append(unknown, o)
		}
	}
	for _, s := range storedManifests {
		if o := (db.StorageObject{RepoName: s.RepoName, Digest: s.Digest}); !known[o] {
			unknown = append(unknown, o)
		}
	}
	if len(unknown) == 0 && !c.opts.Repair {
		return nil
	}

	// A push commits its rows after it wrote the content: ask the
	// database once more, so that such a push is not reported.
	if len(unknown) > 0 {
		if known, err = c.knownObjects(ctx); err != nil {
			return err
		}
		unknown = deleteKnown(unknown, known)
	}

	deleted := map[db.StorageObject]bool{}
	if c.opts.Repair {
		// With the storage sweep's bookkeeping: every object found is
		// compared with the database once more in one transaction;
		// objects unknown for a grace period come back to be deleted.
		found := make([]db.StorageObject, 0, len(storedBlobs)+len(storedManifests))
		for _, s := range storedBlobs {
			found = append(found, db.StorageObject{StorageID: s.StorageID})
		}
		for _, s := range storedManifests {
			found = append(found, db.StorageObject{RepoName: s.RepoName, Digest: s.Digest})
		}
		expired, err := c.store.ReconcileUnknownObjects(ctx, c.account.Name, found, c.opts.Now(), c.opts.GracePeriod)
		if err != nil {
			return err
		}
		for _, o := range expired {
			if err := c.deleteObject(ctx, o); err != nil {
				return err
			}
			deleted[o] = true
			if !containsObject(unknown, o) {
				unknown = append(unknown, o)
			}
		}
	}
	marks, err := c.store.ListUnknownObjects(ctx, c.account.Name)
	if err != nil {
		return err
	}
	deadlines := make(map[db.StorageObject]time.Time, len(marks))
	for _, m := range marks {
		deadlines[m.StorageObject] = m.CanBeDeletedAt
	}
	for _, o := range unknown {
		f := Finding{Kind: KindOrphanedBlob, StorageID: o.StorageID,
			Detail: "no blob of the database refers to this object"}
		if !o.IsBlob() {
			f = Finding{Kind: KindOrphanedManifestCopy, Repository: o.RepoName, Digest: o.Digest,
				Detail: "the database has no such manifest"}
		}
		deadline, marked := deadlines[o]
		switch {
		case deleted[o]:
			f.Repair, f.Repaired = "deleted", true
		case marked && c.opts.Repair:
			f.Repair = fmt.Sprintf("marked for deletion: deleted from %s (one grace period after it was first found) "+
				"by the janitor's storage sweep or the next `keppel server check --repair`", deadline.UTC().Format(time.RFC3339))
		case marked:
			f.Detail += fmt.Sprintf("; the storage sweep marked it for deletion from %s", deadline.UTC().Format(time.RFC3339))
		}
		c.add(f)
	}
	return nil
}

// knownObjects returns the storage objects that the database refers to.
func (c *checker) knownObjects(ctx context.Context) (map[db.StorageObject]bool, error) {
	blobs, err := c.store.ListBlobsOfAccount(ctx, c.account.Name)
	if err != nil {
		return nil, err
	}
	copies, err := c.store.ListManifestsOfAccount(ctx, c.account.Name)
	if err != nil {
		return nil, err
	}
	known := make(map[db.StorageObject]bool, len(blobs)+len(copies))
	for _, b := range blobs {
		if b.StorageID != "" {
			known[db.StorageObject{StorageID: b.StorageID}] = true
		}
	}
	for _, k := range copies {
		known[db.StorageObject{RepoName: k.RepoName, Digest: k.Digest}] = true
	}
	return known, nil
}

func deleteKnown(objects []db.StorageObject, known map[db.StorageObject]bool) []db.StorageObject {
	out := objects[:0]
	for _, o := range objects {
		if !known[o] {
			out = append(out, o)
		}
	}
	return out
}

func containsObject(objects []db.StorageObject, o db.StorageObject) bool {
	for _, x := range objects {
		if x == o {
			return true
		}
	}
	return false
}

// deleteObject removes an object from the account's storage.
func (c *checker) deleteObject(ctx context.Context, o db.StorageObject) error {
	var err error
	if o.IsBlob() {
		err = c.drv.DeleteBlob(ctx, c.ref, o.StorageID)
	} else {
		err = c.drv.DeleteManifest(ctx, c.ref, o.RepoName, o.Digest)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("deleting orphaned object %+v: %w", o, err)
	}
	return nil
}
