// Package dbcache keeps the metadata that every pull reads (accounts,
// repositories, tagged and digested manifests with their content, blobs
// mounted in a repository, pages of tag lists) in a bounded in-memory cache in front of a
// db.Store.
//
// Every cached value carries the stamp that was current before it was read
// from the database: a global version plus an epoch of its account or
// repository. A value is served only while its stamp is still current, so a
// change that commits while a value is being read can never leave that
// stale value behind. Stamps move on three kinds of events:
//
//   - writes through this Store move the epoch of what they touched as soon
//     as they return, which gives read-your-writes within the process;
//   - an optional Version function reports changes committed by any
//     connection (SQLite's data_version), checked on every lookup;
//   - a change feed (PostgreSQL LISTEN/NOTIFY, see postgres.Listen) calls
//     InvalidateAccount and InvalidateRepository for changes committed by
//     other processes, and Reset or Disable when it (re)connects or loses
//     its connection. While a feed is expected but not connected, nothing
//     is served from the cache.
package dbcache

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// DefaultMaxBytes is the default bound of the cache's memory.
const DefaultMaxBytes = 64 << 20

// maxEpochs bounds the per-account and per-repository epoch maps; past it
// they are dropped and the global generation moves instead.
const maxEpochs = 1 << 16

// Options configure a cache.
type Options struct {
	// MaxBytes bounds the memory of the cached values (DefaultMaxBytes if
	// zero or less).
	MaxBytes int64
	// Version, if set, returns a number that changes whenever any
	// connection commits a change; ok=false bypasses the cache for this
	// lookup.
	Version func(ctx context.Context) (version uint64, ok bool)
	// Feed says that a change feed will call Reset once it listens; until
	// then, and after Disable, the cache is bypassed.
	Feed bool
}

// Store is a db.Store that serves the pull path's reads from memory. The
// values it returns are shared: callers must not modify them (in particular
// a manifest's Content).
type Store struct {
	db.Store
	entries *lru
	version func(ctx context.Context) (uint64, bool)

	mu            sync.RWMutex
	enabled       bool
	generation    uint64
	accountEpochs map[string]uint64
	repoEpochs    map[int64]uint64

	hits, misses atomic.Uint64
}

// New returns a caching Store in front of inner.
func New(inner db.Store, opts Options) *Store {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	return &Store{
		Store:         inner,
		entries:       newLRU(opts.MaxBytes),
		version:       opts.Version,
		enabled:       !opts.Feed,
		accountEpochs: make(map[string]uint64),
		repoEpochs:    make(map[int64]uint64),
	}
}

// stamp identifies the state of the database a cached value was read in.
type stamp struct {
	version    uint64
	generation uint64
	epoch      uint64
}

// cached is one value with the stamp it was read under.
type cached struct {
	stamp stamp
	value any
}

// Stats reports cache hits and misses since the start, and the current
// number of entries and their estimated bytes.
type Stats struct {
	Hits, Misses uint64
	Entries      int
	Bytes        int64
}

// Stats returns the cache's counters.
func (c *Store) Stats() Stats {
	n, b := c.entries.len()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: n, Bytes: b}
}

// Reset forgets everything cached and enables the cache. A change feed
// calls it once it listens, after (re)connecting.
func (c *Store) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	c.enabled = true
	clear(c.accountEpochs)
	clear(c.repoEpochs)
}

// Disable forgets everything cached and bypasses the cache until the next
// Reset. A change feed calls it when it loses its connection.
func (c *Store) Disable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	c.enabled = false
}

// InvalidateAccount forgets the account and its repositories' names.
func (c *Store) InvalidateAccount(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.accountEpochs) >= maxEpochs {
		c.generation++
		clear(c.accountEpochs)
		return
	}
	c.accountEpochs[name]++
}

// InvalidateRepository forgets the repository's manifests, tags and blobs.
func (c *Store) InvalidateRepository(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.repoEpochs) >= maxEpochs {
		c.generation++
		clear(c.repoEpochs)
		return
	}
	c.repoEpochs[id]++
}

// invalidateAll forgets everything but leaves the cache enabled.
func (c *Store) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
}

// current returns the stamp that values of the account (repoID 0) or
// repository read from now on get; ok is false when the cache is bypassed.
func (c *Store) current(ctx context.Context, account string, repoID int64) (stamp, bool) {
	var st stamp
	if c.version != nil {
		v, ok := c.version(ctx)
		if !ok {
			return st, false
		}
		st.version = v
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.enabled {
		return st, false
	}
	st.generation = c.generation
	if repoID != 0 {
		st.epoch = c.repoEpochs[repoID]
	} else {
		st.epoch = c.accountEpochs[account]
	}
	return st, true
}

// lookup serves key from the cache or, on a miss, from load, and caches a
// successful result. size estimates the result's variable-size bytes.
func lookup[V any](ctx context.Context, c *Store, account string, repoID int64, key string,
	load func() (V, error), size func(V) int) (V, error) {
	st, ok := c.current(ctx, account, repoID)
	if !ok {
		return load()
	}
	if e, found := c.entries.get(key); found && e.stamp == st {
		c.hits.Add(1)
		return e.value.(V), nil
	}
	c.misses.Add(1)
	v, err := load()
	if err == nil {
		c.entries.put(key, cached{stamp: st, value: v}, size(v))
	}
	return v, err
}

func accountKey(name string) string { return "a\x00" + name }

func repoKey(account, name string) string { return "r\x00" + account + "\x00" + name }

func repoScopedKey(kind string, repoID int64, ref string) string {
	return kind + "\x00" + strconv.FormatInt(repoID, 10) + "\x00" + ref
}

func accountSize(a models.Account) int {
	return len(a.Name) + len(a.AuthTenantID) + len(a.RBACPoliciesJSON) + len(a.GCPoliciesJSON) +
		len(a.TagPoliciesJSON) + len(a.ValidationRule) + len(a.PlatformFilterJSON) + len(a.SecurityScanPoliciesJSON) +
		len(a.ReplicationJSON)
}

func manifestSize(m models.ManifestWithContent) int {
	return len(m.Content) + len(m.Digest) + len(m.MediaType) + len(m.SubjectDigest) +
		len(m.ArtifactType) + len(m.AnnotationsJSON) + len(m.LabelsJSON)
}

// GetAccount implements db.Store from the cache.
func (c *Store) GetAccount(ctx context.Context, name string) (models.Account, error) {
	return lookup(ctx, c, name, 0, accountKey(name),
		func() (models.Account, error) { return c.Store.GetAccount(ctx, name) }, accountSize)
}

// GetRepository implements db.Store from the cache.
func (c *Store) GetRepository(ctx context.Context, accountName, name string) (models.Repository, error) {
	return lookup(ctx, c, accountName, 0, repoKey(accountName, name),
		func() (models.Repository, error) { return c.Store.GetRepository(ctx, accountName, name) },
		func(r models.Repository) int { return len(r.AccountName) + len(r.Name) })
}

// FindOrCreateRepository implements db.Store; an existing repository comes
// from the cache.
func (c *Store) FindOrCreateRepository(ctx context.Context, accountName, name string) (models.Repository, error) {
	return lookup(ctx, c, accountName, 0, repoKey(accountName, name),
		func() (models.Repository, error) { return c.Store.FindOrCreateRepository(ctx, accountName, name) },
		func(r models.Repository) int { return len(r.AccountName) + len(r.Name) })
}

// GetManifest implements db.Store from the cache.
func (c *Store) GetManifest(ctx context.Context, repoID int64, digest string) (models.ManifestWithContent, error) {
	return lookup(ctx, c, "", repoID, repoScopedKey("d", repoID, digest),
		func() (models.ManifestWithContent, error) { return c.Store.GetManifest(ctx, repoID, digest) }, manifestSize)
}

// GetTaggedManifest implements db.Store from the cache.
func (c *Store) GetTaggedManifest(ctx context.Context, repoID int64, tag string) (models.ManifestWithContent, error) {
	return lookup(ctx, c, "", repoID, repoScopedKey("t", repoID, tag),
		func() (models.ManifestWithContent, error) { return c.Store.GetTaggedManifest(ctx, repoID, tag) }, manifestSize)
}

// GetBlobInRepository implements db.Store from the cache.
func (c *Store) GetBlobInRepository(ctx context.Context, repoID int64, digest string) (models.Blob, error) {
	return lookup(ctx, c, "", repoID, repoScopedKey("b", repoID, digest),
		func() (models.Blob, error) { return c.Store.GetBlobInRepository(ctx, repoID, digest) },
		func(b models.Blob) int {
			return len(b.AccountName) + len(b.Digest) + len(b.StorageID) + len(b.MediaType)
		})
}

// ListTags implements db.Store from the cache, per page.
func (c *Store) ListTags(ctx context.Context, repoID int64, after string, limit int) ([]string, error) {
	key := repoScopedKey("l", repoID, strconv.Itoa(limit)+"\x00"+after)
	return lookup(ctx, c, "", repoID, key,
		func() ([]string, error) { return c.Store.ListTags(ctx, repoID, after, limit) },
		func(tags []string) int {
			n := 24 + 16*len(tags) // slice and string headers
			for _, t := range tags {
				n += len(t)
			}
			return n
		})
}

// CreateAccount implements db.Store and invalidates the account.
func (c *Store) CreateAccount(ctx context.Context, a models.Account) error {
	defer c.InvalidateAccount(a.Name)
	return c.Store.CreateAccount(ctx, a)
}

// UpdateAccount implements db.Store and invalidates the account.
func (c *Store) UpdateAccount(ctx context.Context, a models.Account) error {
	defer c.InvalidateAccount(a.Name)
	return c.Store.UpdateAccount(ctx, a)
}

// DeleteAccount implements db.Store and invalidates the account.
func (c *Store) DeleteAccount(ctx context.Context, name string) error {
	defer c.InvalidateAccount(name)
	return c.Store.DeleteAccount(ctx, name)
}

// DeleteRepository implements db.Store and invalidates everything (the
// repository's name is not known here).
func (c *Store) DeleteRepository(ctx context.Context, repoID int64) error {
	defer c.invalidateAll()
	return c.Store.DeleteRepository(ctx, repoID)
}

// CreateBlobAndMount implements db.Store and invalidates the repository.
func (c *Store) CreateBlobAndMount(ctx context.Context, b models.Blob, repoID int64) (models.Blob, bool, error) {
	defer c.InvalidateRepository(repoID)
	return c.Store.CreateBlobAndMount(ctx, b, repoID)
}

// MountBlob implements db.Store and invalidates the repository.
func (c *Store) MountBlob(ctx context.Context, blobID, repoID int64) error {
	defer c.InvalidateRepository(repoID)
	return c.Store.MountBlob(ctx, blobID, repoID)
}

// SetBlobStorage implements db.Store; the blob may be cached in any
// repository that mounts it, so everything is forgotten when it changed
// (once per replicated blob).
func (c *Store) SetBlobStorage(ctx context.Context, blobID int64, storageID string) (bool, error) {
	set, err := c.Store.SetBlobStorage(ctx, blobID, storageID)
	if set || err != nil {
		c.invalidateAll()
	}
	return set, err
}

// RecordVulnerabilityScan implements db.Store and invalidates the
// manifest's repository (its status is part of the cached manifest).
func (c *Store) RecordVulnerabilityScan(ctx context.Context, key db.ManifestKey, r db.ScanRecord) error {
	defer c.InvalidateRepository(key.RepositoryID)
	return c.Store.RecordVulnerabilityScan(ctx, key, r)
}

// UnmountBlob implements db.Store and invalidates the repository.
func (c *Store) UnmountBlob(ctx context.Context, blobID, repoID int64) error {
	defer c.InvalidateRepository(repoID)
	return c.Store.UnmountBlob(ctx, blobID, repoID)
}

// PutManifest implements db.Store and invalidates the repository.
func (c *Store) PutManifest(ctx context.Context, m models.ManifestWithContent, blobIDs []int64, childDigests []string, tag string, events ...models.AuditEvent) error {
	defer c.InvalidateRepository(m.RepositoryID)
	return c.Store.PutManifest(ctx, m, blobIDs, childDigests, tag, events...)
}

// DeleteManifest implements db.Store and invalidates the repository.
func (c *Store) DeleteManifest(ctx context.Context, repoID int64, digest string) error {
	defer c.InvalidateRepository(repoID)
	return c.Store.DeleteManifest(ctx, repoID, digest)
}

// DeleteTag implements db.Store and invalidates the repository.
func (c *Store) DeleteTag(ctx context.Context, repoID int64, name string) error {
	defer c.InvalidateRepository(repoID)
	return c.Store.DeleteTag(ctx, repoID, name)
}

// SweepBlobMounts implements db.Store and invalidates the swept
// repository (its mounts may be gone).
func (c *Store) SweepBlobMounts(ctx context.Context, now time.Time, grace time.Duration, next time.Time) (db.MountSweep, bool, error) {
	res, claimed, err := c.Store.SweepBlobMounts(ctx, now, grace, next)
	if claimed {
		c.InvalidateRepository(res.RepositoryID)
	}
	return res, claimed, err
}

// RecordBlobValidation implements db.Store; a blob whose state changed may
// be cached in any repository that mounts it, so everything is forgotten
// then (which is rare).
func (c *Store) RecordBlobValidation(ctx context.Context, blobID int64, at time.Time, validationError string) (bool, error) {
	changed, err := c.Store.RecordBlobValidation(ctx, blobID, at, validationError)
	if changed || err != nil {
		c.invalidateAll()
	}
	return changed, err
}

// SetGCStatuses implements db.Store and invalidates the repository.
func (c *Store) SetGCStatuses(ctx context.Context, repoID int64, statuses map[string]string) error {
	defer c.InvalidateRepository(repoID)
	return c.Store.SetGCStatuses(ctx, repoID, statuses)
}

// RecordManifestValidation implements db.Store and invalidates the
// manifest's repository if the manifest's state changed.
func (c *Store) RecordManifestValidation(ctx context.Context, key db.ManifestKey, at time.Time, validationError string) (bool, error) {
	changed, err := c.Store.RecordManifestValidation(ctx, key, at, validationError)
	if changed || err != nil {
		c.InvalidateRepository(key.RepositoryID)
	}
	return changed, err
}

// RecordPulls implements db.Store and invalidates the repositories pulled
// from (their manifests' last pull times changed).
func (c *Store) RecordPulls(ctx context.Context, pulls []db.Pull) error {
	defer func() {
		for _, p := range pulls {
			c.InvalidateRepository(p.RepositoryID)
		}
	}()
	return c.Store.RecordPulls(ctx, pulls)
}
