package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// chunkState is what an upload holds after a chunk: the multipart upload
// and its parts (in order), and the bytes after the last part, which are in
// the chunk's tail object.
type chunkState struct {
	UploadID   string   `json:"upload_id,omitempty"`
	PartETags  []string `json:"parts,omitempty"`
	PartsBytes int64    `json:"parts_bytes"`
	TailBytes  int64    `json:"tail_bytes"`
}

func (s chunkState) size() int64 { return s.PartsBytes + s.TailBytes }

// upload names one upload in progress.
type upload struct {
	area
	storageID string
	what      string
}

func (d *Driver) upload(ref models.StorageRef, storageID, verb string) (upload, error) {
	a, err := d.area(ref)
	if err != nil {
		return upload{}, err
	}
	if err := storage.ValidateStorageID(storageID); err != nil {
		return upload{}, err
	}
	return upload{area: a, storageID: storageID, what: fmt.Sprintf("%s %s in %s", verb, storageID, a.desc)}, nil
}

func (u upload) blobKey() string { return u.area.blobKey(u.storageID) }

// readState loads the state after chunk n (ErrNotFound if it was never
// written).
func (d *Driver) readState(ctx context.Context, u upload, n uint32) (chunkState, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(u.bucket), Key: aws.String(u.stateKey(u.storageID, n))})
	if err != nil {
		return chunkState{}, wrap(err, fmt.Sprintf("%s: reading the state after chunk %d", u.what, n))
	}
	defer out.Body.Close()
	var st chunkState
	if err := json.NewDecoder(io.LimitReader(out.Body, 1<<20)).Decode(&st); err != nil {
		return chunkState{}, fmt.Errorf("%s: decoding the state after chunk %d: %w", u.what, n, err)
	}
	return st, nil
}

// AppendToBlob implements storage.Driver. The chunk goes to S3 in parts of
// PartSize bytes while it is received; the rest waits in a tail object for
// the next chunk. The chunk counts only when its state object is written,
// which is the last step.
func (d *Driver) AppendToBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkNumber uint32, offset int64, r io.Reader) (int64, error) {
	u, err := d.upload(ref, storageID, "append to upload")
	if err != nil {
		return 0, err
	}
	if chunkNumber == 0 {
		return 0, fmt.Errorf("%s: chunk numbers start at 1", u.what)
	}
	if offset < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", u.what, offset)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", u.what, err)
	}
	var prev chunkState
	if chunkNumber > 1 {
		prev, err = d.readState(ctx, u, chunkNumber-1)
		if errors.Is(err, storage.ErrNotFound) && offset == 0 {
			prev, err = chunkState{}, nil
		}
		if err != nil {
			return 0, err
		}
	} else if offset > 0 {
		return 0, fmt.Errorf("%s: chunk 1 at offset %d: %w", u.what, offset, storage.ErrNotFound)
	}
	if offset > prev.size() {
		return 0, fmt.Errorf("%s: offset %d, but the upload holds %d bytes: %w", u.what, offset, prev.size(), storage.ErrUploadOffsetMismatch)
	}
	keepTail := offset - prev.PartsBytes
	if keepTail < 0 {
		return 0, fmt.Errorf("%s: offset %d lies in parts already uploaded (%d bytes): %w", u.what, offset, prev.PartsBytes, storage.ErrUploadOffsetMismatch)
	}

	st := chunkState{UploadID: prev.UploadID, PartETags: prev.PartETags, PartsBytes: prev.PartsBytes}
	parts := d.newPartPipeline(ctx, u, &st)
	defer parts.close()
	// The kept part of the previous chunk's tail comes first, then the
	// chunk.
	src := storage.ContextReader(ctx, r)
	if keepTail > 0 {
		tail, err := d.openTail(ctx, u, chunkNumber-1, keepTail)
		if err != nil {
			return 0, err
		}
		defer tail.Close()
		src = io.MultiReader(&exactReader{r: tail, left: keepTail, what: "the tail of the previous chunk"}, src)
	}
	bufp := parts.buffer(nil)
	buf := *bufp
	fill := 0
	var total int64
	for {
		n, rerr := io.ReadFull(src, buf[fill:])
		fill += n
		total += int64(n)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("%s: reading chunk %d: %w", u.what, chunkNumber, rerr)
		}
		if err := parts.send(buf[:fill]); err != nil {
			return 0, err
		}
		bufp = parts.buffer(bufp)
		buf, fill = *bufp, 0
	}
	written := total - keepTail
	if err := parts.wait(); err != nil {
		return 0, err
	}
	if fill > 0 {
		if err := d.putObject(ctx, u.area, u.tailKey(u.storageID, chunkNumber), buf[:fill], ""); err != nil {
			return 0, fmt.Errorf("%s: storing the tail of chunk %d: %w", u.what, chunkNumber, err)
		}
	}
	st.TailBytes = int64(fill)
	if err := d.writeState(ctx, u, chunkNumber, st); err != nil {
		return 0, err
	}
	return written, nil
}

func (d *Driver) writeState(ctx context.Context, u upload, n uint32, st chunkState) error {
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("%s: encoding the state after chunk %d: %w", u.what, n, err)
	}
	if err := d.putObject(ctx, u.area, u.stateKey(u.storageID, n), body, "application/json"); err != nil {
		return fmt.Errorf("%s: storing the state after chunk %d: %w", u.what, n, err)
	}
	return nil
}

// openTail opens the first n bytes of chunk k's tail object.
func (d *Driver) openTail(ctx context.Context, u upload, k uint32, n int64) (io.ReadCloser, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(u.bucket), Key: aws.String(u.tailKey(u.storageID, k)),
		Range: aws.String(fmt.Sprintf("bytes=0-%d", n-1)),
	})
	if err != nil {
		return nil, wrap(err, fmt.Sprintf("%s: reading the tail of chunk %d", u.what, k))
	}
	return out.Body, nil
}

// exactReader reads exactly left bytes from r: less is an error.
type exactReader struct {
	r    io.Reader
	left int64
	what string
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("%s ended %d bytes early: %w", e.what, e.left, io.ErrUnexpectedEOF)
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// startMultipart returns the multipart upload for the blob: one that an
// earlier, failed attempt left behind, or a new one.
func (d *Driver) startMultipart(ctx context.Context, u upload) (string, error) {
	ids, err := d.blobMultipartUploads(ctx, u)
	if err != nil {
		return "", fmt.Errorf("%s: %w", u.what, err)
	}
	if len(ids) > 0 {
		return ids[0].id, nil
	}
	var id string
	err = d.withBucket(ctx, u.area, func() error {
		out, err := d.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(u.bucket), Key: aws.String(u.blobKey()),
		})
		if err == nil {
			id = aws.ToString(out.UploadId)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("%s: starting a multipart upload: %w", u.what, err)
	}
	return id, nil
}

// multipartUpload is a multipart upload in progress on some key.
type multipartUpload struct {
	key, id string
}

// blobMultipartUploads lists the multipart uploads in progress on exactly
// the upload's blob key (a listing by prefix also shows those of storage
// IDs that start with this one).
func (d *Driver) blobMultipartUploads(ctx context.Context, u upload) ([]multipartUpload, error) {
	ups, err := d.multipartUploads(ctx, u.bucket, u.blobKey())
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ups, func(up multipartUpload) bool { return up.key != u.blobKey() }), nil
}

// multipartUploads lists the multipart uploads in progress on keys that
// start with prefix.
func (d *Driver) multipartUploads(ctx context.Context, bucket, prefix string) ([]multipartUpload, error) {
	var out []multipartUpload
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	for range 1000 {
		page, err := d.client.ListMultipartUploads(ctx, in)
		if err != nil {
			if hasCode(err, "NoSuchBucket") {
				return nil, nil
			}
			return nil, fmt.Errorf("listing multipart uploads: %w", err)
		}
		for _, up := range page.Uploads {
			out = append(out, multipartUpload{key: aws.ToString(up.Key), id: aws.ToString(up.UploadId)})
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	return nil, errors.New("listing multipart uploads: too many pages")
}

// FinalizeBlob implements storage.Driver: it completes the multipart upload
// (or, for a blob smaller than one part, copies the tail object into place
// on the server), then removes the upload's state.
func (d *Driver) FinalizeBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	u, err := d.upload(ref, storageID, "finalize upload")
	if err != nil {
		return err
	}
	var st chunkState
	if chunkCount > 0 {
		if st, err = d.readState(ctx, u, chunkCount); err != nil {
			return err
		}
	}
	switch {
	case len(st.PartETags) > 0:
		err = d.completeMultipart(ctx, u, chunkCount, st)
	case st.TailBytes > 0:
		_, err = d.client.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: aws.String(u.bucket), Key: aws.String(u.blobKey()),
			CopySource: aws.String(copySource(u.bucket, u.tailKey(storageID, chunkCount))),
		})
		if err != nil {
			err = wrap(err, u.what+": copying the content into place")
		}
	default:
		if err = d.putObject(ctx, u.area, u.blobKey(), nil, ""); err != nil {
			err = fmt.Errorf("%s: storing an empty blob: %w", u.what, err)
		}
	}
	if err != nil {
		return err
	}
	// What is left of the upload goes: its state and tails, and multipart
	// uploads on the key that earlier, failed attempts began.
	if err := d.removeUpload(ctx, u, "all"); err != nil {
		return fmt.Errorf("%s: the blob is in place, but %w", u.what, err)
	}
	return nil
}

func (d *Driver) completeMultipart(ctx context.Context, u upload, chunkCount uint32, st chunkState) error {
	parts := make([]types.CompletedPart, 0, len(st.PartETags)+1)
	for i, etag := range st.PartETags {
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(etag)})
	}
	if st.TailBytes > 0 {
		number := int32(len(parts) + 1)
		out, err := d.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: aws.String(u.bucket), Key: aws.String(u.blobKey()), UploadId: aws.String(st.UploadID),
			PartNumber: aws.Int32(number), CopySource: aws.String(copySource(u.bucket, u.tailKey(u.storageID, chunkCount))),
		})
		if err != nil {
			return wrap(err, fmt.Sprintf("%s: copying the last part", u.what))
		}
		if out.CopyPartResult == nil || out.CopyPartResult.ETag == nil {
			return fmt.Errorf("%s: copying the last part: the server returned no ETag", u.what)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(number), ETag: out.CopyPartResult.ETag})
	}
	_, err := d.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(u.bucket), Key: aws.String(u.blobKey()), UploadId: aws.String(st.UploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return wrap(err, u.what+": completing the multipart upload")
	}
	return nil
}

// copySource is the x-amz-copy-source value for an object.
func copySource(bucket, key string) string {
	return bucket + "/" + (&url.URL{Path: key}).EscapedPath()
}

// AbortBlobUpload implements storage.Driver.
func (d *Driver) AbortBlobUpload(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	u, err := d.upload(ref, storageID, "abort upload")
	if err != nil {
		return err
	}
	keys, err := d.listKeys(ctx, u.bucket, u.uploadDir(storageID))
	if err != nil {
		return fmt.Errorf("%s: %w", u.what, err)
	}
	ids, err := d.blobMultipartUploads(ctx, u)
	if err != nil {
		return fmt.Errorf("%s: %w", u.what, err)
	}
	if len(keys) == 0 && len(ids) == 0 {
		return fmt.Errorf("%s: %w", u.what, storage.ErrNotFound)
	}
	if err := d.removeUpload(ctx, u, "all"); err != nil {
		return fmt.Errorf("%s: %w", u.what, err)
	}
	return nil
}

// removeUpload deletes the upload's state and tail objects. With
// multipart "all", it also aborts every multipart upload in progress on the
// blob's key (after a finalize, the one that made the blob is complete
// already; others remain only from attempts that failed).
func (d *Driver) removeUpload(ctx context.Context, u upload, multipart string) error {
	if multipart == "all" {
		ids, err := d.blobMultipartUploads(ctx, u)
		if err != nil {
			return err
		}
		for _, up := range ids {
			_, err := d.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(u.bucket), Key: aws.String(up.key), UploadId: aws.String(up.id),
			})
			if err != nil && !isNotFound(err) {
				return fmt.Errorf("aborting multipart upload: %w", err)
			}
		}
	}
	keys, err := d.listKeys(ctx, u.bucket, u.uploadDir(u.storageID))
	if err != nil {
		return err
	}
	return d.deleteKeys(ctx, u.bucket, keys)
}

// trimPrefix returns key without prefix, and whether it had it.
func trimPrefix(key, prefix string) (string, bool) {
	if !strings.HasPrefix(key, prefix) {
		return "", false
	}
	return key[len(prefix):], true
}
