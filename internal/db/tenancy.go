package db

import (
	"context"
	"time"

	"keppel/internal/models"
)

// TenancyStore manages what multi-tenancy needs beyond the registry's
// content: account changes, repository statistics, users' roles per
// tenant, API keys, quotas with incrementally maintained usage, and audit
// events.
type TenancyStore interface {
	// UpdateAccount replaces an account's auth tenant-independent settings
	// (policies, validation rule, platform filter, is_deleting, managed
	// flags); ErrNotFound if it does not exist. The auth tenant cannot change.
	UpdateAccount(ctx context.Context, a models.Account) error
	// DeleteAccount removes an account that has no repositories left;
	// ErrNotFound if absent, ErrStillReferenced if repositories remain.
	DeleteAccount(ctx context.Context, name string) error
	// ListAccountsOfTenants returns the accounts of the given tenants, by name.
	ListAccountsOfTenants(ctx context.Context, tenantIDs []string) ([]models.Account, error)

	// ListRepositoryStats returns the account's repositories ordered by
	// name, starting after the name after, at most limit (NoLimit for all),
	// with manifest and tag counts, the bytes of the blobs their manifests
	// reference, and the newest manifest's push time.
	ListRepositoryStats(ctx context.Context, accountName, after string, limit int) ([]models.RepositoryStats, error)
	// DeleteRepository removes an empty repository (no manifests; blob
	// mounts and uploads go with it); ErrNotFound if absent,
	// ErrStillReferenced if manifests remain.
	DeleteRepository(ctx context.Context, repoID int64) error
	// ListManifestInfos returns the repository's manifests ordered by
	// digest, starting after the digest after, at most limit, each with its tags.
	ListManifestInfos(ctx context.Context, repoID int64, after string, limit int) ([]models.ManifestInfo, error)
	// GetTag returns one tag; ErrNotFound if absent.
	GetTag(ctx context.Context, repoID int64, name string) (models.Tag, error)

	// ListUsers returns all users of the built-in store, by name.
	ListUsers(ctx context.Context) ([]models.User, error)
	// DeleteUser removes a user with their roles and API keys; ErrNotFound if absent.
	DeleteUser(ctx context.Context, name string) error
	// SetRole gives a user a role in a tenant; an empty role removes it.
	// ErrReferenceMissing if the user does not exist.
	SetRole(ctx context.Context, username, tenantID string, role models.Role) error
	// ListRoles returns a user's roles by tenant (empty map if none).
	ListRoles(ctx context.Context, username string) (map[string]models.Role, error)
	// ListTenantMembers returns the users with a role in the tenant.
	ListTenantMembers(ctx context.Context, tenantID string) (map[string]models.Role, error)

	// CreateAPIKey stores a new key; ErrConflict if the ID exists,
	// ErrReferenceMissing if the user does not.
	CreateAPIKey(ctx context.Context, k models.APIKey) error
	// GetAPIKey returns a key by ID (revoked ones too); ErrNotFound if absent.
	GetAPIKey(ctx context.Context, id string) (models.APIKey, error)
	// ListAPIKeys returns a user's keys, newest first.
	ListAPIKeys(ctx context.Context, username string) ([]models.APIKey, error)
	// RevokeAPIKey marks a key of the user as revoked; ErrNotFound if the
	// user has no such key.
	RevokeAPIKey(ctx context.Context, username, id string, at time.Time) error

	// GetQuota returns a tenant's quota; ErrNotFound if it has no row (the
	// caller then applies its configured default).
	GetQuota(ctx context.Context, tenantID string) (models.Quota, error)
	// PutQuota creates or replaces a tenant's quota.
	PutQuota(ctx context.Context, q models.Quota) error
	// GetUsage returns what a tenant uses now: the number of manifests in
	// its accounts and the bytes of its blobs. It is maintained in the same
	// transactions that add or remove manifests and blobs, never computed by
	// scanning; a tenant without content has zero usage.
	GetUsage(ctx context.Context, tenantID string) (models.Usage, error)

	// RecordAuditEvent appends an event.
	RecordAuditEvent(ctx context.Context, e models.AuditEvent) error
	// ListAuditEvents returns events matching the filter, newest first.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]models.AuditEvent, error)
}

// AuditFilter selects audit events. Empty fields match everything.
type AuditFilter struct {
	Actor        string
	Action       string
	AuthTenantID string
	AccountName  string
	Since, Until time.Time
	// BeforeID pages backwards: only events with a smaller ID.
	BeforeID int64
	Limit    int
}
