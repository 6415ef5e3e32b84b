package dbcache_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/db/dbcache"
	"keppel/internal/db/dbtest"
	"keppel/internal/db/sqlite"
	"keppel/internal/models"
)

// openFile opens a SQLite file, closed when the test ends.
func openFile(t testing.TB, path string) db.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// cachedFile opens a SQLite file behind a cache that watches data_version,
// as the server does.
func cachedFile(t testing.TB, path string, maxBytes int64) *dbcache.Store {
	t.Helper()
	inner := openFile(t, path)
	w, err := sqlite.WatchVersion(context.Background(), inner)
	if err != nil {
		t.Fatalf("WatchVersion: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() }) // runs before the store's Close
	return dbcache.New(inner, dbcache.Options{MaxBytes: maxBytes, Version: w.Version})
}

func TestSuite(t *testing.T) {
	dbtest.RunSuite(t, func(t *testing.T) db.Store {
		return cachedFile(t, filepath.Join(t.TempDir(), "keppel.db"), 0)
	})
}

// TestSuiteLocalInvalidation runs the suite on an in-memory database, where
// the cache has nothing but its own invalidation on writes to go by.
func TestSuiteLocalInvalidation(t *testing.T) {
	dbtest.RunSuite(t, func(t *testing.T) db.Store {
		inner, err := sqlite.Open(t.Context(), sqlite.MemoryPath)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = inner.Close() })
		return dbcache.New(inner, dbcache.Options{})
	})
}

// TestCoherenceAcrossConnections changes the database through a second,
// uncached store on the same file, as another process would: the cache must
// show every change at once.
func TestCoherenceAcrossConnections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keppel.db")
	cached := cachedFile(t, path, 0)
	other := openFile(t, path)
	dbtest.RunCacheCoherence(t, cached, other, 0)
	if st := cached.Stats(); st.Hits == 0 {
		t.Errorf("the coherence run had no cache hit at all: %+v", st)
	}
}

// fixture creates an account, a repository and a tagged manifest.
func fixture(t testing.TB, s db.Store, content string) (models.Repository, models.ManifestWithContent) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateAccount(ctx, models.Account{Name: "acct", AuthTenantID: "t", CreatedAt: time.Unix(1, 0)}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	repo, err := s.FindOrCreateRepository(ctx, "acct", "repo")
	if err != nil {
		t.Fatalf("FindOrCreateRepository: %v", err)
	}
	m := manifest(repo, content)
	if err := s.PutManifest(ctx, m, nil, nil, "latest"); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	return repo, m
}

func manifest(repo models.Repository, content string) models.ManifestWithContent {
	return models.ManifestWithContent{
		Manifest: models.Manifest{
			RepositoryID: repo.ID,
			Digest:       fmt.Sprintf("sha256:%064x", len(content)),
			MediaType:    "application/vnd.oci.image.manifest.v1+json",
			SizeBytes:    int64(len(content)),
			PushedAt:     time.Unix(2, 0),
		},
		Content: []byte(content),
	}
}

func TestHitsAndBypass(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keppel.db")
	cached := cachedFile(t, path, 0)
	repo, m := fixture(t, cached, "{}")
	ctx := t.Context()
	before := cached.Stats()
	for range 3 {
		got, err := cached.GetTaggedManifest(ctx, repo.ID, "latest")
		if err != nil || got.Digest != m.Digest {
			t.Fatalf("GetTaggedManifest = %v, %v", got.Digest, err)
		}
	}
	if st := cached.Stats(); st.Hits-before.Hits != 2 || st.Misses-before.Misses != 1 {
		t.Errorf("after three reads: %+v, want 2 hits and 1 miss", st)
	}

	// A cache that waits for a change feed serves nothing until it is
	// reset, and nothing after it is disabled.
	fed := dbcache.New(openFile(t, path), dbcache.Options{Feed: true})
	read := func() {
		t.Helper()
		if _, err := fed.GetTaggedManifest(ctx, repo.ID, "latest"); err != nil {
			t.Fatalf("GetTaggedManifest: %v", err)
		}
	}
	read()
	read()
	if st := fed.Stats(); st.Hits != 0 || st.Entries != 0 {
		t.Errorf("before the feed connects: %+v, want no hit and no entry", st)
	}
	fed.Reset()
	read()
	read()
	if st := fed.Stats(); st.Hits != 1 {
		t.Errorf("after Reset: %+v, want 1 hit", st)
	}
	fed.Disable()
	read()
	if st := fed.Stats(); st.Hits != 1 {
		t.Errorf("after Disable: %+v, want still 1 hit", st)
	}
}

// TestNotificationsInvalidate checks the methods a change feed calls.
func TestNotificationsInvalidate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keppel.db")
	fed := dbcache.New(openFile(t, path), dbcache.Options{Feed: true})
	fed.Reset()
	repo, m1 := fixture(t, fed, "{}")
	other := openFile(t, path)
	ctx := t.Context()
	get := func() string {
		t.Helper()
		got, err := fed.GetTaggedManifest(ctx, repo.ID, "latest")
		if err != nil {
			t.Fatalf("GetTaggedManifest: %v", err)
		}
		return got.Digest
	}
	if d := get(); d != m1.Digest {
		t.Fatalf("tag points at %s", d)
	}
	m2 := manifest(repo, "{ }")
	if err := other.PutManifest(ctx, m2, nil, nil, "latest"); err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	// Without a notification, the cache still has the old value: this
	// is what the feed is for.
	if d := get(); d != m1.Digest {
		t.Fatalf("tag points at %s before the notification; the test cannot see the cache", d)
	}
	fed.InvalidateRepository(repo.ID + 1)
	if d := get(); d != m1.Digest {
		t.Fatalf("a notification for another repository dropped this one")
	}
	fed.InvalidateRepository(repo.ID)
	if d := get(); d != m2.Digest {
		t.Fatalf("after InvalidateRepository the tag points at %s, want %s", d, m2.Digest)
	}

	deleting := models.Account{Name: "acct", IsDeleting: true}
	if err := other.UpdateAccount(ctx, deleting); err != nil {
		t.Fatalf("UpdateAccount: %v", err)
	}
	if _, err := fed.GetAccount(ctx, "acct"); err != nil {
		t.Fatal(err)
	}
	fed.InvalidateAccount("acct")
	if a, err := fed.GetAccount(ctx, "acct"); err != nil || !a.IsDeleting {
		t.Fatalf("after InvalidateAccount: %+v, %v", a, err)
	}
}

// TestConcurrentTagMoves moves a tag back and forth while readers read it:
// once the writer is done, every reader must see the last position.
func TestConcurrentTagMoves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keppel.db")
	cached := cachedFile(t, path, 0)
	other := openFile(t, path)
	repo, m1 := fixture(t, cached, "{}")
	m2 := manifest(repo, "{ }")
	ctx := t.Context()
	if err := cached.PutManifest(ctx, m2, nil, nil, ""); err != nil {
		t.Fatal(err)
	}

	const moves = 60
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := cached.GetTaggedManifest(ctx, repo.ID, "latest"); err != nil {
					t.Errorf("GetTaggedManifest: %v", err)
					return
				}
			}
		})
	}
	last := m1
	for i := range moves {
		last = []models.ManifestWithContent{m1, m2}[i%2]
		writer := []db.Store{cached, other}[i%3%2]
		if err := writer.PutManifest(ctx, last, nil, nil, "latest"); err != nil {
			t.Fatalf("PutManifest: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	got, err := cached.GetTaggedManifest(ctx, repo.ID, "latest")
	if err != nil || got.Digest != last.Digest {
		t.Fatalf("after the moves the tag points at %s (%v), want %s", got.Digest, err, last.Digest)
	}
}

// TestBound fills a small cache with many manifests: its size stays within
// the bound, and the most recently used entries stay.
func TestBound(t *testing.T) {
	const maxBytes = 64 << 10
	path := filepath.Join(t.TempDir(), "keppel.db")
	cached := cachedFile(t, path, maxBytes)
	repo, _ := fixture(t, cached, "{}")
	ctx := t.Context()
	var all []models.ManifestWithContent
	for i := range 200 {
		m := manifest(repo, fmt.Sprintf("%01000d", i))
		m.Digest = fmt.Sprintf("sha256:%064x", 1000+i)
		if err := cached.PutManifest(ctx, m, nil, nil, ""); err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	for _, m := range all {
		if _, err := cached.GetManifest(ctx, repo.ID, m.Digest); err != nil {
			t.Fatal(err)
		}
	}
	st := cached.Stats()
	if st.Bytes > maxBytes || st.Entries == 0 || st.Entries >= len(all) {
		t.Fatalf("after 200 manifests of 1 KB: %+v, want between 1 and 199 entries within %d bytes", st, maxBytes)
	}
	// The last one read is still there.
	before := cached.Stats().Hits
	if _, err := cached.GetManifest(ctx, repo.ID, all[len(all)-1].Digest); err != nil {
		t.Fatal(err)
	}
	if cached.Stats().Hits != before+1 {
		t.Errorf("the most recently used manifest was evicted")
	}
	// A value larger than a shard is served but not kept.
	big := manifest(repo, string(make([]byte, maxBytes)))
	big.Digest = fmt.Sprintf("sha256:%064x", 99999)
	if err := cached.PutManifest(ctx, big, nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := cached.GetManifest(ctx, repo.ID, big.Digest); err != nil || len(got.Content) != maxBytes {
			t.Fatalf("GetManifest(big): %d bytes, %v", len(got.Content), err)
		}
	}
	if st := cached.Stats(); st.Bytes > maxBytes {
		t.Errorf("a value beyond the bound was kept: %+v", st)
	}
}

// Every method of db.Store is either served through the cache, or a write
// that invalidates it, or known to touch nothing the cache holds. A new
// method must be sorted in here, and the first two kinds must be declared
// in package dbcache (not merely promoted from the inner store).
var (
	cachedReads = []string{"GetAccount", "GetRepository", "FindOrCreateRepository", "GetManifest",
		"GetTaggedManifest", "GetBlobInRepository", "ListTags"}
	invalidatingWrites = []string{"CreateAccount", "UpdateAccount", "DeleteAccount", "DeleteRepository",
		"CreateBlobAndMount", "MountBlob", "UnmountBlob", "PutManifest", "DeleteManifest", "DeleteTag",
		"RecordPulls", "SweepBlobMounts", "RecordBlobValidation", "SetBlobStorage", "SetGCStatuses", "RecordVulnerabilityScan",
		"RecordManifestValidation", "ForgetBlobContent"}
	untouched = []string{"Ping", "Close", "ListAccounts", "ListRepositories", "GetBlobInAccount",
		"CreateUpload", "GetUpload", "UpdateUpload", "DeleteUpload", "ListStaleUploads", "DeleteStaleUpload",
		"ListReferrers", "ListManifestsNotInStorage", "MarkManifestsInStorage", "GetUser", "PutUser", "ListAccountsOfTenants", "ListRepositoriesOfTenants",
		"ListRepositoryStats", "ListManifestInfos", "GetTag", "ListTagsOfManifest", "ListUsers", "DeleteUser",
		"SetRole", "ListRoles", "ListTenantMembers", "CreateAPIKey", "GetAPIKey", "ListAPIKeys", "RevokeAPIKey",
		"GetQuota", "PutQuota", "GetUsage", "SweepBlobs", "ClaimStorageSweep", "ClaimReplicaSync", "ClaimVulnerabilityScan", "GetVulnerabilityReport", "RescheduleVulnerabilityScans", "ListChildVulnerabilityStatuses", "ReconcileUnknownObjects", "ClaimBlobValidation", "ClaimGCPolicyRun", "ListGCCandidates", "ClaimManifestValidation", "RecordAuditEvents", "ListAuditEvents",
		"GetPeer", "IssuePeerPassword", "MarkPeerPasswordDelivered", "StoreReceivedPeerPassword",
		"ListBlobsOfAccount", "ListManifestsOfAccount", "ListUnknownObjects"}
)

func TestMethodClassification(t *testing.T) {
	sorted := map[string]string{}
	for kind, names := range map[string][]string{"cached": cachedReads, "invalidating": invalidatingWrites, "untouched": untouched} {
		for _, n := range names {
			if prev, dup := sorted[n]; dup {
				t.Errorf("%s is listed as %s and %s", n, prev, kind)
			}
			sorted[n] = kind
		}
	}
	iface := reflect.TypeFor[db.Store]()
	for i := range iface.NumMethod() {
		name := iface.Method(i).Name
		if _, ok := sorted[name]; !ok {
			t.Errorf("db.Store.%s is new: decide whether dbcache must serve it, invalidate on it, or ignore it", name)
		}
		delete(sorted, name)
	}
	for name := range sorted {
		t.Errorf("%s is listed but is not a method of db.Store", name)
	}

	declared := map[string]bool{}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv != nil {
				declared[fn.Name.Name] = true
			}
		}
	}
	for _, n := range append(append([]string{}, cachedReads...), invalidatingWrites...) {
		if !declared[n] {
			t.Errorf("dbcache.Store does not declare %s", n)
		}
	}
}
