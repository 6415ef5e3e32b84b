package storagetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// randomReader returns a reader of size pseudo-random bytes, the same ones
// for the same seed. It generates them on the fly and buffers nothing.
func randomReader(seed byte, size int64) io.Reader {
	var key [32]byte
	key[0] = seed
	return io.LimitReader(rand.NewChaCha8(key), size)
}

func randomBytes(t *testing.T, seed byte, size int64) []byte {
	t.Helper()
	content, err := io.ReadAll(randomReader(seed, size))
	if err != nil {
		t.Fatalf("generate content: %v", err)
	}
	return content
}

func testConcurrentUploads(t *testing.T, d storage.Driver) {
	const workers = 12
	refs := []models.StorageRef{refA, refB, refA2}
	chunkSizes := []int64{100000, 1, 65536, 0, 12345}
	contentOf := func(worker int) []byte {
		return randomBytes(t, byte(worker), 100000+1+65536+12345)
	}
	sharedManifest := []byte(`{"shared":true}`)

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := t.Context()
			ref := refs[w%len(refs)]
			storageID := fmt.Sprintf("blob-%02d", w)
			content := contentOf(w)
			var offset int64
			for i, size := range chunkSizes {
				n, err := d.AppendToBlob(ctx, ref, storageID, uint32(i+1), offset, bytes.NewReader(content[offset:offset+size]))
				if err != nil || n != size {
					t.Errorf("worker %d: AppendToBlob chunk %d: wrote %d of %d bytes, error %v", w, i+1, n, size, err)
					return
				}
				offset += size
			}
			if err := d.FinalizeBlob(ctx, ref, storageID, uint32(len(chunkSizes))); err != nil {
				t.Errorf("worker %d: FinalizeBlob: %v", w, err)
			}
			// Everyone writes the same manifest, and its own next to it.
			if err := d.WriteManifest(ctx, ref, "shared/repo", digest1, sharedManifest); err != nil {
				t.Errorf("worker %d: WriteManifest: %v", w, err)
			}
			if err := d.WriteManifest(ctx, ref, "shared/repo", fmt.Sprintf("sha256:%064x", w), []byte(storageID)); err != nil {
				t.Errorf("worker %d: WriteManifest: %v", w, err)
			}
			// Repositories that appear and disappear while others write
			// into them.
			churnDigest := fmt.Sprintf("sha256:%064x", 1000+w)
			for i := range 20 {
				repo := fmt.Sprintf("churn/r%d/x", i%3)
				if err := d.WriteManifest(ctx, ref, repo, churnDigest, []byte(repo)); err != nil {
					t.Errorf("worker %d: WriteManifest(%s): %v", w, repo, err)
					return
				}
				if err := d.DeleteManifest(ctx, ref, repo, churnDigest); err != nil {
					t.Errorf("worker %d: DeleteManifest(%s): %v", w, repo, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	wantBlobs := make(map[models.StorageRef][]storage.StoredBlob)
	wantManifests := make(map[models.StorageRef][]storage.StoredManifest)
	for w := range workers {
		ref := refs[w%len(refs)]
		storageID := fmt.Sprintf("blob-%02d", w)
		content := contentOf(w)
		expectBlob(t, d, ref, storageID, content)
		expectManifest(t, d, ref, "shared/repo", fmt.Sprintf("sha256:%064x", w), []byte(storageID))
		wantBlobs[ref] = append(wantBlobs[ref], storage.StoredBlob{StorageID: storageID, SizeBytes: int64(len(content))})
		wantManifests[ref] = append(wantManifests[ref], storage.StoredManifest{RepoName: "shared/repo", Digest: fmt.Sprintf("sha256:%064x", w)})
	}
	for _, ref := range refs {
		expectManifest(t, d, ref, "shared/repo", digest1, sharedManifest)
		// The workers' digests (mostly zeros) sort before digest1.
		manifests := append(wantManifests[ref], storage.StoredManifest{RepoName: "shared/repo", Digest: digest1})
		expectContents(t, d, ref, wantBlobs[ref], manifests)
	}
}

func testLargeStreamingBlob(t *testing.T, d storage.Driver) {
	size := int64(64 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	const chunks = 4
	const seed = 42

	// Upload straight from the generator, hashing on the way.
	hash := sha256.New()
	src := io.TeeReader(randomReader(seed, size), hash)
	var offset int64
	for i := range chunks {
		chunkSize := size / chunks
		if i == chunks-1 {
			chunkSize = size - offset
		}
		n, err := d.AppendToBlob(t.Context(), refA, "large", uint32(i+1), offset, io.LimitReader(src, chunkSize))
		if err != nil {
			t.Fatalf("AppendToBlob chunk %d: %v", i+1, err)
		}
		if n != chunkSize {
			t.Fatalf("AppendToBlob chunk %d wrote %d bytes, want %d", i+1, n, chunkSize)
		}
		offset += n
	}
	if err := d.FinalizeBlob(t.Context(), refA, "large", chunks); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	want := fmt.Sprintf("%x", hash.Sum(nil))

	// Read back as a stream.
	rc, err := d.ReadBlob(t.Context(), refA, "large", 0, -1)
	if err != nil {
		t.Fatalf("ReadBlob: %v", err)
	}
	hash.Reset()
	n, err := io.Copy(hash, rc)
	rc.Close()
	if err != nil {
		t.Fatalf("reading blob: %v", err)
	}
	if got := fmt.Sprintf("%x", hash.Sum(nil)); n != size || got != want {
		t.Fatalf("read back %d bytes with sha256 %s, want %d bytes with sha256 %s", n, got, size, want)
	}

	// A range near the end.
	rangeOffset, rangeLength := size-4096-17, int64(4096)
	expected := randomReader(seed, size)
	if _, err := io.CopyN(io.Discard, expected, rangeOffset); err != nil {
		t.Fatalf("skip generated content: %v", err)
	}
	wantRange := make([]byte, rangeLength)
	if _, err := io.ReadFull(expected, wantRange); err != nil {
		t.Fatalf("generate content: %v", err)
	}
	if got := readBlob(t, d, refA, "large", rangeOffset, rangeLength); !bytes.Equal(got, wantRange) {
		t.Fatalf("range at offset %d differs from the uploaded content", rangeOffset)
	}
	expectContents(t, d, refA, []storage.StoredBlob{{StorageID: "large", SizeBytes: size}}, nil)
}
