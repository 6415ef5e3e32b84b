package storage_test

import (
	"errors"
	"testing"

	"keppel/internal/storage"
)

func TestParseManifestPath(t *testing.T) {
	const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	for path, want := range map[string]bool{
		"repo/" + digest:              true,
		"a/b/c/" + digest:             true,
		digest:                        false,
		"/" + digest:                  false,
		"repo/not-a-digest":           false,
		"../repo/" + digest:           false,
		"repo:tag/" + digest:          false,
		"repo/" + digest + "/":        false,
		"repo//" + digest:             false,
		"repo/sha256:ABC" + digest:    false,
		"repo/sub/sha512:" + "ab12cd": true,
	} {
		m, ok := storage.ParseManifestPath(path)
		if ok != want {
			t.Errorf("ParseManifestPath(%q) = %+v, %v; want ok %v", path, m, ok, want)
		}
		if ok && m.RepoName+"/"+m.Digest != path {
			t.Errorf("ParseManifestPath(%q) = %+v", path, m)
		}
	}
}

func TestSortContents(t *testing.T) {
	blobs := []storage.StoredBlob{{StorageID: "b"}, {StorageID: "a"}}
	manifests := []storage.StoredManifest{{RepoName: "r/x", Digest: "sha256:2"}, {RepoName: "r", Digest: "sha256:3"}, {RepoName: "r/x", Digest: "sha256:1"}}
	storage.SortContents(blobs, manifests)
	if blobs[0].StorageID != "a" || manifests[0].RepoName != "r" || manifests[1].Digest != "sha256:1" {
		t.Errorf("sorted: %v, %v", blobs, manifests)
	}
}

func TestHTTPRange(t *testing.T) {
	for _, tc := range []struct {
		offset, length int64
		header         string
		empty, bad     bool
	}{
		{0, -1, "", false, false},
		{5, -1, "bytes=5-", false, false},
		{0, 10, "bytes=0-9", false, false},
		{3, 4, "bytes=3-6", false, false},
		{7, 0, "", true, false},
		{-1, 5, "", false, true},
		{0, -2, "", false, true},
	} {
		header, empty, err := storage.HTTPRange(tc.offset, tc.length)
		if header != tc.header || empty != tc.empty || (err != nil) != tc.bad {
			t.Errorf("HTTPRange(%d, %d) = %q, %v, %v", tc.offset, tc.length, header, empty, err)
		}
		if tc.bad && !errors.Is(err, storage.ErrInvalidRange) {
			t.Errorf("HTTPRange(%d, %d): %v, want ErrInvalidRange", tc.offset, tc.length, err)
		}
	}
}
