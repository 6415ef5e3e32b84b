// Package consistency compares the metadata store with the content storage
// of each account, reports where they disagree, and repairs what can be
// repaired safely (`keppel server check`).
//
// It finds:
//
//   - blobs that the database records with content whose object is missing
//     from the storage or has another size (KindMissingBlob,
//     KindBlobSizeMismatch);
//   - manifests whose storage copy was recorded as written but is missing
//     (KindMissingManifestCopy);
//   - objects in the storage that no database row refers to
//     (KindOrphanedBlob, KindOrphanedManifestCopy).
//
// The storage listing it works from is the one that the janitor's storage
// sweep uses: finished blobs and manifest copies, never uploads in
// progress. Orphaned objects are deleted with the storage sweep's own
// bookkeeping (db.GCStore.ReconcileUnknownObjects): only once they have
// been unknown to the database for a whole grace period, so that the
// content of a push whose database commit is still under way survives.
package consistency

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/storage"
)

// Kind says what a Finding is about.
type Kind string

// The kinds of findings.
const (
	// KindMissingBlob is a blob that the database records with content
	// whose storage object does not exist.
	KindMissingBlob Kind = "missing_blob"
	// KindBlobSizeMismatch is a blob whose storage object has another size
	// than the database records.
	KindBlobSizeMismatch Kind = "blob_size_mismatch"
	// KindMissingManifestCopy is a manifest whose copy in the storage was
	// recorded as written but does not exist. (The database holds the
	// manifest's content; the copy is for operators and backups.)
	KindMissingManifestCopy Kind = "missing_manifest_copy"
	// KindOrphanedBlob is a finished blob in the storage that no blob of
	// the database refers to.
	KindOrphanedBlob Kind = "orphaned_blob"
	// KindOrphanedManifestCopy is a manifest copy in the storage whose
	// manifest the database does not have.
	KindOrphanedManifestCopy Kind = "orphaned_manifest_copy"
)

// Finding is one disagreement between the database and the storage.
type Finding struct {
	Kind       Kind   `json:"kind"`
	Account    string `json:"account"`
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
	StorageID  string `json:"storage_id,omitempty"`
	// Detail says what exactly is wrong.
	Detail string `json:"detail"`
	// Repair says what a repair did (or, for orphaned objects within
	// their grace period, will do); empty without --repair.
	Repair string `json:"repair,omitempty"`
	// Repaired is true if the repair resolved the finding.
	Repaired bool `json:"repaired"`
}

// Report is the outcome of Check.
type Report struct {
	// Accounts is the number of accounts checked.
	Accounts int `json:"accounts"`
	// Blobs and ManifestCopies count what the database records with
	// content in the storage; Objects counts what the storage holds.
	Blobs          int `json:"blobs"`
	ManifestCopies int `json:"manifest_copies"`
	Objects        int `json:"objects"`
	// KnownBroken counts blobs without content in the storage that the
	// database already records as broken (by the janitor's re-hash or an
	// earlier repair): they are not served, and the next push of the same
	// blob replaces them.
	KnownBroken int `json:"known_broken_blobs"`
	// Findings lists the disagreements, by account in the order checked.
	Findings []Finding `json:"findings"`
}

// Unresolved counts the findings that no repair resolved.
func (r Report) Unresolved() int {
	n := 0
	for _, f := range r.Findings {
		if !f.Repaired {
			n++
		}
	}
	return n
}

// Store is what Check needs from the metadata store (db.Store has it all).
type Store interface {
	ListAccounts(ctx context.Context) ([]models.Account, error)
	GetAccount(ctx context.Context, name string) (models.Account, error)
	GetManifest(ctx context.Context, repoID int64, digest string) (models.ManifestWithContent, error)
	RecordBlobValidation(ctx context.Context, blobID int64, at time.Time, validationError string) (bool, error)
	ReconcileUnknownObjects(ctx context.Context, account string, found []db.StorageObject, now time.Time, grace time.Duration) ([]db.StorageObject, error)
	db.InventoryStore
}

// Options configure Check.
type Options struct {
	// Repair makes Check repair what it finds; without it, Check changes
	// nothing.
	Repair bool
	// Account limits the check to one account ("" for all).
	Account string
	// GracePeriod is how long an object must have been unknown to the
	// database before a repair deletes it: the janitor's GC grace period.
	GracePeriod time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// ErrInvalidOptions is returned for options that Check cannot work with.
var ErrInvalidOptions = errors.New("invalid consistency check options")

// Check compares the database with the storage of every account (or the
// one of opts.Account) that is not being deleted.
func Check(ctx context.Context, store Store, drv storage.Driver, opts Options) (Report, error) {
	if opts.GracePeriod <= 0 {
		return Report{}, fmt.Errorf("%w: the grace period must be positive, not %s", ErrInvalidOptions, opts.GracePeriod)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var accounts []models.Account
	if opts.Account != "" {
		a, err := store.GetAccount(ctx, opts.Account)
		if err != nil {
			return Report{}, fmt.Errorf("account %q: %w", opts.Account, err)
		}
		accounts = []models.Account{a}
	} else {
		var err error
		if accounts, err = store.ListAccounts(ctx); err != nil {
			return Report{}, fmt.Errorf("listing accounts: %w", err)
		}
	}
	rep := Report{Findings: []Finding{}}
	for _, a := range accounts {
		if a.IsDeleting {
			continue // its content is being removed
		}
		c := checker{store: store, drv: drv, opts: opts, account: a, ref: a.StorageRef(), rep: &rep, removed: map[string]bool{}}
		if err := c.run(ctx); err != nil {
			return rep, fmt.Errorf("checking account %s: %w", a.Name, err)
		}
		rep.Accounts++
	}
	return rep, nil
}

// checker checks one account.
type checker struct {
	store   Store
	drv     storage.Driver
	opts    Options
	account models.Account
	ref     models.StorageRef
	rep     *Report
	// removed are the blobs that a repair deleted from the storage.
	removed map[string]bool
}

func (c *checker) run(ctx context.Context) error {
	// The storage is listed before the database is read (as the storage
	// sweep does): what was committed before an object was listed is known.
	storedBlobs, storedManifests, err := c.drv.ListStorageContents(ctx, c.ref)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("listing storage: %w", err)
	}
	c.rep.Objects += len(storedBlobs) + len(storedManifests)
	blobs, err := c.store.ListBlobsOfAccount(ctx, c.account.Name)
	if err != nil {
		return err
	}
	copies, err := c.store.ListManifestsOfAccount(ctx, c.account.Name)
	if err != nil {
		return err
	}
	if err := c.checkBlobs(ctx, blobs, storedBlobs); err != nil {
		return err
	}
	if err := c.checkManifestCopies(ctx, copies, storedManifests); err != nil {
		return err
	}
	// Content that a repair deleted is no longer there to be orphaned.
	storedBlobs = slices.DeleteFunc(storedBlobs, func(s storage.StoredBlob) bool { return c.removed[s.StorageID] })
	return c.checkOrphans(ctx, storedBlobs, storedManifests)
}

// add records a finding.
func (c *checker) add(f Finding) {
	f.Account = c.account.Name
	c.rep.Findings = append(c.rep.Findings, f)
}
