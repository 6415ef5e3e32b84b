package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"keppel/internal/models"
	"keppel/internal/storage"
	"keppel/internal/storage/s3"
	"keppel/internal/storage/storagetest"
	"keppel/internal/test"
)

var ref = models.StorageRef{AuthTenantID: "tenant-1", AccountName: "alpha"}

func newDriver(t *testing.T, srv *test.S3Server, cfg s3.Config) *s3.Driver {
	t.Helper()
	cfg.Endpoint, cfg.Region, cfg.PathStyle = srv.Endpoint, srv.Region, true
	cfg.AccessKeyID, cfg.SecretAccessKey = srv.AccessKey, srv.SecretKey
	if cfg.PartSize == 0 {
		cfg.PartSize = s3.MinPartSize
	}
	d, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	if err := d.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	return d
}

func TestSuiteSharedBucket(t *testing.T) {
	srv := test.StartS3(t)
	storagetest.RunSuite(t, func(t *testing.T) storage.Driver {
		return newDriver(t, srv, s3.Config{Bucket: srv.Bucket(t), KeyPrefix: "registry/"})
	})
}

func TestSuiteBucketPerAccount(t *testing.T) {
	srv := test.StartS3(t)
	var n atomic.Int32
	storagetest.RunSuite(t, func(t *testing.T) storage.Driver {
		// Each subtest gets its own set of buckets.
		return newDriver(t, srv, s3.Config{BucketPrefix: fmt.Sprintf("k%d-", n.Add(1))})
	})
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []s3.Config{
		{},
		{Bucket: "a", BucketPrefix: "b-"},
		{Bucket: "no/slash"},
		{BucketPrefix: "UPPER-"},
		{BucketPrefix: "much-too-long-prefix-"},
		{Bucket: "fine", PartSize: 1 << 20},
	} {
		if _, err := s3.New(t.Context(), s3.Config{Bucket: cfg.Bucket, BucketPrefix: cfg.BucketPrefix, PartSize: cfg.PartSize, AccessKeyID: "x"}); err == nil {
			t.Errorf("s3.New(%+v) succeeded", cfg)
		}
	}
}

func randomContent(seed uint64, size int) []byte {
	buf := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	return buf
}

func readAll(t *testing.T, d storage.Driver, storageID string) []byte {
	t.Helper()
	rc, err := d.ReadBlob(t.Context(), ref, storageID, 0, -1)
	if err != nil {
		t.Fatalf("ReadBlob(%s): %v", storageID, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", storageID, err)
	}
	return got
}

// Chunks larger than a part go to S3 as parts of a multipart upload on the
// blob's key while they arrive; the blob appears only at FinalizeBlob.
func TestChunksBecomeParts(t *testing.T) {
	srv := test.StartS3(t)
	bucket := srv.Bucket(t)
	d := newDriver(t, srv, s3.Config{Bucket: bucket})
	content := randomContent(1, 2*s3.MinPartSize+12345)
	if _, err := d.AppendToBlob(t.Context(), ref, "big", 1, 0, bytes.NewReader(content)); err != nil {
		t.Fatalf("AppendToBlob: %v", err)
	}
	ups, err := srv.Client.ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].Key) != "tenant-1/alpha/b/big" {
		t.Fatalf("multipart uploads = %+v, want one on the blob's key", ups.Uploads)
	}
	parts, err := srv.Client.ListParts(t.Context(), &awss3.ListPartsInput{Bucket: aws.String(bucket), Key: ups.Uploads[0].Key, UploadId: ups.Uploads[0].UploadId})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.Parts) != 2 {
		t.Errorf("%d parts uploaded before FinalizeBlob, want 2", len(parts.Parts))
	}
	if _, err := d.ReadBlob(t.Context(), ref, "big", 0, -1); !strings.Contains(errString(err), storage.ErrNotFound.Error()) {
		t.Errorf("ReadBlob before FinalizeBlob: %v, want ErrNotFound", err)
	}
	if err := d.FinalizeBlob(t.Context(), ref, "big", 1); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	if got := readAll(t, d, "big"); !bytes.Equal(got, content) {
		t.Fatalf("blob content differs (%d bytes, want %d)", len(got), len(content))
	}
	// Nothing of the upload is left behind.
	objs, err := srv.Client.ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Contents) != 1 || aws.ToString(objs.Contents[0].Key) != "tenant-1/alpha/b/big" {
		var keys []string
		for _, o := range objs.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		t.Errorf("objects after FinalizeBlob: %v", keys)
	}
	ups, err = srv.Client.ListMultipartUploads(t.Context(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("multipart uploads left after FinalizeBlob: %+v", ups.Uploads)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// An upload moves between driver instances (as between API processes)
// chunk by chunk, including a retried chunk that spans parts.
func TestUploadAcrossInstances(t *testing.T) {
	srv := test.StartS3(t)
	bucket := srv.Bucket(t)
	a := newDriver(t, srv, s3.Config{Bucket: bucket})
	b := newDriver(t, srv, s3.Config{Bucket: bucket})
	chunks := [][]byte{
		randomContent(2, 3<<20),          // stays in the tail
		randomContent(3, s3.MinPartSize), // completes one part, leaves a tail
		randomContent(4, 1),
		randomContent(5, 2*s3.MinPartSize+7),
	}
	var want []byte
	var offset int64
	for i, c := range chunks {
		d := []*s3.Driver{a, b}[i%2]
		if i == 1 {
			// A first attempt that is never acknowledged: its parts are
			// replaced by the retry on the other instance.
			other := []*s3.Driver{a, b}[(i+1)%2]
			if _, err := other.AppendToBlob(t.Context(), ref, "moving", uint32(i+1), offset, bytes.NewReader(randomContent(99, 2*s3.MinPartSize))); err != nil {
				t.Fatalf("first attempt of chunk %d: %v", i+1, err)
			}
		}
		n, err := d.AppendToBlob(t.Context(), ref, "moving", uint32(i+1), offset, bytes.NewReader(c))
		if err != nil || n != int64(len(c)) {
			t.Fatalf("chunk %d: wrote %d of %d bytes: %v", i+1, n, len(c), err)
		}
		offset += n
		want = append(want, c...)
	}
	if err := a.FinalizeBlob(t.Context(), ref, "moving", uint32(len(chunks))); err != nil {
		t.Fatalf("FinalizeBlob: %v", err)
	}
	for _, d := range []*s3.Driver{a, b} {
		if got := readAll(t, d, "moving"); !bytes.Equal(got, want) {
			t.Fatalf("blob content differs (%d bytes, want %d)", len(got), len(want))
		}
	}
	rc, err := b.ReadBlob(t.Context(), ref, "moving", int64(len(want))-10, 20)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(tail, want[len(want)-10:]) {
		t.Errorf("ranged read of the end = %x, want %x", tail, want[len(want)-10:])
	}
}

func TestBlobURL(t *testing.T) {
	srv := test.StartS3(t)
	d := newDriver(t, srv, s3.Config{Bucket: srv.Bucket(t)})
	if _, err := d.AppendToBlob(t.Context(), ref, "signed", 1, 0, strings.NewReader("presigned content")); err != nil {
		t.Fatal(err)
	}
	if err := d.FinalizeBlob(t.Context(), ref, "signed", 1); err != nil {
		t.Fatal(err)
	}
	url, err := d.BlobURL(t.Context(), ref, "signed", time.Minute)
	if err != nil {
		t.Fatalf("BlobURL: %v", err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "presigned content" {
		t.Errorf("GET presigned URL: HTTP %d %q", resp.StatusCode, body)
	}
	// The signature covers the object: another key is refused.
	resp, err = http.Get(strings.Replace(url, "/b/signed", "/b/other", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET with a changed key: HTTP %d, want 403", resp.StatusCode)
	}
	if _, err := d.BlobURL(t.Context(), ref, "../x", time.Minute); err == nil {
		t.Error("BlobURL with an invalid storage ID succeeded")
	}
}

// A restart with a smaller part size in the middle of an upload: the next
// chunk starts with a tail larger than its part buffer.
func TestPartSizeChangeBetweenChunks(t *testing.T) {
	srv := test.StartS3(t)
	bucket := srv.Bucket(t)
	big := newDriver(t, srv, s3.Config{Bucket: bucket, PartSize: 8 << 20})
	small := newDriver(t, srv, s3.Config{Bucket: bucket, PartSize: s3.MinPartSize})
	first, second := randomContent(11, 7<<20), randomContent(12, 4<<20)
	if _, err := big.AppendToBlob(t.Context(), ref, "resized", 1, 0, bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	n, err := small.AppendToBlob(t.Context(), ref, "resized", 2, int64(len(first)), bytes.NewReader(second))
	if err != nil || n != int64(len(second)) {
		t.Fatalf("AppendToBlob with the smaller part size: %d bytes, %v", n, err)
	}
	if err := small.FinalizeBlob(t.Context(), ref, "resized", 2); err != nil {
		t.Fatal(err)
	}
	if got, want := readAll(t, big, "resized"), append(first, second...); !bytes.Equal(got, want) {
		t.Fatalf("blob content differs (%d bytes, want %d)", len(got), len(want))
	}
}

// Storage IDs that start with another one's do not share its multipart
// upload.
func TestStorageIDPrefixes(t *testing.T) {
	srv := test.StartS3(t)
	d := newDriver(t, srv, s3.Config{Bucket: srv.Bucket(t)})
	long := randomContent(21, s3.MinPartSize+10)
	short := randomContent(22, s3.MinPartSize+20)
	if _, err := d.AppendToBlob(t.Context(), ref, "upload10", 1, 0, bytes.NewReader(long)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AppendToBlob(t.Context(), ref, "upload1", 1, 0, bytes.NewReader(short)); err != nil {
		t.Fatalf("AppendToBlob of a prefix ID: %v", err)
	}
	if err := d.AbortBlobUpload(t.Context(), ref, "upload1", 1); err != nil {
		t.Fatal(err)
	}
	if err := d.AbortBlobUpload(t.Context(), ref, "upload1", 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second abort of the prefix ID: %v, want ErrNotFound", err)
	}
	if err := d.FinalizeBlob(t.Context(), ref, "upload10", 1); err != nil {
		t.Fatalf("FinalizeBlob of the longer ID after the prefix's abort: %v", err)
	}
	if got := readAll(t, d, "upload10"); !bytes.Equal(got, long) {
		t.Fatal("content of the longer ID differs")
	}
}
