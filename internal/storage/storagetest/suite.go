// Package storagetest is the conformance suite that every storage driver
// must pass. A driver's test calls RunSuite with a constructor for fresh,
// empty driver instances.
package storagetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// RunSuite runs the conformance suite against the driver that newDriver
// returns. newDriver is called once per subtest and must return an empty
// driver that is independent of the others (subtests run in parallel).
func RunSuite(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d storage.Driver)
	}{
		{"SingleChunkUpload", testSingleChunkUpload},
		{"MultiChunkUpload", testMultiChunkUpload},
		{"ReadBeforeFinalize", testReadBeforeFinalize},
		{"Ranges", testRanges},
		{"ZeroLengthBlob", testZeroLengthBlob},
		{"OffsetMismatch", testOffsetMismatch},
		{"HalfWrittenChunkIsDiscarded", testHalfWrittenChunk},
		{"RetriedChunkReplacesTail", testRetriedChunk},
		{"InvalidChunkNumber", testInvalidChunkNumber},
		{"CanceledContext", testCanceledContext},
		{"AbortUpload", testAbortUpload},
		{"DeleteBlob", testDeleteBlob},
		{"BlobNotFound", testBlobNotFound},
		{"Manifests", testManifests},
		{"ManifestOverwrite", testManifestOverwrite},
		{"NestedRepositories", testNestedRepositories},
		{"ManifestNotFound", testManifestNotFound},
		{"Isolation", testIsolation},
		{"ListStorageContents", testListStorageContents},
		{"CleanupAccount", testCleanupAccount},
		{"InvalidNames", testInvalidNames},
		{"ConcurrentUploads", testConcurrentUploads},
		{"LargeStreamingBlob", testLargeStreamingBlob},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newDriver(t))
		})
	}
}

// Storage areas used by the tests: two accounts of one tenant, and an
// account of another tenant with the same name as the first.
var (
	refA  = models.StorageRef{AuthTenantID: "tenant-1", AccountName: "alpha"}
	refB  = models.StorageRef{AuthTenantID: "tenant-1", AccountName: "beta"}
	refA2 = models.StorageRef{AuthTenantID: "tenant-2", AccountName: "alpha"}
)

// Digests used as manifest names.
const (
	digest1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digest2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	digest3 = "sha512:33333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333"
)

// appendChunk appends one chunk and checks that all of it was written.
func appendChunk(t *testing.T, d storage.Driver, ref models.StorageRef, storageID string, chunkNumber uint32, offset int64, content []byte) {
	t.Helper()
	n, err := d.AppendToBlob(t.Context(), ref, storageID, chunkNumber, offset, bytes.NewReader(content))
	if err != nil {
		t.Fatalf("AppendToBlob(%s, chunk %d, offset %d): %v", storageID, chunkNumber, offset, err)
	}
	if n != int64(len(content)) {
		t.Fatalf("AppendToBlob(%s, chunk %d) wrote %d bytes, want %d", storageID, chunkNumber, n, len(content))
	}
}

// uploadBlob uploads chunks as one blob and finalizes it.
func uploadBlob(t *testing.T, d storage.Driver, ref models.StorageRef, storageID string, chunks ...[]byte) {
	t.Helper()
	var offset int64
	for i, chunk := range chunks {
		appendChunk(t, d, ref, storageID, uint32(i+1), offset, chunk)
		offset += int64(len(chunk))
	}
	if err := d.FinalizeBlob(t.Context(), ref, storageID, uint32(len(chunks))); err != nil {
		t.Fatalf("FinalizeBlob(%s): %v", storageID, err)
	}
}

// readBlob reads a range of a blob and fails the test on error.
func readBlob(t *testing.T, d storage.Driver, ref models.StorageRef, storageID string, offset, length int64) []byte {
	t.Helper()
	rc, err := d.ReadBlob(t.Context(), ref, storageID, offset, length)
	if err != nil {
		t.Fatalf("ReadBlob(%s, %d, %d): %v", storageID, offset, length, err)
	}
	defer rc.Close()
	content, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading blob %s: %v", storageID, err)
	}
	return content
}

// expectBlob checks the whole content of a blob.
func expectBlob(t *testing.T, d storage.Driver, ref models.StorageRef, storageID string, want []byte) {
	t.Helper()
	if got := readBlob(t, d, ref, storageID, 0, -1); !bytes.Equal(got, want) {
		t.Fatalf("blob %s in %s holds %q, want %q", storageID, ref.AccountName, abbrev(got), abbrev(want))
	}
}

// expectManifest checks the content of a manifest.
func expectManifest(t *testing.T, d storage.Driver, ref models.StorageRef, repo, digest string, want []byte) {
	t.Helper()
	got, err := d.ReadManifest(t.Context(), ref, repo, digest)
	if err != nil {
		t.Fatalf("ReadManifest(%s, %s): %v", repo, digest, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("manifest %s@%s holds %q, want %q", repo, digest, abbrev(got), abbrev(want))
	}
}

// expectError checks that err matches target with errors.Is.
func expectError(t *testing.T, err, target error, call string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s returned error %v, want %v", call, err, target)
	}
}

// expectBlobNotFound checks that a blob cannot be read.
func expectBlobNotFound(t *testing.T, d storage.Driver, ref models.StorageRef, storageID string) {
	t.Helper()
	rc, err := d.ReadBlob(t.Context(), ref, storageID, 0, -1)
	if err == nil {
		rc.Close()
	}
	expectError(t, err, storage.ErrNotFound, "ReadBlob("+storageID+")")
}

// expectManifestNotFound checks that a manifest cannot be read.
func expectManifestNotFound(t *testing.T, d storage.Driver, ref models.StorageRef, repo, digest string) {
	t.Helper()
	_, err := d.ReadManifest(t.Context(), ref, repo, digest)
	expectError(t, err, storage.ErrNotFound, "ReadManifest("+repo+"@"+digest+")")
}

// listContents returns an account's contents sorted by storage ID, and by
// repository and digest.
func listContents(t *testing.T, d storage.Driver, ref models.StorageRef) ([]storage.StoredBlob, []storage.StoredManifest) {
	t.Helper()
	blobs, manifests, err := d.ListStorageContents(t.Context(), ref)
	if err != nil {
		t.Fatalf("ListStorageContents(%v): %v", ref, err)
	}
	slices.SortFunc(blobs, func(a, b storage.StoredBlob) int {
		return cmp.Compare(a.StorageID, b.StorageID)
	})
	slices.SortFunc(manifests, func(a, b storage.StoredManifest) int {
		if c := cmp.Compare(a.RepoName, b.RepoName); c != 0 {
			return c
		}
		return cmp.Compare(a.Digest, b.Digest)
	})
	return blobs, manifests
}

// expectContents checks an account's listing; want slices must be sorted
// like listContents sorts.
func expectContents(t *testing.T, d storage.Driver, ref models.StorageRef, wantBlobs []storage.StoredBlob, wantManifests []storage.StoredManifest) {
	t.Helper()
	blobs, manifests := listContents(t, d, ref)
	if !slices.Equal(blobs, wantBlobs) {
		t.Errorf("blobs in %v: got %v, want %v", ref, blobs, wantBlobs)
	}
	if !slices.Equal(manifests, wantManifests) {
		t.Errorf("manifests in %v: got %v, want %v", ref, manifests, wantManifests)
	}
}

// abbrev shortens content for error messages.
func abbrev(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "..."...)
	}
	return b
}

// errReaderBroken is the error that newFailingReader's reader returns.
var errReaderBroken = errors.New("connection dropped")

// newFailingReader yields the first n bytes of content and then fails, like
// a client connection that drops in the middle of a chunk.
func newFailingReader(content []byte, n int) io.Reader {
	return io.MultiReader(bytes.NewReader(content[:n]), errorReader{})
}

type errorReader struct{}

func (errorReader) Read([]byte) (int, error) {
	return 0, errReaderBroken
}

// canceledContext returns a context that is already canceled.
func canceledContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
