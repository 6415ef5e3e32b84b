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
	// flags); ErrNotFound if it does not exist. The auth tenant and the
	// creation time cannot change: ErrConflict if a.AuthTenantID is set and
	// differs from the stored one.
	UpdateAccount(ctx context.Context, a models.Account) error
	// DeleteAccount removes an account that has no repositories left;
	// ErrNotFound if absent, ErrStillReferenced if repositories remain.
	// The account's blob rows, which no repository can mount any more, go
	// with it and their bytes leave the tenant's usage; their content in
	// storage is the caller's to remove (before, while the account is
	// marked as deleting).
	DeleteAccount(ctx context.Context, name string) error
	// ListAccountsOfTenants returns the accounts of the given tenants, by
	// name; none for an empty list.
	ListAccountsOfTenants(ctx context.Context, tenantIDs []string) ([]models.Account, error)
	// ListRepositoriesOfTenants is ListRepositories restricted to the
	// accounts of the given tenants (none for an empty list).
	ListRepositoriesOfTenants(ctx context.Context, tenantIDs []string, afterFullName string, limit int) ([]models.Repository, error)

	// ListRepositoryStats returns the account's repositories ordered by
	// name, starting after the name after, at most limit (NoLimit for all),
	// with manifest and tag counts, the bytes of the distinct blobs their
	// manifests reference (each blob once; the manifests' own bytes are not
	// counted), and the newest manifest's push time (nil if none).
	ListRepositoryStats(ctx context.Context, accountName, after string, limit int) ([]models.RepositoryStats, error)
	// DeleteRepository removes an empty repository (no manifests; blob
	// mounts and uploads go with it); ErrNotFound if absent,
	// ErrStillReferenced if manifests remain.
	DeleteRepository(ctx context.Context, repoID int64) error
	// ListManifestInfos returns the repository's manifests ordered by
	// digest, starting after the digest after, at most limit (NoLimit for
	// all), each with its tags by name (nil if untagged).
	ListManifestInfos(ctx context.Context, repoID int64, after string, limit int) ([]models.ManifestInfo, error)
	// GetTag returns one tag; ErrNotFound if absent.
	GetTag(ctx context.Context, repoID int64, name string) (models.Tag, error)
	// ListTagsOfManifest returns the names of the tags that point at a
	// manifest, in bytewise order.
	ListTagsOfManifest(ctx context.Context, repoID int64, digest string) ([]string, error)

	// ListUsers returns all users of the built-in store, by name.
	ListUsers(ctx context.Context) ([]models.User, error)
	// DeleteUser removes a user with their roles and API keys; ErrNotFound if absent.
	DeleteUser(ctx context.Context, name string) error
	// SetRole gives a user a role in a tenant; an empty role removes it
	// (removing a role the user does not have is no error). An unknown role
	// is refused; ErrReferenceMissing if the user does not exist.
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
	// RevokeAPIKey marks a key of the user as revoked (a revoked key keeps
	// its first revocation time); ErrNotFound if the user has no such key.
	RevokeAPIKey(ctx context.Context, username, id string, at time.Time) error

	// GetQuota returns a tenant's quota; ErrNotFound if it has no row (the
	// caller then applies its configured default). SizeBytes -1 means
	// unlimited.
	GetQuota(ctx context.Context, tenantID string) (models.Quota, error)
	// PutQuota creates or replaces a tenant's quota.
	PutQuota(ctx context.Context, q models.Quota) error
	// GetUsage returns what a tenant uses now: the number of manifests in
	// its accounts and the bytes of its blobs. It is maintained in the same
	// transactions that add or remove manifests and blobs, never computed by
	// scanning; a tenant without content has zero usage.
	GetUsage(ctx context.Context, tenantID string) (models.Usage, error)

	// RecordPulls moves the last_pulled_at of manifests (and of the tags
	// they were pulled by) forward; pulls of content that is gone are
	// ignored. The registry batches pulls in memory and calls this
	// periodically, so that the pull path itself never writes.
	RecordPulls(ctx context.Context, pulls []Pull) error

	// RecordAuditEvents appends events in one transaction; the store
	// assigns their IDs, and a zero Time means now.
	RecordAuditEvents(ctx context.Context, events ...models.AuditEvent) error
	// ListAuditEvents returns events matching the filter, newest (highest
	// ID) first.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]models.AuditEvent, error)
}

// Pull is a manifest pull: by digest, or by the tag Tag.
type Pull struct {
	RepositoryID int64
	Digest       string
	Tag          string
	At           time.Time
}

// AuditFilter selects audit events. Empty fields match everything; the
// conditions of the others are AND-ed.
type AuditFilter struct {
	Actor        string
	Action       string
	AuthTenantID string
	AccountName  string
	// Since <= Time < Until, in whole seconds.
	Since, Until time.Time
	// BeforeID pages backwards: only events with a smaller ID.
	BeforeID int64
	// Limit bounds the number of events: 100 if <= 0, at most 1000.
	Limit int
}
