package fs_test

import (
	"bytes"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"keppel/internal/models"
	"keppel/internal/storage"
	"keppel/internal/storage/fs"
	"keppel/internal/storage/storagetest"
)

func TestSuite(t *testing.T) {
	storagetest.RunSuite(t, func(t *testing.T) storage.Driver {
		return newDriver(t, t.TempDir())
	})
}

func newDriver(t *testing.T, root string) *fs.Driver {
	t.Helper()
	d, err := fs.New(root)
	if err != nil {
		t.Fatalf("fs.New: %v", err)
	}
	return d
}

var ref = models.StorageRef{AuthTenantID: "tenant-1", AccountName: "alpha"}

const (
	digest1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digest2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// listFiles returns every file and directory below root (relative, with
// forward slashes), directories with a trailing slash.
func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(path string, e iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			rel += "/"
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return paths
}

func expectFiles(t *testing.T, root string, want ...string) {
	t.Helper()
	if got := listFiles(t, root); !slices.Equal(got, want) {
		t.Fatalf("files below the root:\n got %q\nwant %q", got, want)
	}
}

func expectFileContent(t *testing.T, path string, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if string(got) != want {
		t.Fatalf("%s holds %q, want %q", path, got, want)
	}
}

func TestNewRejectsEmptyRoot(t *testing.T) {
	if _, err := fs.New(""); err == nil {
		t.Fatal("fs.New(\"\") succeeded")
	}
}

func TestNewCreatesRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "does", "not", "exist")
	newDriver(t, root)
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("root directory was not created: %v", err)
	}
}

func TestLayout(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()

	if _, err := d.AppendToBlob(ctx, ref, "upload-1", 1, 0, strings.NewReader("in progress")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AppendToBlob(ctx, ref, "blob-1", 1, 0, strings.NewReader("finished")); err != nil {
		t.Fatal(err)
	}
	expectFileContent(t, filepath.Join(root, "tenant-1", "alpha", "u", "blob-1"), "finished")
	if err := d.FinalizeBlob(ctx, ref, "blob-1", 1); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteManifest(ctx, ref, "library/alpine", digest1, []byte("manifest")); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, root,
		"tenant-1/",
		"tenant-1/alpha/",
		"tenant-1/alpha/b/",
		"tenant-1/alpha/b/blob-1",
		"tenant-1/alpha/m/",
		"tenant-1/alpha/m/library/",
		"tenant-1/alpha/m/library/alpine/",
		"tenant-1/alpha/m/library/alpine/"+digest1,
		"tenant-1/alpha/u/",
		"tenant-1/alpha/u/upload-1",
	)
	acct := filepath.Join(root, "tenant-1", "alpha")
	expectFileContent(t, filepath.Join(acct, "b", "blob-1"), "finished")
	expectFileContent(t, filepath.Join(acct, "u", "upload-1"), "in progress")
	expectFileContent(t, filepath.Join(acct, "m", "library", "alpine", digest1), "manifest")
}

func TestDeleteManifestRemovesEmptyDirectories(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	for _, repo := range []string{"a/b/c", "a/x"} {
		if err := d.WriteManifest(ctx, ref, repo, digest1, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeleteManifest(ctx, ref, "a/b/c", digest1); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, root, "tenant-1/", "tenant-1/alpha/", "tenant-1/alpha/m/", "tenant-1/alpha/m/a/",
		"tenant-1/alpha/m/a/x/", "tenant-1/alpha/m/a/x/"+digest1)
	if err := d.DeleteManifest(ctx, ref, "a/x", digest1); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, root, "tenant-1/", "tenant-1/alpha/", "tenant-1/alpha/m/")
}

func TestCleanupAccountRemovesDirectories(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	other := models.StorageRef{AuthTenantID: "tenant-1", AccountName: "beta"}
	for _, r := range []models.StorageRef{ref, other} {
		if err := d.WriteManifest(ctx, r, "repo", digest1, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.AppendToBlob(ctx, ref, "pending", 1, 0, strings.NewReader("abandoned")); err != nil {
		t.Fatal(err)
	}
	if err := d.FinalizeBlob(ctx, ref, "empty", 0); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteBlob(ctx, ref, "empty"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteManifest(ctx, ref, "repo", digest1); err != nil {
		t.Fatal(err)
	}
	if err := d.CleanupAccount(ctx, ref); err != nil {
		t.Fatal(err)
	}
	// The tenant directory stays while it holds another account.
	expectFiles(t, root, "tenant-1/", "tenant-1/beta/", "tenant-1/beta/m/", "tenant-1/beta/m/repo/", "tenant-1/beta/m/repo/"+digest1)
	if err := d.DeleteManifest(ctx, other, "repo", digest1); err != nil {
		t.Fatal(err)
	}
	if err := d.CleanupAccount(ctx, other); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, root)
}

func TestPathTraversalIsRejected(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	d := newDriver(t, root)
	ctx := t.Context()
	// Content outside the root that a traversal would reach.
	if err := os.MkdirAll(filepath.Join(parent, "x", "b"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "x", "b", "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}

	badRefs := []models.StorageRef{
		{AuthTenantID: "../x", AccountName: "alpha"},
		{AuthTenantID: "..", AccountName: "x"},
		{AuthTenantID: "tenant-1", AccountName: "../../x"},
		{AuthTenantID: "/", AccountName: "x"},
		{AuthTenantID: "..\\..", AccountName: "x"},
	}
	for _, r := range badRefs {
		rc, err := d.ReadBlob(ctx, r, "secret", 0, -1)
		if err == nil {
			rc.Close()
		}
		expectInvalidName(t, err, "ReadBlob", r)
		_, err = d.AppendToBlob(ctx, r, "new", 1, 0, strings.NewReader("x"))
		expectInvalidName(t, err, "AppendToBlob", r)
		expectInvalidName(t, d.DeleteBlob(ctx, r, "secret"), "DeleteBlob", r)
		expectInvalidName(t, d.CleanupAccount(ctx, r), "CleanupAccount", r)
		_, _, err = d.ListStorageContents(ctx, r)
		expectInvalidName(t, err, "ListStorageContents", r)
	}
	for _, id := range []string{"../../../x/b/secret", "../b/x", ".."} {
		rc, err := d.ReadBlob(ctx, ref, id, 0, -1)
		if err == nil {
			rc.Close()
		}
		expectInvalidName(t, err, "ReadBlob "+id, ref)
		expectInvalidName(t, d.FinalizeBlob(ctx, ref, id, 0), "FinalizeBlob "+id, ref)
	}
	for _, tc := range []struct{ repo, digest string }{
		{"a/../../b", digest1},
		{"../../../x/b", digest1},
		{"repo", "sha256:../../etc"},
		{"repo", "../../../../x/b/secret"},
		{"a/../../../../x/b", "sha256:abc"},
	} {
		expectInvalidName(t, d.WriteManifest(ctx, ref, tc.repo, tc.digest, []byte("{}")), "WriteManifest "+tc.repo+"@"+tc.digest, ref)
		_, err := d.ReadManifest(ctx, ref, tc.repo, tc.digest)
		expectInvalidName(t, err, "ReadManifest "+tc.repo+"@"+tc.digest, ref)
		expectInvalidName(t, d.DeleteManifest(ctx, ref, tc.repo, tc.digest), "DeleteManifest "+tc.repo+"@"+tc.digest, ref)
	}

	// Nothing was created, inside the root or next to it, and the content
	// outside the root is intact.
	expectFiles(t, root)
	expectFiles(t, parent, "root/", "x/", "x/b/", "x/b/secret")
	expectFileContent(t, filepath.Join(parent, "x", "b", "secret"), "secret")
}

func expectInvalidName(t *testing.T, err error, call string, r models.StorageRef) {
	t.Helper()
	if !errors.Is(err, storage.ErrInvalidName) {
		t.Errorf("%s in %q/%q returned %v, want ErrInvalidName", call, r.AuthTenantID, r.AccountName, err)
	}
}

func TestNoTemporaryFilesLeftBehind(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	for i := range 5 {
		if err := d.WriteManifest(ctx, ref, "repo", digest1, bytes.Repeat([]byte("m"), i*1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.WriteManifest(ctx, ref, "repo/sub", digest2, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AppendToBlob(ctx, ref, "blob", 1, 0, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AppendToBlob(ctx, ref, "blob", 2, 3, io.MultiReader(strings.NewReader("partial"), failingReader{})); err == nil {
		t.Fatal("AppendToBlob with a failing reader succeeded")
	}
	if err := d.FinalizeBlob(ctx, ref, "blob", 1); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, root, "tenant-1/", "tenant-1/alpha/", "tenant-1/alpha/b/", "tenant-1/alpha/b/blob",
		"tenant-1/alpha/m/", "tenant-1/alpha/m/repo/", "tenant-1/alpha/m/repo/"+digest1,
		"tenant-1/alpha/m/repo/sub/", "tenant-1/alpha/m/repo/sub/"+digest2,
		"tenant-1/alpha/u/")
	expectFileContent(t, filepath.Join(root, "tenant-1", "alpha", "b", "blob"), "abc")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection dropped") }

func TestLeftoverTemporaryFilesAreIgnored(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := t.Context()
	if err := d.WriteManifest(ctx, ref, "repo", digest1, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	// A crash between creating and renaming a temporary file leaves it behind.
	leftover := filepath.Join(root, "tenant-1", "alpha", "m", "repo", ".tmp-12345")
	if err := os.WriteFile(leftover, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, manifests, err := d.ListStorageContents(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if want := []storage.StoredManifest{{RepoName: "repo", Digest: digest1}}; !slices.Equal(manifests, want) {
		t.Fatalf("ListStorageContents listed %v, want %v", manifests, want)
	}
	if err := d.DeleteManifest(ctx, ref, "repo", digest1); err != nil {
		t.Fatal(err)
	}
	if err := d.CleanupAccount(ctx, ref); err != nil {
		t.Fatalf("CleanupAccount with a leftover temporary file: %v", err)
	}
	expectFiles(t, root)
}

func TestReadBlobReturnsFileForWholeBlob(t *testing.T) {
	t.Parallel()
	d := newDriver(t, t.TempDir())
	ctx := t.Context()
	if _, err := d.AppendToBlob(ctx, ref, "blob", 1, 0, strings.NewReader("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := d.FinalizeBlob(ctx, ref, "blob", 1); err != nil {
		t.Fatal(err)
	}
	whole, err := d.ReadBlob(ctx, ref, "blob", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if _, ok := whole.(*os.File); !ok {
		t.Errorf("ReadBlob of the whole blob returned %T, want *os.File", whole)
	}
	part, err := d.ReadBlob(ctx, ref, "blob", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	if _, ok := part.(*os.File); ok {
		t.Error("ReadBlob of a range returned the whole file")
	}
	if got, err := io.ReadAll(part); err != nil || string(got) != "234" {
		t.Errorf("ReadBlob(2, 3) = %q, %v", got, err)
	}
}

// TestAppendDoesNotBufferChunks checks that a chunk is streamed to disk
// rather than collected in memory. It does not run in parallel, so that the
// allocation statistics are its own.
func TestAppendDoesNotBufferChunks(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := t.Context()
	const size = 32 << 20
	src := io.LimitReader(zeroReader{}, size)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := d.AppendToBlob(ctx, ref, "blob", 1, 0, src)
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("AppendToBlob wrote %d bytes, error %v", n, err)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > size/4 {
		t.Errorf("AppendToBlob of %d bytes allocated %d bytes", size, allocated)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestWriteManifests writes a batch across repositories, with one bad name:
// every good file lands, the bad one alone fails.
func TestWriteManifests(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := newDriver(t, root)
	files := []storage.ManifestFile{
		{Ref: ref, RepoName: "library/alpine", Digest: digest1, Content: []byte("one")},
		{Ref: ref, RepoName: "library/alpine", Digest: digest2, Content: []byte("two")},
		{Ref: ref, RepoName: "other", Digest: digest1, Content: []byte("three")},
		{Ref: ref, RepoName: "../escape", Digest: digest1, Content: []byte("bad")},
	}
	errs := d.WriteManifests(t.Context(), files)
	for i, err := range errs[:3] {
		if err != nil {
			t.Errorf("file %d: %v", i, err)
		}
	}
	if !errors.Is(errs[3], storage.ErrInvalidName) {
		t.Errorf("bad name: %v, want ErrInvalidName", errs[3])
	}
	for _, f := range files[:3] {
		got, err := d.ReadManifest(t.Context(), f.Ref, f.RepoName, f.Digest)
		if err != nil || string(got) != string(f.Content) {
			t.Errorf("%s/%s: %q, %v", f.RepoName, f.Digest, got, err)
		}
	}
	expectFiles(t, root, "tenant-1/", "tenant-1/alpha/", "tenant-1/alpha/m/", "tenant-1/alpha/m/library/",
		"tenant-1/alpha/m/library/alpine/", "tenant-1/alpha/m/library/alpine/"+digest1,
		"tenant-1/alpha/m/library/alpine/"+digest2, "tenant-1/alpha/m/other/", "tenant-1/alpha/m/other/"+digest1)
	info, err := os.Stat(filepath.Join(root, "tenant-1", "alpha", "m", "other", digest1))
	if err != nil || info.Mode().Perm()&0o400 == 0 || info.Mode().Perm()&0o022 != 0 {
		t.Errorf("permissions of a manifest file: %v, %v", info, err)
	}
}
