// Package dbtest is the conformance suite of the metadata store: every
// db.Store implementation calls RunSuite from its tests, so that all backends
// behave the same.
package dbtest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// RunSuite runs the whole suite. newStore must return a new, empty store with
// the schema in place each time it is called, and close it when the test
// ends (t.Cleanup). Groups of tests run in parallel, each on its own store.
func RunSuite(t *testing.T, newStore func(t *testing.T) db.Store) {
	groups := []struct {
		name string
		run  func(t *testing.T, s db.Store)
	}{
		{"Ping", testPing},
		{"Accounts", testAccounts},
		{"AccountOrder", testAccountOrder},
		{"Users", testUsers},
		{"Repositories", testRepositories},
		{"RepositoryPagination", testRepositoryPagination},
		{"Blobs", testBlobs},
		{"BlobDedup", testBlobDedup},
		{"BlobMounts", testBlobMounts},
		{"UnmountBlob", testUnmountBlob},
		{"ReplicatedBlobs", testReplicatedBlobs},
		{"ReplicaSyncClaims", testReplicaSyncClaims},
		{"VulnerabilityScans", testVulnerabilityScans},
		{"Uploads", testUploads},
		{"UpdateUpload", testUpdateUpload},
		{"PutManifest", testPutManifest},
		{"PutManifestErrors", testPutManifestErrors},
		{"TagMove", testTagMove},
		{"ManifestsInStorage", testManifestsInStorage},
		{"PutManifestEvents", testPutManifestEvents},
		{"GCSweeps", testGCSweeps},
		{"GCSweepProtections", testGCSweepProtections},
		{"ReconcileUnknownObjects", testReconcileUnknownObjects},
		{"Inventory", testInventory},
		{"BlobValidation", testBlobValidation},
		{"GCPolicyRows", testGCPolicyRows},
		{"ManifestValidation", testManifestValidation},
		{"RePutManifest", testRePutManifest},
		{"DeleteManifest", testDeleteManifest},
		{"DeleteManifestParent", testDeleteManifestParent},
		{"Referrers", testReferrers},
		{"Tags", testTags},
		{"TagPagination", testTagPagination},
		{"RepositoryIsolation", testRepositoryIsolation},
		{"ConcurrentFindOrCreateRepository", testConcurrentFindOrCreateRepository},
		{"ConcurrentCreateBlobAndMount", testConcurrentCreateBlobAndMount},
		{"ConcurrentPutManifest", testConcurrentPutManifest},
		{"ConcurrentUpdateUpload", testConcurrentUpdateUpload},
		{"StaleUploads", testStaleUploads},
		{"RepositoriesOfTenants", testRepositoriesOfTenants},
		{"RecordPulls", testRecordPulls},
		{"UpdateAccount", testUpdateAccount},
		{"DeleteAccount", testDeleteAccount},
		{"AccountsOfTenants", testAccountsOfTenants},
		{"RepositoryStats", testRepositoryStats},
		{"RepositoryStatsPagination", testRepositoryStatsPagination},
		{"DeleteRepository", testDeleteRepository},
		{"ManifestInfos", testManifestInfos},
		{"GetTag", testGetTag},
		{"UserAdministration", testUserAdministration},
		{"Roles", testRoles},
		{"APIKeys", testAPIKeys},
		{"Quotas", testQuotas},
		{"Usage", testUsage},
		{"UsageUnchangedByFailures", testUsageUnchangedByFailures},
		{"UsageAfterDeletingAccount", testUsageAfterDeletingAccount},
		{"ConcurrentUsage", testConcurrentUsage},
		{"ConcurrentDeleteRepository", testConcurrentDeleteRepository},
		{"AuditEvents", testAuditEvents},
		{"AuditEventLimits", testAuditEventLimits},
		{"Peers", testPeers},
		{"ConcurrentPeerRotation", testConcurrentPeerRotation},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, newStore(t))
		})
	}
}

// fixture creates the rows that tests need. Its methods take the *testing.T
// of the (sub)test that calls them, so that they fail the right test.
type fixture struct {
	s db.Store
	// clock hands out distinct, increasing timestamps.
	clock atomic.Int64
}

func newFixture(s db.Store) *fixture {
	f := &fixture{s: s}
	f.clock.Store(1_700_000_000)
	return f
}

// ts returns a timestamp as the store returns it: whole seconds, UTC.
func ts(sec int64) time.Time {
	return time.Unix(sec, 0).UTC()
}

// tick returns the next timestamp of the fixture's clock.
func (f *fixture) tick() time.Time {
	return ts(f.clock.Add(60))
}

// digestOf returns the sha256 digest of content.
func digestOf(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (f *fixture) account(t *testing.T, name string) models.Account {
	t.Helper()
	a := models.Account{Name: name, AuthTenantID: "tenant-" + name, CreatedAt: f.tick()}
	if err := f.s.CreateAccount(t.Context(), a); err != nil {
		t.Fatalf("CreateAccount(%q): %v", name, err)
	}
	return a
}

// accountIn creates an account of the tenant.
func (f *fixture) accountIn(t *testing.T, name, tenantID string) models.Account {
	t.Helper()
	a := models.Account{Name: name, AuthTenantID: tenantID, CreatedAt: f.tick()}
	if err := f.s.CreateAccount(t.Context(), a); err != nil {
		t.Fatalf("CreateAccount(%q in %q): %v", name, tenantID, err)
	}
	return a
}

func (f *fixture) repo(t *testing.T, accountName, name string) models.Repository {
	t.Helper()
	r, err := f.s.FindOrCreateRepository(t.Context(), accountName, name)
	if err != nil {
		t.Fatalf("FindOrCreateRepository(%q, %q): %v", accountName, name, err)
	}
	return r
}

// newBlob returns a blob of the content, not yet stored.
func (f *fixture) newBlob(accountName, content string) models.Blob {
	return models.Blob{
		AccountName: accountName,
		Digest:      digestOf(content),
		SizeBytes:   int64(len(content)),
		StorageID:   "storage-" + digestOf(content)[7:19] + fmt.Sprint(f.clock.Load()),
		MediaType:   "application/vnd.oci.image.layer.v1.tar+gzip",
		PushedAt:    f.tick(),
	}
}

// blob stores a new blob of the content and mounts it into the repository.
func (f *fixture) blob(t *testing.T, repo models.Repository, content string) models.Blob {
	t.Helper()
	b, created, err := f.s.CreateBlobAndMount(t.Context(), f.newBlob(repo.AccountName, content), repo.ID)
	if err != nil {
		t.Fatalf("CreateBlobAndMount(%q): %v", content, err)
	}
	if !created {
		t.Fatalf("CreateBlobAndMount(%q): blob existed already", content)
	}
	return b
}

// newManifest returns a manifest with the content, not yet stored.
func (f *fixture) newManifest(repo models.Repository, content string) models.ManifestWithContent {
	return models.ManifestWithContent{
		Manifest: models.Manifest{
			RepositoryID: repo.ID,
			Digest:       digestOf(content),
			MediaType:    "application/vnd.oci.image.manifest.v1+json",
			SizeBytes:    int64(len(content)),
			PushedAt:     f.tick(),
			// what the database starts every manifest with
			VulnerabilityStatus: "Pending",
		},
		Content: []byte(content),
	}
}

// manifest stores a new manifest of the content with the references and tag.
func (f *fixture) manifest(t *testing.T, repo models.Repository, content string, blobs []models.Blob, children []string, tag string) models.ManifestWithContent {
	t.Helper()
	m := f.newManifest(repo, content)
	if len(children) > 0 {
		m.MediaType = "application/vnd.oci.image.index.v1+json"
	}
	if err := f.s.PutManifest(t.Context(), m, blobIDs(blobs), children, tag); err != nil {
		t.Fatalf("PutManifest(%q): %v", content, err)
	}
	return m
}

func blobIDs(blobs []models.Blob) []int64 {
	ids := make([]int64, len(blobs))
	for i, b := range blobs {
		ids[i] = b.ID
	}
	return ids
}

// wantErr fails the test unless err matches want (errors.Is), or is nil if
// want is nil.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error: %v", what, err)
	case want != nil && err == nil:
		t.Fatalf("%s: got no error, want %v", what, want)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: got error %q, want %v", what, err, want)
	}
	for _, other := range []error{db.ErrNotFound, db.ErrConflict, db.ErrStillReferenced, db.ErrReferenceMissing} {
		if other != want && errors.Is(err, other) {
			t.Fatalf("%s: error %q also matches %v", what, err, other)
		}
	}
}

// wantEqual fails the test unless got and want are deeply equal.
func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// errCase is a table entry for calls that must fail (or succeed) in a
// particular way.
type errCase struct {
	name string
	call func(t *testing.T) error
	want error
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, c.name, c.call(t), c.want)
		})
	}
}
