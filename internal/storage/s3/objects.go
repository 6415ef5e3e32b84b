package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// ReadBlob implements storage.Driver with one ranged GET. The size is only
// asked for when the range cannot be served (S3 answers 416 where the
// driver contract wants an empty read at the very end).
func (d *Driver) ReadBlob(ctx context.Context, ref models.StorageRef, storageID string, offset, length int64) (io.ReadCloser, error) {
	u, err := d.upload(ref, storageID, "read blob")
	if err != nil {
		return nil, err
	}
	rng, empty, err := storage.HTTPRange(offset, length)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.what, err)
	}
	if empty {
		return d.emptyRead(ctx, u, offset, length)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(u.blobKey())}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := d.client.GetObject(ctx, in)
	if err != nil {
		if hasCode(err, "InvalidRange") {
			return d.emptyRead(ctx, u, offset, length)
		}
		return nil, wrap(err, u.what)
	}
	return out.Body, nil
}

// emptyRead answers a read that returns no bytes: fine at the end of the
// blob, ErrInvalidRange beyond it.
func (d *Driver) emptyRead(ctx context.Context, u upload, offset, length int64) (io.ReadCloser, error) {
	out, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(u.blobKey())})
	if err != nil {
		return nil, wrap(err, u.what)
	}
	n, err := storage.ResolveRange(aws.ToInt64(out.ContentLength), offset, length)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.what, err)
	}
	if n != 0 {
		return nil, fmt.Errorf("%s: the server refused the range of %d bytes at offset %d", u.what, n, offset)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// DeleteBlob implements storage.Driver.
func (d *Driver) DeleteBlob(ctx context.Context, ref models.StorageRef, storageID string) error {
	u, err := d.upload(ref, storageID, "delete blob")
	if err != nil {
		return err
	}
	return d.deleteObject(ctx, u.bucket, u.blobKey(), u.what)
}

// deleteObject deletes one object, with ErrNotFound if there is none (S3
// itself does not tell).
func (d *Driver) deleteObject(ctx context.Context, bucket, key, what string) error {
	if _, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return wrap(err, what)
	}
	if _, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return wrap(err, what)
	}
	return nil
}

// manifest resolves a manifest's location.
func (d *Driver) manifest(ref models.StorageRef, repoName, digest, verb string) (bucket, key, what string, err error) {
	a, err := d.area(ref)
	if err != nil {
		return "", "", "", err
	}
	if err := storage.ValidateRepoName(repoName); err != nil {
		return "", "", "", err
	}
	if err := storage.ValidateDigest(digest); err != nil {
		return "", "", "", err
	}
	return a.bucket, a.manifestKey(repoName, digest), fmt.Sprintf("%s %s@%s in %s", verb, repoName, digest, a.desc), nil
}

// WriteManifest implements storage.Driver (an S3 PUT replaces the object
// atomically).
func (d *Driver) WriteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string, content []byte) error {
	_, key, what, err := d.manifest(ref, repoName, digest, "write manifest")
	if err != nil {
		return err
	}
	a, _ := d.area(ref)
	if err := d.putObject(ctx, a, key, content, ""); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ReadManifest implements storage.Driver.
func (d *Driver) ReadManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) ([]byte, error) {
	bucket, key, what, err := d.manifest(ref, repoName, digest, "read manifest")
	if err != nil {
		return nil, err
	}
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, wrap(err, what)
	}
	defer out.Body.Close()
	content, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return content, nil
}

// DeleteManifest implements storage.Driver.
func (d *Driver) DeleteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) error {
	bucket, key, what, err := d.manifest(ref, repoName, digest, "delete manifest")
	if err != nil {
		return err
	}
	return d.deleteObject(ctx, bucket, key, what)
}

// ListStorageContents implements storage.Driver.
func (d *Driver) ListStorageContents(ctx context.Context, ref models.StorageRef) ([]storage.StoredBlob, []storage.StoredManifest, error) {
	a, err := d.area(ref)
	if err != nil {
		return nil, nil, err
	}
	var blobs []storage.StoredBlob
	err = d.listObjects(ctx, a.bucket, a.prefix+"b/", 0, func(obj types.Object) {
		if id, ok := trimPrefix(aws.ToString(obj.Key), a.prefix+"b/"); ok && !strings.Contains(id, "/") {
			blobs = append(blobs, storage.StoredBlob{StorageID: id, SizeBytes: aws.ToInt64(obj.Size)})
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing blobs of %s: %w", a.desc, err)
	}
	var manifests []storage.StoredManifest
	err = d.listObjects(ctx, a.bucket, a.prefix+"m/", 0, func(obj types.Object) {
		rest, _ := trimPrefix(aws.ToString(obj.Key), a.prefix+"m/")
		if m, ok := storage.ParseManifestPath(rest); ok {
			manifests = append(manifests, m)
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing manifests of %s: %w", a.desc, err)
	}
	storage.SortContents(blobs, manifests)
	return blobs, manifests, nil
}

// listObjects calls fn for every object below prefix, at most limit of
// them (0: all). A missing bucket holds nothing.
func (d *Driver) listObjects(ctx context.Context, bucket, prefix string, limit int, fn func(types.Object)) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	if limit > 0 {
		in.MaxKeys = aws.Int32(int32(limit))
	}
	seen := 0
	for {
		page, err := d.client.ListObjectsV2(ctx, in)
		if err != nil {
			if hasCode(err, "NoSuchBucket") {
				return nil
			}
			return err
		}
		for _, obj := range page.Contents {
			fn(obj)
			seen++
			if limit > 0 && seen >= limit {
				return nil
			}
		}
		if !aws.ToBool(page.IsTruncated) || page.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = page.NextContinuationToken
	}
}

// listKeys returns the keys of the objects below prefix.
func (d *Driver) listKeys(ctx context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	err := d.listObjects(ctx, bucket, prefix, 0, func(obj types.Object) {
		keys = append(keys, aws.ToString(obj.Key))
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	return keys, nil
}

// deleteKeys deletes the objects, up to 1000 per request.
func (d *Driver) deleteKeys(ctx context.Context, bucket string, keys []string) error {
	for batch := range slices.Chunk(keys, 1000) {
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := d.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("deleting %d objects: %w", len(batch), err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("deleting %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
	}
	return nil
}

// CleanupAccount implements storage.Driver: with no blob or manifest left,
// it discards the account's uploads (and, in the bucket-per-account layout,
// the bucket once it is empty).
func (d *Driver) CleanupAccount(ctx context.Context, ref models.StorageRef) error {
	a, err := d.area(ref)
	if err != nil {
		return err
	}
	what := "cleaning up " + a.desc
	for _, dir := range []string{"b/", "m/"} {
		found := false
		if err := d.listObjects(ctx, a.bucket, a.prefix+dir, 1, func(types.Object) { found = true }); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if found {
			return fmt.Errorf("%s: %w", what, storage.ErrAccountNotEmpty)
		}
	}
	ups, err := d.multipartUploads(ctx, a.bucket, a.prefix+"b/")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, up := range ups {
		_, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(a.bucket), Key: aws.String(up.key), UploadId: aws.String(up.id),
		})
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("%s: aborting multipart upload: %w", what, err)
		}
	}
	keys, err := d.listKeys(ctx, a.bucket, a.prefix+"u/")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := d.deleteKeys(ctx, a.bucket, keys); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.cfg.Bucket == "" {
		return d.deleteBucketIfEmpty(ctx, a)
	}
	return nil
}

// deleteBucketIfEmpty removes an account's bucket when no tenant has
// anything left in it.
func (d *Driver) deleteBucketIfEmpty(ctx context.Context, a area) error {
	found := false
	if err := d.listObjects(ctx, a.bucket, "", 1, func(types.Object) { found = true }); err != nil {
		return fmt.Errorf("cleaning up %s: %w", a.desc, err)
	}
	if found {
		return nil
	}
	d.buckets.Delete(a.bucket)
	_, err := d.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(a.bucket)})
	if err != nil && !hasCode(err, "NoSuchBucket", "BucketNotEmpty") {
		return fmt.Errorf("cleaning up %s: deleting bucket %s: %w", a.desc, a.bucket, err)
	}
	return nil
}
