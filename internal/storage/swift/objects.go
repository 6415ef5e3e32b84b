package swift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ncw/swift/v2"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// ReadBlob implements storage.Driver with one ranged GET.
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
	h := swift.Headers{}
	if rng != "" {
		h["Range"] = rng
	}
	f, _, err := d.conn.ObjectOpen(ctx, u.container, u.blobKey(storageID), false, h)
	if err != nil {
		if isStatus(err, http.StatusRequestedRangeNotSatisfiable) {
			return d.emptyRead(ctx, u, offset, length)
		}
		return nil, wrap(err, u.what)
	}
	return f, nil
}

// emptyRead answers a read that returns no bytes: fine at the end of the
// blob, ErrInvalidRange beyond it.
func (d *Driver) emptyRead(ctx context.Context, u upload, offset, length int64) (io.ReadCloser, error) {
	info, _, err := d.conn.Object(ctx, u.container, u.blobKey(u.storageID))
	if err != nil {
		return nil, wrap(err, u.what)
	}
	n, err := storage.ResolveRange(info.Bytes, offset, length)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.what, err)
	}
	if n != 0 {
		return nil, fmt.Errorf("%s: the server refused the range of %d bytes at offset %d", u.what, n, offset)
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// DeleteBlob implements storage.Driver; a static large object goes with its
// segments.
func (d *Driver) DeleteBlob(ctx context.Context, ref models.StorageRef, storageID string) error {
	u, err := d.upload(ref, storageID, "delete blob")
	if err != nil {
		return err
	}
	key := u.blobKey(storageID)
	_, headers, err := d.conn.Object(ctx, u.container, key)
	if err != nil {
		return wrap(err, u.what)
	}
	if !strings.EqualFold(headers["X-Static-Large-Object"], "true") {
		return wrap(d.conn.ObjectDelete(ctx, u.container, key), u.what)
	}
	_, _, err = d.conn.Call(ctx, d.conn.StorageUrl, swift.RequestOpts{
		Container: u.container, ObjectName: key, Operation: http.MethodDelete,
		Parameters: url.Values{"multipart-manifest": {"delete"}}, NoResponse: true,
	})
	if err != nil {
		return wrap(err, u.what)
	}
	return nil
}

func (d *Driver) manifest(ref models.StorageRef, repoName, digest, verb string) (area, string, string, error) {
	a, err := d.area(ref)
	if err != nil {
		return area{}, "", "", err
	}
	if err := storage.ValidateRepoName(repoName); err != nil {
		return area{}, "", "", err
	}
	if err := storage.ValidateDigest(digest); err != nil {
		return area{}, "", "", err
	}
	return a, a.manifestKey(repoName, digest), fmt.Sprintf("%s %s@%s in %s", verb, repoName, digest, a.desc), nil
}

// WriteManifest implements storage.Driver (a Swift PUT replaces the object
// atomically).
func (d *Driver) WriteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string, content []byte) error {
	a, key, what, err := d.manifest(ref, repoName, digest, "write manifest")
	if err != nil {
		return err
	}
	err = d.withContainer(ctx, a, func() error {
		return d.conn.ObjectPutBytes(ctx, a.container, key, content, "application/octet-stream")
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ReadManifest implements storage.Driver.
func (d *Driver) ReadManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) ([]byte, error) {
	a, key, what, err := d.manifest(ref, repoName, digest, "read manifest")
	if err != nil {
		return nil, err
	}
	content, err := d.conn.ObjectGetBytes(ctx, a.container, key)
	if err != nil {
		return nil, wrap(err, what)
	}
	return content, nil
}

// DeleteManifest implements storage.Driver.
func (d *Driver) DeleteManifest(ctx context.Context, ref models.StorageRef, repoName, digest string) error {
	a, key, what, err := d.manifest(ref, repoName, digest, "delete manifest")
	if err != nil {
		return err
	}
	if err := d.conn.ObjectDelete(ctx, a.container, key); err != nil {
		return wrap(err, what)
	}
	return nil
}

// objects lists the objects below prefix (none if the container does not
// exist).
func (d *Driver) objects(ctx context.Context, container, prefix string, limit int) ([]swift.Object, error) {
	var objs []swift.Object
	var err error
	if limit > 0 {
		objs, err = d.conn.Objects(ctx, container, &swift.ObjectsOpts{Prefix: prefix, Limit: limit})
	} else {
		objs, err = d.conn.ObjectsAll(ctx, container, &swift.ObjectsOpts{Prefix: prefix})
	}
	if errors.Is(err, swift.ContainerNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	return objs, nil
}

// ListStorageContents implements storage.Driver.
func (d *Driver) ListStorageContents(ctx context.Context, ref models.StorageRef) ([]storage.StoredBlob, []storage.StoredManifest, error) {
	a, err := d.area(ref)
	if err != nil {
		return nil, nil, err
	}
	objs, err := d.objects(ctx, a.container, a.prefix+"b/", 0)
	if err != nil {
		return nil, nil, fmt.Errorf("listing blobs of %s: %w", a.desc, err)
	}
	var blobs []storage.StoredBlob
	for _, o := range objs {
		if id, ok := trimPrefix(o.Name, a.prefix+"b/"); ok && !strings.Contains(id, "/") {
			blobs = append(blobs, storage.StoredBlob{StorageID: id, SizeBytes: o.Bytes})
		}
	}
	objs, err = d.objects(ctx, a.container, a.prefix+"m/", 0)
	if err != nil {
		return nil, nil, fmt.Errorf("listing manifests of %s: %w", a.desc, err)
	}
	var manifests []storage.StoredManifest
	for _, o := range objs {
		rest, _ := trimPrefix(o.Name, a.prefix+"m/")
		if m, ok := storage.ParseManifestPath(rest); ok {
			manifests = append(manifests, m)
		}
	}
	storage.SortContents(blobs, manifests)
	return blobs, manifests, nil
}

// CleanupAccount implements storage.Driver: with no blob or manifest of the
// account's tenant left, it deletes the remaining chunks, and the container
// once nothing is in it.
func (d *Driver) CleanupAccount(ctx context.Context, ref models.StorageRef) error {
	a, err := d.area(ref)
	if err != nil {
		return err
	}
	what := "cleaning up " + a.desc
	for _, dir := range []string{"b/", "m/"} {
		objs, err := d.objects(ctx, a.container, a.prefix+dir, 1)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if len(objs) > 0 {
			return fmt.Errorf("%s: %w", what, storage.ErrAccountNotEmpty)
		}
	}
	names, err := d.listNames(ctx, a.container, a.prefix)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := d.deleteObjects(ctx, a.container, names, what); err != nil {
		return err
	}
	rest, err := d.objects(ctx, a.container, "", 1)
	if err != nil || len(rest) > 0 {
		return err
	}
	d.containers.Delete(a.container)
	err = d.conn.ContainerDelete(ctx, a.container)
	if err != nil && !errors.Is(err, swift.ContainerNotFound) && !errors.Is(err, swift.ContainerNotEmpty) {
		return fmt.Errorf("%s: deleting container %s: %w", what, a.container, err)
	}
	return nil
}
