// Package s3 is the storage driver for S3-compatible object stores (AWS S3,
// Ceph RGW, MinIO, SeaweedFS, versitygw). Content is laid out like the
// filesystem driver's, as object keys:
//
//	<tenant>/<account>/b/<storage-id>          finished blob
//	<tenant>/<account>/u/<storage-id>/c/<n>    state after upload chunk n (JSON)
//	<tenant>/<account>/u/<storage-id>/t/<n>    bytes of chunk n not yet in a part
//	<tenant>/<account>/m/<repo/path>/<digest>  manifest
//
// either in one shared bucket (below an optional key prefix) or in one
// bucket per account, named <bucket_prefix><account>, with the keys starting
// at <tenant>/.
//
// A chunked upload maps onto one S3 multipart upload on the blob's final
// key: every full part (PartSize bytes) is uploaded as soon as it has been
// received, and what is left over at the end of a chunk is kept in a small
// tail object until the next chunk completes a part. Completing the
// multipart upload makes the blob readable; the content is never copied
// again (the last tail becomes the last part by a server-side copy). The
// state object of each chunk records the multipart upload and the parts
// that make up the content acknowledged so far, so any process can continue
// an upload that another one started, and a retried chunk replaces the
// attempt before it.
package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// MinPartSize is the smallest part size that S3 accepts for all but the last
// part of a multipart upload.
const MinPartSize = 5 << 20

// DefaultPartSize is the part size used when Config.PartSize is 0.
const DefaultPartSize = 8 << 20

// maxParts is the most parts S3 allows in one multipart upload.
const maxParts = 10000

// Config configures the driver.
type Config struct {
	// Endpoint is the URL of the S3 API (empty: AWS, by region).
	Endpoint string
	// Region is the signing region (default us-east-1).
	Region string
	// AccessKeyID and SecretAccessKey are static credentials. Without them,
	// the AWS SDK's default chain (environment, shared files, instance
	// roles) is used.
	AccessKeyID     string
	SecretAccessKey string
	// PathStyle addresses buckets as <endpoint>/<bucket> instead of
	// <bucket>.<endpoint> (most self-hosted servers need it).
	PathStyle bool
	// Bucket, if set, holds every account's content below
	// <KeyPrefix><tenant>/<account>/.
	Bucket    string
	KeyPrefix string
	// BucketPrefix, used when Bucket is empty, gives every account its own
	// bucket named <BucketPrefix><account>, created on first write.
	BucketPrefix string
	// PartSize is the size of the parts of multipart uploads (default
	// DefaultPartSize, at least MinPartSize). Each upload request holds up
	// to two parts in memory: one being received, one being sent.
	PartSize int64
	// HTTPClient replaces the SDK's HTTP client (optional).
	HTTPClient *http.Client
}

var (
	// bucketNameRx matches bucket names that S3 and its clones all accept.
	bucketNameRx = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	// legacyBucketNameRx matches the older, looser names that existing
	// buckets may have (dots, underscores, capitals).
	legacyBucketNameRx = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{2,254}$`)
	// accountBucketRx matches account names used in bucket names as they are.
	accountBucketRx = regexp.MustCompile(`^[a-z0-9-]+$`)
)

// Driver is the S3 storage driver. It is safe for concurrent use, also by
// many processes sharing the buckets, as long as each upload is written by
// one caller at a time.
type Driver struct {
	client   *s3.Client
	presign  *s3.PresignClient
	cfg      Config
	partSize int64
	buffers  sync.Pool

	// buckets remembers the per-account buckets known to exist.
	buckets sync.Map
}

var (
	_ storage.Driver        = (*Driver)(nil)
	_ storage.BlobURLSigner = (*Driver)(nil)
)

// New returns a driver for the configured object store. It does not
// contact the server; Check does.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Bucket == "" && cfg.BucketPrefix == "" {
		return nil, errors.New("s3 storage: either a bucket or a bucket prefix (one bucket per account) is required")
	}
	if cfg.Bucket != "" && cfg.BucketPrefix != "" {
		return nil, errors.New("s3 storage: bucket and bucket prefix are exclusive")
	}
	if cfg.Bucket != "" && !bucketNameRx.MatchString(cfg.Bucket) && !legacyBucketNameRx.MatchString(cfg.Bucket) {
		return nil, fmt.Errorf("s3 storage: %q is not a valid bucket name", cfg.Bucket)
	}
	if cfg.BucketPrefix != "" && (len(cfg.BucketPrefix) > 14 || !bucketNameRx.MatchString(cfg.BucketPrefix+"x0")) {
		return nil, fmt.Errorf("s3 storage: bucket prefix %q must be at most 14 lowercase letters, digits and dashes", cfg.BucketPrefix)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < MinPartSize {
		return nil, fmt.Errorf("s3 storage: part size %d is below the minimum of %d bytes", cfg.PartSize, MinPartSize)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	opts := s3.Options{
		Region:                     cfg.Region,
		UsePathStyle:               cfg.PathStyle,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	if cfg.AccessKeyID != "" {
		opts.Credentials = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")
	} else {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
		if err != nil {
			return nil, fmt.Errorf("s3 storage: loading AWS credentials: %w", err)
		}
		opts.Credentials = awsCfg.Credentials
	}
	client := s3.New(opts)
	d := &Driver{client: client, presign: s3.NewPresignClient(client), cfg: cfg, partSize: cfg.PartSize}
	d.buffers.New = func() any {
		buf := make([]byte, d.partSize)
		return &buf
	}
	return d, nil
}

// Check verifies that the shared bucket is reachable (it does nothing in
// the bucket-per-account layout, where buckets appear on first write).
func (d *Driver) Check(ctx context.Context) error {
	if d.cfg.Bucket == "" {
		return nil
	}
	if _, err := d.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(d.cfg.Bucket)}); err != nil {
		return fmt.Errorf("s3 storage: bucket %s: %w", d.cfg.Bucket, err)
	}
	return nil
}

// area is where one account's content lives.
type area struct {
	bucket string
	prefix string // ends in "/"
	desc   string
}

func (d *Driver) area(ref models.StorageRef) (area, error) {
	if err := storage.ValidateRef(ref); err != nil {
		return area{}, err
	}
	desc := fmt.Sprintf("account %s/%s", ref.AuthTenantID, ref.AccountName)
	if d.cfg.Bucket != "" {
		return area{bucket: d.cfg.Bucket, prefix: d.cfg.KeyPrefix + ref.AuthTenantID + "/" + ref.AccountName + "/", desc: desc}, nil
	}
	return area{bucket: d.accountBucket(ref.AccountName), prefix: ref.AuthTenantID + "/", desc: desc}, nil
}

// accountBucket names the bucket of an account in the bucket-per-account
// layout: <prefix><account> for names that are valid in a bucket name (all
// names the registry gives out), or <prefix>h.<hash> for others. The dot
// keeps the two forms apart, since account names never contain one.
func (d *Driver) accountBucket(account string) string {
	bucket := d.cfg.BucketPrefix + account
	if accountBucketRx.MatchString(account) && bucketNameRx.MatchString(bucket) {
		return bucket
	}
	sum := sha256.Sum256([]byte(account))
	return d.cfg.BucketPrefix + "h." + hex.EncodeToString(sum[:20])
}

func (a area) blobKey(storageID string) string   { return a.prefix + "b/" + storageID }
func (a area) uploadDir(storageID string) string { return a.prefix + "u/" + storageID + "/" }
func (a area) stateKey(storageID string, chunk uint32) string {
	return fmt.Sprintf("%sc/%d", a.uploadDir(storageID), chunk)
}
func (a area) tailKey(storageID string, chunk uint32) string {
	return fmt.Sprintf("%st/%d", a.uploadDir(storageID), chunk)
}
func (a area) manifestKey(repoName, digest string) string {
	return a.prefix + "m/" + repoName + "/" + digest
}

// ensureBucket creates the account's bucket in the bucket-per-account
// layout if this process has not seen it yet.
func (d *Driver) ensureBucket(ctx context.Context, a area) error {
	if d.cfg.Bucket != "" {
		return nil
	}
	if _, ok := d.buckets.Load(a.bucket); ok {
		return nil
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(a.bucket)}
	if d.cfg.Region != "us-east-1" {
		// Everywhere but in AWS's first region, the region is named again.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(d.cfg.Region)}
	}
	_, err := d.client.CreateBucket(ctx, in)
	if err != nil && !hasCode(err, "BucketAlreadyOwnedByYou", "BucketAlreadyExists") {
		return fmt.Errorf("creating bucket %s for %s: %w", a.bucket, a.desc, err)
	}
	d.buckets.Store(a.bucket, struct{}{})
	return nil
}

// withBucket runs a write, creating the account's bucket first if needed
// and once more if another process deleted it in between.
func (d *Driver) withBucket(ctx context.Context, a area, write func() error) error {
	if err := d.ensureBucket(ctx, a); err != nil {
		return err
	}
	err := write()
	if err != nil && d.cfg.Bucket == "" && hasCode(err, "NoSuchBucket") {
		d.buckets.Delete(a.bucket)
		if err := d.ensureBucket(ctx, a); err != nil {
			return err
		}
		err = write()
	}
	return err
}

// putObject stores one object. Gateways that keep objects as files (such
// as versitygw) can fail a PUT with 409 ExistingObjectIsDirectory while a
// concurrent DELETE removes the now empty directories of the key's prefix;
// such PUTs are retried a few times.
func (d *Driver) putObject(ctx context.Context, a area, key string, content []byte, contentType string) error {
	return d.withBucket(ctx, a, func() error {
		var err error
		for attempt := range 5 {
			in := &s3.PutObjectInput{
				Bucket: aws.String(a.bucket), Key: aws.String(key),
				Body: bytes.NewReader(content), ContentLength: aws.Int64(int64(len(content))),
			}
			if contentType != "" {
				in.ContentType = aws.String(contentType)
			}
			if _, err = d.client.PutObject(ctx, in); err == nil || !hasCode(err, "ExistingObjectIsDirectory") {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
			}
		}
		return err
	})
}

// hasCode reports whether err is an S3 error with one of the codes.
func hasCode(err error, codes ...string) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	for _, c := range codes {
		if apiErr.ErrorCode() == c {
			return true
		}
	}
	return false
}

// isNotFound reports whether err says that an object, upload or bucket does
// not exist.
func isNotFound(err error) bool {
	return hasCode(err, "NoSuchKey", "NotFound", "NoSuchUpload", "NoSuchBucket")
}

// wrap adds context to err, turning "does not exist" answers into
// storage.ErrNotFound.
func wrap(err error, what string) error {
	if isNotFound(err) {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// BlobURL implements storage.BlobURLSigner with a presigned GET URL.
func (d *Driver) BlobURL(ctx context.Context, ref models.StorageRef, storageID string, ttl time.Duration) (string, error) {
	a, err := d.area(ref)
	if err != nil {
		return "", err
	}
	if err := storage.ValidateStorageID(storageID); err != nil {
		return "", err
	}
	req, err := d.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(a.bucket), Key: aws.String(a.blobKey(storageID)),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presigning blob %s in %s: %w", storageID, a.desc, err)
	}
	return req.URL, nil
}
