package dbcache

import "context"

// ForgetBlobContent implements db.Store; the blob may be cached in any
// repository that mounts it, so everything is forgotten when it changed
// (a repair of `keppel server check`, which is rare).
func (c *Store) ForgetBlobContent(ctx context.Context, blobID int64, storageID string) (bool, error) {
	changed, err := c.Store.ForgetBlobContent(ctx, blobID, storageID)
	if changed || err != nil {
		c.invalidateAll()
	}
	return changed, err
}
