// Package models holds the plain data types that the metadata store persists
// and the registry service passes around. It has no behaviour beyond small
// helpers and imports nothing internal.
package models

import "time"

// Account is a namespace with its own backing storage. It is the first path
// element of every repository name inside it.
type Account struct {
	Name         string
	AuthTenantID string
	// IsDeleting is set while the account's content is being removed; pushes are refused then.
	IsDeleting bool
	// Policies are stored as JSON documents so that their schema can evolve
	// without migrations; an empty string means "none".
	RBACPoliciesJSON   string
	GCPoliciesJSON     string
	TagPoliciesJSON    string
	ValidationRule     string
	PlatformFilterJSON string
	// ReplicationJSON holds the replication settings (strategy and
	// upstream); passwords in it are encrypted with the server's secrets key.
	ReplicationJSON string
	// SecurityScanPoliciesJSON holds the security scan policies ("" for
	// none), which adjust how found vulnerabilities count.
	SecurityScanPoliciesJSON string
	// IsManaged marks accounts declared in the managed-accounts file: users
	// cannot change them through the API.
	IsManaged bool
	// IsProtected accounts are never deleted by a reconcile of that file.
	IsProtected bool
	CreatedAt   time.Time
}

// StorageRef names the storage location of an account: every storage driver
// call is scoped by it.
func (a Account) StorageRef() StorageRef {
	return StorageRef{AuthTenantID: a.AuthTenantID, AccountName: a.Name}
}

// StorageRef identifies an account's storage area. It is what storage drivers
// receive, so that no driver call can reach content of another account.
type StorageRef struct {
	AuthTenantID string
	AccountName  string
}

// Repository is a repository inside an account. Name is the path below the
// account, e.g. for "library/alpine/edge" the account is "library" and Name is
// "alpine/edge".
type Repository struct {
	ID          int64
	AccountName string
	Name        string
}

// FullName returns the repository name as clients see it: "<account>/<name>".
func (r Repository) FullName() string {
	return r.AccountName + "/" + r.Name
}

// Blob is a piece of content stored once per account, however many
// repositories it is mounted in.
type Blob struct {
	ID          int64
	AccountName string
	Digest      string
	SizeBytes   int64
	StorageID   string
	MediaType   string
	PushedAt    time.Time
	// CanBeDeletedAt is set by garbage collection when the blob was found
	// unreferenced; nil otherwise.
	CanBeDeletedAt *time.Time
	// ValidationError says why the stored content did not match the
	// digest when it was last re-hashed ("" if it did, or was never
	// re-hashed). Such a blob is not served.
	ValidationError string
}

// Upload is a blob upload in progress. Its state lives in the metadata store so
// that any API process can continue it.
type Upload struct {
	RepositoryID int64
	UUID         string
	StorageID    string
	SizeBytes    int64
	// HashState is the marshalled state of the running digest computation
	// (encoding.BinaryMarshaler of the hash), so that a chunked upload can be
	// continued by any process.
	HashState []byte
	// DigestAlgorithm is "sha256" or "sha512".
	DigestAlgorithm string
	NumChunks       uint32
	UpdatedAt       time.Time
}

// Manifest is a stored manifest (image manifest, index, or Docker equivalent).
type Manifest struct {
	RepositoryID int64
	Digest       string
	MediaType    string
	SizeBytes    int64
	PushedAt     time.Time
	LastPulledAt *time.Time
	// SubjectDigest is the digest of the manifest's subject ("" if none).
	SubjectDigest string
	// ArtifactType is the manifest's artifactType, or the config media type
	// for image manifests that have no artifactType ("" if neither).
	ArtifactType string
	// AnnotationsJSON is the manifest's annotations as JSON ("" if none).
	AnnotationsJSON string
	// LabelsJSON holds the image configuration's labels as JSON ("" if none).
	LabelsJSON string
	// GCStatusJSON is what the account's GC policies decided for the
	// manifest on the janitor's last run, as JSON ("" if nothing).
	GCStatusJSON string
	// ValidationError says why the stored content did not check out on the
	// last re-validation ("" if it did). Such a manifest is not served.
	ValidationError string
	// VulnerabilityStatus is the result of the last vulnerability scan
	// ("Pending" before the first; see package scan).
	VulnerabilityStatus string
}

// ManifestWithContent is a manifest together with its raw bytes.
type ManifestWithContent struct {
	Manifest
	Content []byte
}

// Tag is a named pointer to a manifest inside a repository.
type Tag struct {
	RepositoryID int64
	Name         string
	Digest       string
	PushedAt     time.Time
	LastPulledAt *time.Time
}

// Quota is the limit of one auth tenant.
type Quota struct {
	AuthTenantID  string
	ManifestCount int64
	SizeBytes     int64
}

// User is an entry of the built-in user store.
type User struct {
	Name         string
	PasswordHash string
	IsAdmin      bool
	CreatedAt    time.Time
}

// Role is what a user may do in an auth tenant.
type Role string

// Roles, from least to most privileged.
const (
	// RoleViewer may pull and view the tenant's accounts.
	RoleViewer Role = "viewer"
	// RolePusher may also push.
	RolePusher Role = "pusher"
	// RoleAdmin may also delete and change the tenant's accounts and policies.
	RoleAdmin Role = "admin"
)

// Includes reports whether r grants at least what other grants.
func (r Role) Includes(other Role) bool {
	rank := map[Role]int{RoleViewer: 1, RolePusher: 2, RoleAdmin: 3}
	return rank[r] != 0 && rank[r] >= rank[other]
}

// APIKey is a revocable secret that a user of the built-in store can log in
// with instead of the password. Only a hash of the secret is stored.
type APIKey struct {
	// ID is the public part of the key (shown in listings).
	ID         string
	Username   string
	Name       string
	SecretHash string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
}

// Usage is what an auth tenant currently uses, maintained incrementally.
type Usage struct {
	AuthTenantID  string
	ManifestCount int64
	SizeBytes     int64
}

// AuditEvent records one change or security-relevant event.
type AuditEvent struct {
	ID int64
	// Time of the event.
	Time time.Time
	// Actor is the user name ("" for anonymous), RemoteAddr where the
	// request came from.
	Actor      string
	RemoteAddr string
	// Action names the kind of event, e.g. "account.create", "manifest.push",
	// "tag.delete", "login.failure".
	Action string
	// AuthTenantID, AccountName and Target say what the event was about
	// (Target is e.g. "repo@digest" or "repo:tag"; any may be empty).
	AuthTenantID string
	AccountName  string
	Target       string
	// Outcome is "success" or "failure"; Reason explains a failure.
	Outcome string
	Reason  string
	// DetailsJSON holds action-specific details (never secrets).
	DetailsJSON string
}

// RepositoryStats summarises a repository for the management API.
type RepositoryStats struct {
	Repository
	ManifestCount int64
	TagCount      int64
	SizeBytes     int64
	PushedAt      *time.Time
}

// ManifestInfo is a manifest with its tags, for the management API.
type ManifestInfo struct {
	Manifest
	Tags []Tag
	// CorruptBlob names a blob of the manifest whose stored content a
	// re-hash found corrupt, with the problem ("digest: problem"), or is
	// "" if there is none.
	CorruptBlob string
}
