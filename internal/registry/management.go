package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/oci"
)

// ErrAccountNotEmpty is returned when an account or repository still has content.
var ErrAccountNotEmpty = errors.New("still has content")

// ErrQuotaExceeded is returned when a push would exceed the tenant's quota.
var ErrQuotaExceeded = errors.New("quota exceeded")

// ErrPolicyViolation is returned when a tag policy or validation rule
// refuses a change; the message names the policy.
var ErrPolicyViolation = errors.New("refused by policy")

// ErrManagedAccount is returned for changes to accounts that are managed
// from the operator's managed-accounts file.
var ErrManagedAccount = errors.New("account is managed by the operator")

// Store returns the metadata store (for the management API's read paths).
func (s *Service) Store() db.Store { return s.db }

// ListAccountsOfTenants returns the accounts of the given tenants.
func (s *Service) ListAccountsOfTenants(ctx context.Context, tenants []string) ([]models.Account, error) {
	return s.db.ListAccountsOfTenants(ctx, tenants)
}

// UpdateAccount stores an account's new settings. Managed accounts refuse
// changes unless managed is true (the reconciler's own changes).
func (s *Service) UpdateAccount(ctx context.Context, a models.Account, managed bool) error {
	existing, err := s.db.GetAccount(ctx, a.Name)
	if err != nil {
		return err
	}
	if existing.IsManaged && !managed {
		return fmt.Errorf("%w: account %s is declared by the operator and cannot be changed through the API", ErrManagedAccount, a.Name)
	}
	if existing.AuthTenantID != a.AuthTenantID {
		return fmt.Errorf("%w: account %s belongs to another auth tenant", db.ErrConflict, a.Name)
	}
	a.CreatedAt = existing.CreatedAt
	// Security scan policies have their own endpoint.
	a.SecurityScanPoliciesJSON = existing.SecurityScanPoliciesJSON
	if err := s.db.UpdateAccount(ctx, a); err != nil {
		return fmt.Errorf("updating account: %w", err)
	}
	return nil
}

// MarkAccountForDeletion marks an account as being deleted: pushes are
// refused from now on and the janitor removes its content and then the
// account itself.
func (s *Service) MarkAccountForDeletion(ctx context.Context, name string, managed bool) (models.Account, error) {
	a, err := s.db.GetAccount(ctx, name)
	if err != nil {
		return a, err
	}
	if a.IsManaged && !managed {
		return a, fmt.Errorf("%w: account %s is declared by the operator and cannot be deleted through the API", ErrManagedAccount, name)
	}
	if a.IsDeleting {
		return a, nil
	}
	a.IsDeleting = true
	if err := s.db.UpdateAccount(ctx, a); err != nil {
		return a, fmt.Errorf("marking account for deletion: %w", err)
	}
	return a, nil
}

// ListRepositoryStats lists an account's repositories with statistics.
func (s *Service) ListRepositoryStats(ctx context.Context, account, after string, limit int) ([]models.RepositoryStats, error) {
	return s.db.ListRepositoryStats(ctx, account, after, limit)
}

// DeleteRepository deletes an empty repository.
func (s *Service) DeleteRepository(ctx context.Context, repo Repo) error {
	err := s.db.DeleteRepository(ctx, repo.ID)
	switch {
	case errors.Is(err, db.ErrStillReferenced):
		return fmt.Errorf("repository %s %w: delete its manifests first", repo.FullName(), ErrAccountNotEmpty)
	case errors.Is(err, db.ErrNotFound):
		return fmt.Errorf("%w: repository %s", ErrRepositoryUnknown, repo.FullName())
	case err != nil:
		return fmt.Errorf("deleting repository: %w", err)
	}
	return nil
}

// ListManifestInfos lists a repository's manifests with their tags.
func (s *Service) ListManifestInfos(ctx context.Context, repo Repo, after string, limit int) ([]models.ManifestInfo, error) {
	return s.db.ListManifestInfos(ctx, repo.ID, after, limit)
}

// ParseDigestRef parses a digest given by a management API client.
func ParseDigestRef(s string) (digest.Digest, error) {
	d, err := oci.ParseDigest(s)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrDigestInvalid, err.Error())
	}
	return d, nil
}

// Quota is a tenant's quota with its current usage.
type Quota struct {
	Quota models.Quota
	Usage models.Usage
	// IsDefault is true when the tenant has no quota of its own.
	IsDefault bool
}

// GetQuota returns a tenant's quota (or the configured default) and usage.
func (s *Service) GetQuota(ctx context.Context, tenant string) (Quota, error) {
	q, err := s.db.GetQuota(ctx, tenant)
	isDefault := false
	if errors.Is(err, db.ErrNotFound) {
		q, isDefault = s.defaultQuota, true
		q.AuthTenantID = tenant
	} else if err != nil {
		return Quota{}, fmt.Errorf("looking up quota: %w", err)
	}
	u, err := s.db.GetUsage(ctx, tenant)
	if err != nil {
		return Quota{}, fmt.Errorf("looking up usage: %w", err)
	}
	return Quota{Quota: q, Usage: u, IsDefault: isDefault}, nil
}

// PutQuota sets a tenant's quota.
func (s *Service) PutQuota(ctx context.Context, q models.Quota) error {
	if err := s.db.PutQuota(ctx, q); err != nil {
		return fmt.Errorf("storing quota: %w", err)
	}
	return nil
}
