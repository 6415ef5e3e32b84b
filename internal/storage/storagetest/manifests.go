package storagetest

import (
	"testing"

	"keppel/internal/storage"
)

func testManifests(t *testing.T, d storage.Driver) {
	content1 := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	content2 := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}`)
	if err := d.WriteManifest(t.Context(), refA, "library/alpine", digest1, content1); err != nil {
		t.Fatalf("WriteManifest: %v", err)
	}
	if err := d.WriteManifest(t.Context(), refA, "library/alpine", digest3, content2); err != nil {
		t.Fatalf("WriteManifest: %v", err)
	}
	expectManifest(t, d, refA, "library/alpine", digest1, content1)
	expectManifest(t, d, refA, "library/alpine", digest3, content2)

	// Neither the caller's slice nor the returned one aliases stored content.
	content1[0] = 'X'
	got, err := d.ReadManifest(t.Context(), refA, "library/alpine", digest1)
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	if got[0] != '{' {
		t.Fatal("changing the slice passed to WriteManifest changed the stored manifest")
	}
	got[0] = 'Y'
	content1[0] = '{'
	expectManifest(t, d, refA, "library/alpine", digest1, content1)

	if err := d.DeleteManifest(t.Context(), refA, "library/alpine", digest1); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	expectManifestNotFound(t, d, refA, "library/alpine", digest1)
	expectManifest(t, d, refA, "library/alpine", digest3, content2)
	expectError(t, d.DeleteManifest(t.Context(), refA, "library/alpine", digest1), storage.ErrNotFound, "second DeleteManifest")

	// Deleting the last manifest of a repository, then writing again.
	if err := d.DeleteManifest(t.Context(), refA, "library/alpine", digest3); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	expectContents(t, d, refA, nil, nil)
	if err := d.WriteManifest(t.Context(), refA, "library/alpine", digest1, content1); err != nil {
		t.Fatalf("WriteManifest after deleting all manifests: %v", err)
	}
	expectManifest(t, d, refA, "library/alpine", digest1, content1)

	// Empty content is stored as such.
	if err := d.WriteManifest(t.Context(), refA, "empty", digest2, nil); err != nil {
		t.Fatalf("WriteManifest with empty content: %v", err)
	}
	expectManifest(t, d, refA, "empty", digest2, nil)
}

func testManifestOverwrite(t *testing.T, d storage.Driver) {
	for i, content := range [][]byte{[]byte("a long first version of the manifest"), []byte("short"), []byte("third")} {
		if err := d.WriteManifest(t.Context(), refA, "repo", digest1, content); err != nil {
			t.Fatalf("WriteManifest #%d: %v", i+1, err)
		}
		expectManifest(t, d, refA, "repo", digest1, content)
	}
	expectContents(t, d, refA, nil, []storage.StoredManifest{{RepoName: "repo", Digest: digest1}})
}

func testNestedRepositories(t *testing.T, d storage.Driver) {
	// A repository and the repositories below it hold manifests side by side.
	repos := []string{"a", "a/b", "a/b/c", "a/bc", "ab"}
	for _, repo := range repos {
		if err := d.WriteManifest(t.Context(), refA, repo, digest1, []byte("content of "+repo)); err != nil {
			t.Fatalf("WriteManifest(%s): %v", repo, err)
		}
	}
	for _, repo := range repos {
		expectManifest(t, d, refA, repo, digest1, []byte("content of "+repo))
	}
	// Deleting in the middle keeps the others.
	if err := d.DeleteManifest(t.Context(), refA, "a/b", digest1); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	expectManifestNotFound(t, d, refA, "a/b", digest1)
	for _, repo := range []string{"a", "a/b/c", "a/bc", "ab"} {
		expectManifest(t, d, refA, repo, digest1, []byte("content of "+repo))
	}
	// Deleting the deepest one, then writing into the middle again.
	if err := d.DeleteManifest(t.Context(), refA, "a/b/c", digest1); err != nil {
		t.Fatalf("DeleteManifest: %v", err)
	}
	if err := d.WriteManifest(t.Context(), refA, "a/b", digest2, []byte("again")); err != nil {
		t.Fatalf("WriteManifest: %v", err)
	}
	expectContents(t, d, refA, nil, []storage.StoredManifest{
		{RepoName: "a", Digest: digest1},
		{RepoName: "a/b", Digest: digest2},
		{RepoName: "a/bc", Digest: digest1},
		{RepoName: "ab", Digest: digest1},
	})
}

func testManifestNotFound(t *testing.T, d storage.Driver) {
	expectManifestNotFound(t, d, refA, "repo", digest1)
	expectError(t, d.DeleteManifest(t.Context(), refA, "repo", digest1), storage.ErrNotFound, "DeleteManifest of an unknown manifest")
	if err := d.WriteManifest(t.Context(), refA, "repo/sub", digest1, []byte("x")); err != nil {
		t.Fatalf("WriteManifest: %v", err)
	}
	// Other digests, parent and child repositories, and blobs with the same
	// name stay unknown.
	expectManifestNotFound(t, d, refA, "repo/sub", digest2)
	expectManifestNotFound(t, d, refA, "repo", digest1)
	expectManifestNotFound(t, d, refA, "repo/sub/deeper", digest1)
	expectManifestNotFound(t, d, refA, "other", digest1)
	expectError(t, d.DeleteManifest(t.Context(), refA, "repo", digest1), storage.ErrNotFound, "DeleteManifest in a parent repository")
	expectManifest(t, d, refA, "repo/sub", digest1, []byte("x"))
}
