package storagetest

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"keppel/internal/models"
	"keppel/internal/storage"
)

func testIsolation(t *testing.T, d storage.Driver) {
	refs := []models.StorageRef{refA, refB, refA2}
	// The same storage ID, repository and digest in every account.
	for _, ref := range refs {
		uploadBlob(t, d, ref, "shared", []byte("blob of "+ref.AuthTenantID+"/"+ref.AccountName))
		if err := d.WriteManifest(t.Context(), ref, "repo", digest1, []byte("manifest of "+ref.AuthTenantID+"/"+ref.AccountName)); err != nil {
			t.Fatalf("WriteManifest: %v", err)
		}
	}
	for _, ref := range refs {
		expectBlob(t, d, ref, "shared", []byte("blob of "+ref.AuthTenantID+"/"+ref.AccountName))
		expectManifest(t, d, ref, "repo", digest1, []byte("manifest of "+ref.AuthTenantID+"/"+ref.AccountName))
	}

	// An upload of one account cannot be continued or finished in another.
	appendChunk(t, d, refA, "upload", 1, 0, []byte("abc"))
	for _, ref := range []models.StorageRef{refB, refA2} {
		_, err := d.AppendToBlob(t.Context(), ref, "upload", 2, 3, strings.NewReader("def"))
		expectError(t, err, storage.ErrNotFound, "AppendToBlob in another account")
		expectError(t, d.FinalizeBlob(t.Context(), ref, "upload", 1), storage.ErrNotFound, "FinalizeBlob in another account")
		expectError(t, d.AbortBlobUpload(t.Context(), ref, "upload", 1), storage.ErrNotFound, "AbortBlobUpload in another account")
	}
	if err := d.FinalizeBlob(t.Context(), refA, "upload", 1); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	for _, ref := range []models.StorageRef{refB, refA2} {
		expectBlobNotFound(t, d, ref, "upload")
	}

	// Deleting in one account leaves the others alone.
	if err := d.DeleteBlob(t.Context(), refA, "shared"); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	if err := d.DeleteManifest(t.Context(), refA, "repo", digest1); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	expectBlobNotFound(t, d, refA, "shared")
	expectManifestNotFound(t, d, refA, "repo", digest1)
	for _, ref := range []models.StorageRef{refB, refA2} {
		expectBlob(t, d, ref, "shared", []byte("blob of "+ref.AuthTenantID+"/"+ref.AccountName))
		expectManifest(t, d, ref, "repo", digest1, []byte("manifest of "+ref.AuthTenantID+"/"+ref.AccountName))
		expectContents(t, d, ref,
			[]storage.StoredBlob{{StorageID: "shared", SizeBytes: int64(len("blob of " + ref.AuthTenantID + "/" + ref.AccountName))}},
			[]storage.StoredManifest{{RepoName: "repo", Digest: digest1}})
	}
	expectContents(t, d, refA, []storage.StoredBlob{{StorageID: "upload", SizeBytes: 3}}, nil)

	// Cleaning up one account leaves the others alone, including the one
	// of the same name under another tenant.
	if err := d.DeleteBlob(t.Context(), refA, "upload"); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	if err := d.CleanupAccount(t.Context(), refA); err != nil {
		t.Fatalf("CleanupAccount: %v", err)
	}
	for _, ref := range []models.StorageRef{refB, refA2} {
		expectBlob(t, d, ref, "shared", []byte("blob of "+ref.AuthTenantID+"/"+ref.AccountName))
		expectManifest(t, d, ref, "repo", digest1, []byte("manifest of "+ref.AuthTenantID+"/"+ref.AccountName))
	}
}

func testListStorageContents(t *testing.T, d storage.Driver) {
	// An account that never stored anything.
	expectContents(t, d, refA, nil, nil)

	// Uploads in progress are not listed.
	appendChunk(t, d, refA, "pending", 1, 0, []byte("not yet"))
	expectContents(t, d, refA, nil, nil)

	uploadBlob(t, d, refA, "blob-1", []byte("abc"))
	uploadBlob(t, d, refA, "blob-2", []byte{})
	uploadBlob(t, d, refA, "blob-3", []byte("12345"), []byte("67890"))
	for _, m := range []storage.StoredManifest{
		{RepoName: "library/alpine", Digest: digest1},
		{RepoName: "library/alpine", Digest: digest2},
		{RepoName: "library/alpine/edge", Digest: digest3},
		{RepoName: "tools", Digest: digest1},
	} {
		if err := d.WriteManifest(t.Context(), refA, m.RepoName, m.Digest, []byte("{}")); err != nil {
			t.Fatalf("WriteManifest: %v", err)
		}
	}
	expectContents(t, d, refA,
		[]storage.StoredBlob{{StorageID: "blob-1", SizeBytes: 3}, {StorageID: "blob-2", SizeBytes: 0}, {StorageID: "blob-3", SizeBytes: 10}},
		[]storage.StoredManifest{
			{RepoName: "library/alpine", Digest: digest1},
			{RepoName: "library/alpine", Digest: digest2},
			{RepoName: "library/alpine/edge", Digest: digest3},
			{RepoName: "tools", Digest: digest1},
		})

	if err := d.DeleteBlob(t.Context(), refA, "blob-1"); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	if err := d.DeleteManifest(t.Context(), refA, "library/alpine/edge", digest3); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	if err := d.FinalizeBlob(t.Context(), refA, "pending", 1); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	expectContents(t, d, refA,
		[]storage.StoredBlob{{StorageID: "blob-2", SizeBytes: 0}, {StorageID: "blob-3", SizeBytes: 10}, {StorageID: "pending", SizeBytes: 7}},
		[]storage.StoredManifest{
			{RepoName: "library/alpine", Digest: digest1},
			{RepoName: "library/alpine", Digest: digest2},
			{RepoName: "tools", Digest: digest1},
		})
	// Another account of the same tenant is still empty.
	expectContents(t, d, refB, nil, nil)
}

func testCleanupAccount(t *testing.T, d storage.Driver) {
	// An account that never stored anything.
	if err := d.CleanupAccount(t.Context(), refA); err != nil {
		t.Fatalf("CleanupAccount of an unknown account: %v", err)
	}
	uploadBlob(t, d, refB, "neighbour", []byte("stays"))

	// Content remains: refused, and nothing is removed.
	uploadBlob(t, d, refA, "blob1", []byte("abc"))
	expectError(t, d.CleanupAccount(t.Context(), refA), storage.ErrAccountNotEmpty, "CleanupAccount with a blob")
	expectBlob(t, d, refA, "blob1", []byte("abc"))
	if err := d.DeleteBlob(t.Context(), refA, "blob1"); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	if err := d.WriteManifest(t.Context(), refA, "repo/sub", digest1, []byte("{}")); err != nil {
		t.Fatalf("WriteManifest: %v", err)
	}
	appendChunk(t, d, refA, "pending", 1, 0, []byte("abandoned"))
	expectError(t, d.CleanupAccount(t.Context(), refA), storage.ErrAccountNotEmpty, "CleanupAccount with a manifest")
	expectManifest(t, d, refA, "repo/sub", digest1, []byte("{}"))
	appendChunk(t, d, refA, "pending", 2, 9, []byte(" upload"))

	// Only an abandoned upload remains: it is discarded with the account.
	if err := d.DeleteManifest(t.Context(), refA, "repo/sub", digest1); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	if err := d.CleanupAccount(t.Context(), refA); err != nil {
		t.Fatalf("CleanupAccount: %v", err)
	}
	expectContents(t, d, refA, nil, nil)
	expectError(t, d.FinalizeBlob(t.Context(), refA, "pending", 2), storage.ErrNotFound, "FinalizeBlob after CleanupAccount")
	if err := d.CleanupAccount(t.Context(), refA); err != nil {
		t.Fatalf("second CleanupAccount: %v", err)
	}

	// The neighbour is untouched, and the account name can be used again.
	expectBlob(t, d, refB, "neighbour", []byte("stays"))
	uploadBlob(t, d, refA, "blob2", []byte("new life"))
	expectBlob(t, d, refA, "blob2", []byte("new life"))
}

func testInvalidNames(t *testing.T, d storage.Driver) {
	badElements := []string{"", ".", "..", "../x", "x/..", "a/b", "/a", `a\b`, `..\x`, "a\x00b", strings.Repeat("x", 256)}
	ctx := t.Context()
	expectInvalid := func(err error, call string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s succeeded", call)
		} else if !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("%s returned %v, want ErrInvalidName", call, err)
		}
	}
	blobCalls := func(ref models.StorageRef, id, desc string) {
		t.Helper()
		_, err := d.AppendToBlob(ctx, ref, id, 1, 0, strings.NewReader("x"))
		expectInvalid(err, "AppendToBlob "+desc)
		expectInvalid(d.FinalizeBlob(ctx, ref, id, 0), "FinalizeBlob "+desc)
		expectInvalid(d.AbortBlobUpload(ctx, ref, id, 1), "AbortBlobUpload "+desc)
		rc, err := d.ReadBlob(ctx, ref, id, 0, -1)
		if err == nil {
			rc.Close()
		}
		expectInvalid(err, "ReadBlob "+desc)
		expectInvalid(d.DeleteBlob(ctx, ref, id), "DeleteBlob "+desc)
	}
	manifestCalls := func(ref models.StorageRef, repo, digest, desc string) {
		t.Helper()
		expectInvalid(d.WriteManifest(ctx, ref, repo, digest, []byte("{}")), "WriteManifest "+desc)
		_, err := d.ReadManifest(ctx, ref, repo, digest)
		expectInvalid(err, "ReadManifest "+desc)
		expectInvalid(d.DeleteManifest(ctx, ref, repo, digest), "DeleteManifest "+desc)
	}

	for _, bad := range badElements {
		for _, ref := range []models.StorageRef{
			{AuthTenantID: bad, AccountName: "alpha"},
			{AuthTenantID: "tenant-1", AccountName: bad},
		} {
			desc := "with tenant " + quote(ref.AuthTenantID) + " and account " + quote(ref.AccountName)
			blobCalls(ref, "blob1", desc)
			manifestCalls(ref, "repo", digest1, desc)
			_, _, err := d.ListStorageContents(ctx, ref)
			expectInvalid(err, "ListStorageContents "+desc)
			expectInvalid(d.CleanupAccount(ctx, ref), "CleanupAccount "+desc)
		}
		blobCalls(refA, bad, "with storage ID "+quote(bad))
	}

	badRepos := []string{"", ".", "..", "/", "/a", "a/", "a//b", "a/./b", "a/../../b", "../a", "a/..", `a\..\b`, "a\x00", "a:b", "a/sha256:abc"}
	for _, repo := range badRepos {
		manifestCalls(refA, repo, digest1, "with repository "+quote(repo))
	}
	badDigests := []string{"", "sha256", "sha256:", ":abc", "sha256:../../etc", "../sha256:abc", "sha256:abc/def",
		"sha256:ABC", "SHA256:abc", "sha256:abc\x00", "sha256:xyz", "..", `sha256:ab\cd`}
	for _, digest := range badDigests {
		manifestCalls(refA, "repo", digest, "with digest "+quote(digest))
	}

	// None of the calls above stored anything.
	for _, ref := range []models.StorageRef{refA, refB, refA2} {
		expectContents(t, d, ref, nil, nil)
	}

	// Unusual but valid names work.
	odd := models.StorageRef{AuthTenantID: "3F2504E0-4F89-11D3-9A0C-0305E82C3301", AccountName: "a..b"}
	uploadBlob(t, d, odd, "..blob.", []byte("odd"))
	expectBlob(t, d, odd, "..blob.", []byte("odd"))
	if err := d.WriteManifest(ctx, odd, "x.y/z_w/v--u", digest3, []byte("{}")); err != nil {
		t.Fatalf("WriteManifest with valid names: %v", err)
	}
	expectContents(t, d, odd, []storage.StoredBlob{{StorageID: "..blob.", SizeBytes: 3}},
		[]storage.StoredManifest{{RepoName: "x.y/z_w/v--u", Digest: digest3}})
}

// quote quotes a name for test messages, shortening long ones.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}
