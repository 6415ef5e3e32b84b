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
	CreatedAt          time.Time
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
