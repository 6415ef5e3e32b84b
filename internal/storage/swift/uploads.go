package swift

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/ncw/swift/v2"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// startHeader records where a chunk starts in the blob.
const startHeader = "X-Object-Meta-Keppel-Start"

// maxSegments is the default limit of segments in a static large object.
const maxSegments = 1000

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

// segment is a stored chunk.
type segment struct {
	key         string
	start, size int64
	etag        string
}

// headSegment returns chunk n of the upload.
func (d *Driver) headSegment(ctx context.Context, u upload, n uint32) (segment, error) {
	key := u.segmentKey(u.storageID, n)
	info, headers, err := d.conn.Object(ctx, u.container, key)
	if err != nil {
		return segment{}, wrap(err, fmt.Sprintf("%s: looking up chunk %d", u.what, n))
	}
	start, err := strconv.ParseInt(headers[startHeader], 10, 64)
	if err != nil {
		return segment{}, fmt.Errorf("%s: chunk %d has no valid start offset (%q)", u.what, n, headers[startHeader])
	}
	return segment{key: key, start: start, size: info.Bytes, etag: info.Hash}, nil
}

// AppendToBlob implements storage.Driver: the chunk is streamed into its
// own object, which records where it starts.
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
	if err := d.checkUnfinished(ctx, u); err != nil {
		return 0, err
	}
	switch {
	case chunkNumber == 1 && offset > 0:
		return 0, fmt.Errorf("%s: chunk 1 at offset %d: %w", u.what, offset, storage.ErrNotFound)
	case chunkNumber > 1:
		prev, err := d.headSegment(ctx, u, chunkNumber-1)
		if errors.Is(err, storage.ErrNotFound) && offset == 0 {
			break
		}
		if err != nil {
			return 0, err
		}
		if end := prev.start + prev.size; end != offset {
			return 0, fmt.Errorf("%s: offset %d, but the upload holds %d bytes: %w", u.what, offset, end, storage.ErrUploadOffsetMismatch)
		}
	}
	counter := &countingReader{ctx: ctx, r: r}
	err = d.withContainer(ctx, u.area, func() error {
		counter.n = 0
		_, err := d.conn.ObjectPut(ctx, u.container, u.segmentKey(storageID, chunkNumber), counter, true, "",
			"application/octet-stream", swift.Headers{startHeader: strconv.FormatInt(offset, 10)})
		return err
	})
	if err != nil {
		if counter.err != nil {
			return 0, fmt.Errorf("%s: reading chunk %d: %w", u.what, chunkNumber, counter.err)
		}
		return 0, fmt.Errorf("%s: storing chunk %d: %w", u.what, chunkNumber, err)
	}
	return counter.n, nil
}

// checkUnfinished fails with ErrNotFound if the upload was finalized: its
// chunks stay as the blob's segments, but the upload is over.
func (d *Driver) checkUnfinished(ctx context.Context, u upload) error {
	_, _, err := d.conn.Object(ctx, u.container, u.blobKey(u.storageID))
	switch {
	case err == nil:
		return fmt.Errorf("%s: the upload was finalized: %w", u.what, storage.ErrNotFound)
	case errors.Is(err, swift.ObjectNotFound) || errors.Is(err, swift.ContainerNotFound):
		return nil
	default:
		return fmt.Errorf("%s: %w", u.what, err)
	}
}

// countingReader counts what it reads, remembers a read error, and stops
// when the context is done.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// segments looks up chunks 1..count and checks that they follow each other.
func (d *Driver) segments(ctx context.Context, u upload, count uint32) ([]segment, error) {
	segs := make([]segment, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range count {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			segs[i], errs[i] = d.headSegment(ctx, u, i+1)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var end int64
	for i, s := range segs {
		if s.start != end {
			return nil, fmt.Errorf("%s: chunk %d starts at %d, not where chunk %d ends (%d)", u.what, i+1, s.start, i, end)
		}
		end += s.size
	}
	return segs, nil
}

// FinalizeBlob implements storage.Driver by writing a static large object
// manifest over the chunks.
func (d *Driver) FinalizeBlob(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	u, err := d.upload(ref, storageID, "finalize upload")
	if err != nil {
		return err
	}
	if err := d.checkUnfinished(ctx, u); err != nil {
		return err
	}
	segs, err := d.segments(ctx, u, chunkCount)
	if err != nil {
		return err
	}
	type sloSegment struct {
		Path      string `json:"path"`
		ETag      string `json:"etag"`
		SizeBytes int64  `json:"size_bytes"`
	}
	var manifest []sloSegment
	var empty []string
	for _, s := range segs {
		if s.size == 0 {
			empty = append(empty, s.key)
			continue
		}
		manifest = append(manifest, sloSegment{Path: "/" + u.container + "/" + s.key, ETag: s.etag, SizeBytes: s.size})
	}
	if len(manifest) > maxSegments {
		return fmt.Errorf("%s: %d chunks are more than the %d segments of a static large object", u.what, len(manifest), maxSegments)
	}
	blobKey := u.blobKey(storageID)
	if len(manifest) == 0 {
		err = d.withContainer(ctx, u.area, func() error {
			return d.conn.ObjectPutBytes(ctx, u.container, blobKey, nil, "application/octet-stream")
		})
	} else {
		body, _ := json.Marshal(manifest)
		_, _, err = d.conn.Call(ctx, d.conn.StorageUrl, swift.RequestOpts{
			Container: u.container, ObjectName: blobKey, Operation: http.MethodPut,
			Parameters: url.Values{"multipart-manifest": {"put"}},
			Headers:    swift.Headers{"Content-Type": "application/octet-stream", "Content-Length": strconv.Itoa(len(body))},
			Body:       bytes.NewReader(body), NoResponse: true,
		})
	}
	if err != nil {
		return wrap(err, u.what+": writing the blob")
	}
	// Empty chunks are not part of the blob, and a chunk after the last one
	// (a retry that was never acknowledged) is not either.
	extra := append(empty, u.segmentKey(storageID, chunkCount+1))
	return d.deleteObjects(ctx, u.container, extra, u.what)
}

// AbortBlobUpload implements storage.Driver.
func (d *Driver) AbortBlobUpload(ctx context.Context, ref models.StorageRef, storageID string, chunkCount uint32) error {
	u, err := d.upload(ref, storageID, "abort upload")
	if err != nil {
		return err
	}
	keys := make(map[string]bool)
	for n := uint32(1); n <= chunkCount+1; n++ {
		keys[u.segmentKey(storageID, n)] = true
	}
	listed, err := d.listNames(ctx, u.container, u.segmentDir(storageID))
	if err != nil {
		return fmt.Errorf("%s: %w", u.what, err)
	}
	for _, k := range listed {
		keys[k] = true
	}
	deleted := 0
	for k := range keys {
		err := d.conn.ObjectDelete(ctx, u.container, k)
		switch {
		case err == nil:
			deleted++
		case errors.Is(err, swift.ObjectNotFound) || errors.Is(err, swift.ContainerNotFound):
		default:
			return fmt.Errorf("%s: deleting %s: %w", u.what, k, err)
		}
	}
	if deleted == 0 {
		return fmt.Errorf("%s: %w", u.what, storage.ErrNotFound)
	}
	return nil
}

// deleteObjects deletes objects that may not exist.
func (d *Driver) deleteObjects(ctx context.Context, container string, keys []string, what string) error {
	for _, k := range keys {
		err := d.conn.ObjectDelete(ctx, container, k)
		if err != nil && !errors.Is(err, swift.ObjectNotFound) {
			return fmt.Errorf("%s: deleting %s: %w", what, k, err)
		}
	}
	return nil
}

// listNames lists the object names below prefix (none if the container does
// not exist).
func (d *Driver) listNames(ctx context.Context, container, prefix string) ([]string, error) {
	names, err := d.conn.ObjectNamesAll(ctx, container, &swift.ObjectsOpts{Prefix: prefix})
	if errors.Is(err, swift.ContainerNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	return names, nil
}

// trimPrefix returns key without prefix, and whether it had it.
func trimPrefix(key, prefix string) (string, bool) {
	if !strings.HasPrefix(key, prefix) {
		return "", false
	}
	return key[len(prefix):], true
}
