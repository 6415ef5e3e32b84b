package storage

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// SortContents sorts listed blobs by storage ID and manifests by repository
// and digest, the order ListStorageContents returns them in.
func SortContents(blobs []StoredBlob, manifests []StoredManifest) {
	slices.SortFunc(blobs, func(x, y StoredBlob) int { return strings.Compare(x.StorageID, y.StorageID) })
	slices.SortFunc(manifests, func(x, y StoredManifest) int {
		return cmp.Or(strings.Compare(x.RepoName, y.RepoName), strings.Compare(x.Digest, y.Digest))
	})
}

// ParseManifestPath reads "<repo/path>/<digest>", the location of a
// manifest below an account's manifest directory, and reports whether it is
// a valid one.
func ParseManifestPath(path string) (StoredManifest, bool) {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return StoredManifest{}, false
	}
	m := StoredManifest{RepoName: path[:i], Digest: path[i+1:]}
	if ValidateRepoName(m.RepoName) != nil || ValidateDigest(m.Digest) != nil {
		return StoredManifest{}, false
	}
	return m, true
}

// ContextReader returns a reader that stops with the context's error once
// ctx is done, for drivers that stream content from a client.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return contextReader{ctx, r}
}

type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// HTTPRange returns the HTTP Range header value that asks an object store
// for a ReadBlob range ("" for the whole object). empty is true when no
// byte is asked for (the driver checks the offset against the size
// instead). Invalid arguments yield ErrInvalidRange.
func HTTPRange(offset, length int64) (header string, empty bool, err error) {
	switch {
	case offset < 0 || length < -1:
		return "", false, fmt.Errorf("%w: offset %d, length %d", ErrInvalidRange, offset, length)
	case length == 0:
		return "", true, nil
	case length == -1 && offset == 0:
		return "", false, nil
	case length == -1:
		return fmt.Sprintf("bytes=%d-", offset), false, nil
	default:
		return fmt.Sprintf("bytes=%d-%d", offset, offset+length-1), false, nil
	}
}
