package dbtest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"keppel/internal/db"
	"keppel/internal/models"
)

// workers is how many goroutines race for the same rows.
const workers = 12

// race runs fn(i) for every worker i at the same time and returns their
// errors.
func race(n int, fn func(i int) error) []error {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentFindOrCreateRepository(t *testing.T, s db.Store) {
	f := newFixture(s)
	f.account(t, "library")
	repos := make([]models.Repository, workers)
	// half of the workers race for one name, the others for another
	errs := race(workers, func(i int) error {
		var err error
		repos[i], err = s.FindOrCreateRepository(t.Context(), "library", fmt.Sprintf("repo-%d", i%2))
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: FindOrCreateRepository: %v", i, err)
		}
	}
	for i, r := range repos {
		if r != repos[i%2] {
			t.Fatalf("workers disagree: %+v vs. %+v", r, repos[i%2])
		}
	}
	if repos[0].ID == repos[1].ID {
		t.Fatalf("two repositories with the same ID: %+v, %+v", repos[0], repos[1])
	}
	list, err := s.ListRepositories(t.Context(), "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListRepositories: %v", err)
	}
	if len(list) != 2 {
		t.Fatalf("ListRepositories: %+v, want 2 repositories", list)
	}
}

func testConcurrentCreateBlobAndMount(t *testing.T, s db.Store) {
	f := newFixture(s)
	f.account(t, "library")
	repos := make([]models.Repository, workers/2)
	for i := range repos {
		repos[i] = f.repo(t, "library", fmt.Sprintf("repo-%d", i))
	}
	blobs := make([]models.Blob, workers)
	created := make([]bool, workers)
	// several workers per repository push the same content
	errs := race(workers, func(i int) error {
		b := f.newBlob("library", "popular layer")
		b.StorageID = fmt.Sprintf("storage-%d", i)
		var err error
		blobs[i], created[i], err = s.CreateBlobAndMount(t.Context(), b, repos[i%len(repos)].ID)
		return err
	})
	numCreated := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: CreateBlobAndMount: %v", i, err)
		}
		if created[i] {
			numCreated++
		}
		wantEqual(t, fmt.Sprintf("worker %d's blob", i), blobs[i], blobs[0])
	}
	if numCreated != 1 {
		t.Fatalf("%d workers created the blob, want exactly 1", numCreated)
	}
	for _, r := range repos {
		got, err := s.GetBlobInRepository(t.Context(), r.ID, blobs[0].Digest)
		if err != nil {
			t.Fatalf("GetBlobInRepository(%s): %v", r.FullName(), err)
		}
		wantEqual(t, "mounted blob", got, blobs[0])
	}
}

func testConcurrentPutManifest(t *testing.T, s db.Store) {
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	b := f.blob(t, repo, "layer")
	m := f.newManifest(repo, "manifest")
	errs := race(workers, func(i int) error {
		return s.PutManifest(t.Context(), m, []int64{b.ID}, nil, fmt.Sprintf("tag-%02d", i))
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: PutManifest: %v", i, err)
		}
	}
	tags, err := s.ListTags(t.Context(), repo.ID, "", db.NoLimit)
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	if len(tags) != workers {
		t.Fatalf("ListTags: %q, want %d tags", tags, workers)
	}
	for _, tag := range tags {
		got, err := s.GetTaggedManifest(t.Context(), repo.ID, tag)
		if err != nil {
			t.Fatalf("GetTaggedManifest(%s): %v", tag, err)
		}
		wantEqual(t, "manifest tagged "+tag, got, m)
	}
}

func testConcurrentUpdateUpload(t *testing.T, s db.Store) {
	f := newFixture(s)
	f.account(t, "library")
	repo := f.repo(t, "library", "alpine")
	u := models.Upload{RepositoryID: repo.ID, UUID: "u", StorageID: "st", DigestAlgorithm: "sha256", NumChunks: 1, UpdatedAt: f.tick()}
	if err := s.CreateUpload(t.Context(), u); err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	// every worker tries to append the second chunk
	errs := race(workers, func(i int) error {
		next := u
		next.NumChunks = 2
		next.SizeBytes = int64(i)
		next.HashState = []byte{byte(i)}
		return s.UpdateUpload(t.Context(), next, 1)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("workers %d and %d both updated the upload", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, db.ErrConflict):
			t.Fatalf("worker %d: got %v, want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no worker updated the upload")
	}
	got, err := s.GetUpload(t.Context(), repo.ID, "u")
	if err != nil {
		t.Fatalf("GetUpload: %v", err)
	}
	if got.NumChunks != 2 || got.SizeBytes != int64(winner) {
		t.Fatalf("GetUpload: %+v, want the winner's (%d) state", got, winner)
	}
}
