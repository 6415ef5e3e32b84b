package e2e

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/test"
)

// TestStorageMigrationFilesystemToS3 moves a running installation from the
// filesystem to S3 the way docs/operator-guide.md describes: API processes
// are restarted with the S3 storage and storage.migrate_from pointing at
// the filesystem, which they keep reading; then a janitor with the same
// configuration moves every account's content; finally processes run on S3
// alone. Pulls work at every step, an upload that was begun on the
// filesystem finishes after the switch, and at the end the filesystem
// holds no blob or manifest.
func TestStorageMigrationFilesystemToS3(t *testing.T) {
	t.Parallel()
	s3 := test.StartS3(t)
	bucket := s3.Bucket(t)
	fsRoot := filepath.Join(t.TempDir(), "storage")
	keys := t.TempDir()
	common := []string{
		"KEPPEL_DB_URL=" + test.PostgresDatabase(t),
		"KEPPEL_AUTH_ISSUER_KEY_FILE=" + filepath.Join(keys, "token-key.pem"),
		"KEPPEL_SECRETS_KEY_FILE=" + filepath.Join(keys, "secrets-key"),
	}
	onFS := append([]string{"KEPPEL_STORAGE_PATH=" + fsRoot}, common...)
	migrating := append(append(s3.Env(bucket), common...),
		"KEPPEL_STORAGE_MIGRATE_FROM_DRIVER=filesystem",
		"KEPPEL_STORAGE_MIGRATE_FROM_PATH="+fsRoot)
	onS3 := append(s3.Env(bucket), common...)

	// Before: everything on the filesystem.
	old := test.StartKeppelAPI(t, onFS...)
	old.CreateAccount(t, "shared", "tenant")
	refAt := func(p *test.Process, tag string) name.Reference {
		r, err := name.ParseReference(p.Addr+"/shared/app:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	images := map[string]v1.Image{}
	for _, tag := range []string{"one", "two"} {
		img, err := random.Image(3000, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(refAt(old, tag), img, adminAuth()); err != nil {
			t.Fatalf("push %s: %v", tag, err)
		}
		images[tag] = img
	}
	// An upload begun on the filesystem.
	first, second := randomBlob(7, 300000), randomBlob(8, 200000)
	content := append(append([]byte{}, first...), second...)
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(content))
	oldToken := processToken(t, old, "repository:shared/app:pull,push")
	resp := rawRequest(t, old, http.MethodPost, "/v2/shared/app/blobs/uploads/", oldToken, nil, nil)
	location := resp.Header.Get("Location")
	expectStatus(t, resp, http.StatusAccepted, "POST upload")
	location = patchChunk(t, old, location, oldToken, 0, first, "PATCH chunk 1 on the filesystem")
	if n := countFiles(t, fsRoot, "/b/"); n == 0 {
		t.Fatal("no blob on the filesystem before the migration")
	}

	// Rolling restart: the API process runs on S3 and still reads the
	// filesystem.
	api := test.StartKeppelAPI(t, migrating...)
	old.Stop()
	token := processToken(t, api, "repository:shared/app:pull,push")
	for tag, img := range images {
		expectImage(t, refAt(api, tag), img)
	}
	location = patchChunk(t, api, location, token, len(first), second, "PATCH chunk 2 after the switch")
	resp = rawRequest(t, api, http.MethodPut, withDigest(location, digest), token, nil, nil)
	expectStatus(t, resp, http.StatusCreated, "PUT after the switch")
	newImg, err := random.Image(3000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(refAt(api, "three"), newImg, adminAuth()); err != nil {
		t.Fatalf("push during the migration: %v", err)
	}

	// The janitor moves everything.
	test.StartKeppelJanitor(t, append(migrating, "KEPPEL_JANITOR_STORAGE_SWEEP_INTERVAL=1s")...)
	deadline := time.Now().Add(60 * time.Second)
	for countFiles(t, fsRoot, "/b/")+countFiles(t, fsRoot, "/m/") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the filesystem still holds %d blobs and %d manifests after 60s",
				countFiles(t, fsRoot, "/b/"), countFiles(t, fsRoot, "/m/"))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// After: S3 alone serves everything.
	api.Stop()
	final := test.StartKeppelAPI(t, onS3...)
	for tag, img := range images {
		expectImage(t, refAt(final, tag), img)
	}
	expectImage(t, refAt(final, "three"), newImg)
	finalToken := processToken(t, final, "repository:shared/app:pull")
	expectBlobAt(t, final, finalToken, digest, content)
	objs, err := s3.Client.ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	blobsInS3 := 0
	for _, o := range objs.Contents {
		if strings.Contains(aws.ToString(o.Key), "/b/") {
			blobsInS3++
		}
	}
	// Two images of two layers, one of one layer, their configs, and the
	// uploaded blob.
	if blobsInS3 != 9 {
		t.Errorf("%d blobs in S3, want the 9 pushed", blobsInS3)
	}
}

// countFiles counts the files below root whose path contains part.
func countFiles(t *testing.T, root, part string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(filepath.ToSlash(path), part) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return n
}
