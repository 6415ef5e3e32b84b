package storagetest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"keppel/internal/storage"
)

func testSingleChunkUpload(t *testing.T, d storage.Driver) {
	uploadBlob(t, d, refA, "blob1", []byte("hello world"))
	expectBlob(t, d, refA, "blob1", []byte("hello world"))
	// Reading twice gives the same content.
	expectBlob(t, d, refA, "blob1", []byte("hello world"))
}

func testMultiChunkUpload(t *testing.T, d storage.Driver) {
	chunks := [][]byte{[]byte("first chunk|"), []byte("second|"), bytes.Repeat([]byte("x"), 100000), []byte("|last")}
	uploadBlob(t, d, refA, "blob1", chunks...)
	expectBlob(t, d, refA, "blob1", bytes.Join(chunks, nil))
}

func testReadBeforeFinalize(t *testing.T, d storage.Driver) {
	appendChunk(t, d, refA, "blob1", 1, 0, []byte("abc"))
	expectBlobNotFound(t, d, refA, "blob1")
	appendChunk(t, d, refA, "blob1", 2, 3, []byte("def"))
	expectBlobNotFound(t, d, refA, "blob1")
	if err := d.FinalizeBlob(t.Context(), refA, "blob1", 2); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	expectBlob(t, d, refA, "blob1", []byte("abcdef"))
	// The upload is gone once finalized.
	_, err := d.AppendToBlob(t.Context(), refA, "blob1", 3, 6, strings.NewReader("ghi"))
	expectError(t, err, storage.ErrNotFound, "AppendToBlob after FinalizeBlob")
	expectBlob(t, d, refA, "blob1", []byte("abcdef"))
}

func testRanges(t *testing.T, d storage.Driver) {
	uploadBlob(t, d, refA, "blob1", []byte("01234"), []byte("56789"))
	tests := []struct {
		offset, length int64
		want           string
	}{
		{0, -1, "0123456789"},
		{0, 10, "0123456789"},
		{0, 1, "0"},
		{3, 4, "3456"},
		{3, -1, "3456789"},
		{4, 2, "45"}, // across the chunk boundary
		{9, 1, "9"},
		{9, -1, "9"},
		{5, 100, "56789"}, // cut at the end
		{0, 0, ""},
		{10, -1, ""},
		{10, 0, ""},
	}
	for _, tc := range tests {
		got := readBlob(t, d, refA, "blob1", tc.offset, tc.length)
		if string(got) != tc.want {
			t.Errorf("ReadBlob(offset %d, length %d) = %q, want %q", tc.offset, tc.length, got, tc.want)
		}
	}
	for _, bad := range [][2]int64{{11, -1}, {11, 1}, {-1, -1}, {-1, 5}, {0, -2}} {
		rc, err := d.ReadBlob(t.Context(), refA, "blob1", bad[0], bad[1])
		if err == nil {
			rc.Close()
		}
		expectError(t, err, storage.ErrInvalidRange, fmt.Sprintf("ReadBlob(offset %d, length %d)", bad[0], bad[1]))
	}
}

func testZeroLengthBlob(t *testing.T, d storage.Driver) {
	// One empty chunk.
	uploadBlob(t, d, refA, "empty1", []byte{})
	expectBlob(t, d, refA, "empty1", nil)
	// No chunk at all.
	if err := d.FinalizeBlob(t.Context(), refA, "empty2", 0); err != nil {
		t.Fatalf("FinalizeBlob with no chunks: %v", err)
	}
	expectBlob(t, d, refA, "empty2", nil)
	if got := readBlob(t, d, refA, "empty2", 0, 0); len(got) != 0 {
		t.Errorf("ReadBlob(0, 0) of an empty blob = %q", got)
	}
	rc, err := d.ReadBlob(t.Context(), refA, "empty2", 1, -1)
	if err == nil {
		rc.Close()
	}
	expectError(t, err, storage.ErrInvalidRange, "ReadBlob(offset 1) of an empty blob")
	expectContents(t, d, refA, []storage.StoredBlob{{StorageID: "empty1"}, {StorageID: "empty2"}}, nil)
}

func testOffsetMismatch(t *testing.T, d storage.Driver) {
	appendChunk(t, d, refA, "blob1", 1, 0, []byte("hello"))
	// The caller claims more than the upload holds.
	_, err := d.AppendToBlob(t.Context(), refA, "blob1", 2, 10, strings.NewReader("world"))
	expectError(t, err, storage.ErrUploadOffsetMismatch, "AppendToBlob with an offset beyond the upload")
	_, err = d.AppendToBlob(t.Context(), refA, "blob1", 2, -1, strings.NewReader("world"))
	if err == nil {
		t.Fatal("AppendToBlob with a negative offset succeeded")
	}
	// The upload is unchanged and can be continued at the right offset.
	appendChunk(t, d, refA, "blob1", 2, 5, []byte(" world"))
	if err := d.FinalizeBlob(t.Context(), refA, "blob1", 2); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	expectBlob(t, d, refA, "blob1", []byte("hello world"))

	// A later chunk of an upload that does not exist.
	_, err = d.AppendToBlob(t.Context(), refA, "missing", 2, 5, strings.NewReader("world"))
	expectError(t, err, storage.ErrNotFound, "AppendToBlob with offset 5 to a missing upload")
}

func testHalfWrittenChunk(t *testing.T, d storage.Driver) {
	// The first chunk fails half-way; the retry starts again at offset 0.
	first := []byte("first chunk, sent twice")
	_, err := d.AppendToBlob(t.Context(), refA, "blob1", 1, 0, newFailingReader(first, 6))
	expectError(t, err, errReaderBroken, "AppendToBlob with a failing reader")
	expectBlobNotFound(t, d, refA, "blob1")
	appendChunk(t, d, refA, "blob1", 1, 0, first)

	// A later chunk, bigger than any copy buffer, fails half-way.
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	offset := int64(len(first))
	_, err = d.AppendToBlob(t.Context(), refA, "blob1", 2, offset, newFailingReader(big, len(big)-1000))
	expectError(t, err, errReaderBroken, "AppendToBlob with a failing reader")
	appendChunk(t, d, refA, "blob1", 2, offset, []byte("|second"))
	if err := d.FinalizeBlob(t.Context(), refA, "blob1", 2); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	expectBlob(t, d, refA, "blob1", []byte("first chunk, sent twice|second"))
	expectContents(t, d, refA, []storage.StoredBlob{{StorageID: "blob1", SizeBytes: int64(len(first)) + 7}}, nil)

	// Finalizing right after a failed chunk keeps only the acknowledged ones.
	appendChunk(t, d, refA, "blob2", 1, 0, []byte("kept"))
	_, err = d.AppendToBlob(t.Context(), refA, "blob2", 2, 4, newFailingReader(big, len(big)/2))
	expectError(t, err, errReaderBroken, "AppendToBlob with a failing reader")
	if err := d.FinalizeBlob(t.Context(), refA, "blob2", 1); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	expectBlob(t, d, refA, "blob2", []byte("kept"))
}

func testRetriedChunk(t *testing.T, d storage.Driver) {
	// A chunk was written completely but the caller never acknowledged it
	// (say, the response got lost): the retry replaces it.
	appendChunk(t, d, refA, "blob1", 1, 0, []byte("aaaa"))
	appendChunk(t, d, refA, "blob1", 2, 4, []byte("bbbbbbbb"))
	appendChunk(t, d, refA, "blob1", 2, 4, []byte("cc"))
	appendChunk(t, d, refA, "blob1", 3, 6, []byte("dd"))
	if err := d.FinalizeBlob(t.Context(), refA, "blob1", 3); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	expectBlob(t, d, refA, "blob1", []byte("aaaaccdd"))
}

func testInvalidChunkNumber(t *testing.T, d storage.Driver) {
	if _, err := d.AppendToBlob(t.Context(), refA, "blob1", 0, 0, strings.NewReader("x")); err == nil {
		t.Fatal("AppendToBlob with chunk number 0 succeeded")
	}
}

func testCanceledContext(t *testing.T, d storage.Driver) {
	ctx := canceledContext(t)
	if _, err := d.AppendToBlob(ctx, refA, "blob1", 1, 0, strings.NewReader("abc")); err == nil {
		t.Error("AppendToBlob with a canceled context succeeded")
	}
	// Whatever the canceled call left behind, a retry starts cleanly.
	uploadBlob(t, d, refA, "blob1", []byte("abc"))
	expectBlob(t, d, refA, "blob1", []byte("abc"))
}

func testAbortUpload(t *testing.T, d storage.Driver) {
	appendChunk(t, d, refA, "blob1", 1, 0, []byte("abc"))
	appendChunk(t, d, refA, "blob1", 2, 3, []byte("def"))
	if err := d.AbortBlobUpload(t.Context(), refA, "blob1", 2); err != nil {
		t.Fatalf("AbortBlobUpload: %v", err)
	}
	expectError(t, d.FinalizeBlob(t.Context(), refA, "blob1", 2), storage.ErrNotFound, "FinalizeBlob after abort")
	expectBlobNotFound(t, d, refA, "blob1")
	_, err := d.AppendToBlob(t.Context(), refA, "blob1", 3, 6, strings.NewReader("ghi"))
	expectError(t, err, storage.ErrNotFound, "AppendToBlob after abort")
	expectError(t, d.AbortBlobUpload(t.Context(), refA, "blob1", 2), storage.ErrNotFound, "second AbortBlobUpload")
	expectError(t, d.AbortBlobUpload(t.Context(), refA, "never", 1), storage.ErrNotFound, "AbortBlobUpload of an unknown upload")

	// Aborting does not touch a finished blob of another storage ID.
	uploadBlob(t, d, refA, "blob2", []byte("kept"))
	appendChunk(t, d, refA, "blob3", 1, 0, []byte("dropped"))
	if err := d.AbortBlobUpload(t.Context(), refA, "blob3", 1); err != nil {
		t.Fatalf("AbortBlobUpload: %v", err)
	}
	expectBlob(t, d, refA, "blob2", []byte("kept"))
	expectContents(t, d, refA, []storage.StoredBlob{{StorageID: "blob2", SizeBytes: 4}}, nil)
}

func testDeleteBlob(t *testing.T, d storage.Driver) {
	uploadBlob(t, d, refA, "blob1", []byte("one"))
	uploadBlob(t, d, refA, "blob2", []byte("two"))
	if err := d.DeleteBlob(t.Context(), refA, "blob1"); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	expectBlobNotFound(t, d, refA, "blob1")
	expectBlob(t, d, refA, "blob2", []byte("two"))
	expectError(t, d.DeleteBlob(t.Context(), refA, "blob1"), storage.ErrNotFound, "second DeleteBlob")

	// An upload in progress is not a blob.
	appendChunk(t, d, refA, "blob3", 1, 0, []byte("three"))
	expectError(t, d.DeleteBlob(t.Context(), refA, "blob3"), storage.ErrNotFound, "DeleteBlob of an upload")
	if err := d.FinalizeBlob(t.Context(), refA, "blob3", 1); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	expectBlob(t, d, refA, "blob3", []byte("three"))
}

func testBlobNotFound(t *testing.T, d storage.Driver) {
	expectBlobNotFound(t, d, refA, "never")
	for _, length := range []int64{-1, 0, 5} {
		rc, err := d.ReadBlob(t.Context(), refA, "never", 0, length)
		if err == nil {
			rc.Close()
		}
		expectError(t, err, storage.ErrNotFound, "ReadBlob of an unknown blob")
	}
	expectError(t, d.DeleteBlob(t.Context(), refA, "never"), storage.ErrNotFound, "DeleteBlob of an unknown blob")
	expectError(t, d.FinalizeBlob(t.Context(), refA, "never", 1), storage.ErrNotFound, "FinalizeBlob of an unknown upload")
	// The account exists now, the blob still does not.
	uploadBlob(t, d, refA, "blob1", []byte("x"))
	expectBlobNotFound(t, d, refA, "never")
	expectError(t, d.FinalizeBlob(t.Context(), refA, "never", 3), storage.ErrNotFound, "FinalizeBlob of an unknown upload")
}
