package registry

import (
	"context"
	"fmt"
)

// checkManifestQuota refuses a new manifest when the tenant's manifest
// quota is used up. Usage is maintained incrementally by the store, so this
// costs two point lookups.
func (s *Service) checkManifestQuota(ctx context.Context, repo Repo) error {
	q, err := s.GetQuota(ctx, repo.Account.AuthTenantID)
	if err != nil {
		return err
	}
	if q.Quota.ManifestCount >= 0 && q.Usage.ManifestCount+1 > q.Quota.ManifestCount {
		return fmt.Errorf("%w: auth tenant %s has %d of %d manifests; delete some or ask for a larger quota",
			ErrQuotaExceeded, repo.Account.AuthTenantID, q.Usage.ManifestCount, q.Quota.ManifestCount)
	}
	return nil
}

// checkBytesQuota refuses storing incoming more bytes when that would
// exceed the tenant's byte quota (incoming 0: refuse only when it is used up).
func (s *Service) checkBytesQuota(ctx context.Context, repo Repo, incoming int64) error {
	q, err := s.GetQuota(ctx, repo.Account.AuthTenantID)
	if err != nil {
		return err
	}
	limit := q.Quota.SizeBytes
	if limit < 0 {
		return nil
	}
	if q.Usage.SizeBytes+incoming > limit || (incoming == 0 && q.Usage.SizeBytes >= limit) {
		return fmt.Errorf("%w: auth tenant %s uses %d of %d bytes; delete some content or ask for a larger quota",
			ErrQuotaExceeded, repo.Account.AuthTenantID, q.Usage.SizeBytes, limit)
	}
	return nil
}
