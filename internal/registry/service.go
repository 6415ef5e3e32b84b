// Package registry is the domain service of the registry: pushing, pulling,
// mounting and deleting content with the invariants that the OCI spec and
// Keppel's multi-tenancy demand. It knows only the db and storage interfaces
// and is shared by the API handlers and the janitor.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"keppel/internal/db"
	"keppel/internal/federation"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/secretbox"
	"keppel/internal/storage"
)

// Domain errors. Every error the service returns to a caller because of the
// caller's input wraps one of these, with a message that is safe to show.
var (
	ErrNameInvalid         = errors.New("invalid repository name")
	ErrAccountUnknown      = errors.New("account unknown")
	ErrAccountDeleting     = errors.New("account is being deleted")
	ErrReplicaAccount      = errors.New("account is a replica")
	ErrRepositoryUnknown   = errors.New("repository unknown")
	ErrBlobUnknown         = errors.New("blob unknown")
	ErrBlobReferenced      = errors.New("blob is referenced by a manifest")
	ErrUploadUnknown       = errors.New("upload unknown")
	ErrUploadInvalid       = errors.New("upload invalid")
	ErrUploadOutOfOrder    = errors.New("chunk out of order")
	ErrDigestInvalid       = errors.New("digest invalid")
	ErrManifestUnknown     = errors.New("manifest unknown")
	ErrManifestInvalid     = errors.New("manifest invalid")
	ErrManifestTooLarge    = errors.New("manifest too large")
	ErrManifestBlobUnknown = errors.New("manifest references unknown content")
	ErrManifestReferenced  = errors.New("manifest is referenced by an index")
	ErrTagInvalid          = errors.New("tag invalid")
)

// Service implements the registry's operations.
type Service struct {
	db      db.Store
	storage storage.Driver
	log     *slog.Logger
	now     func() time.Time
	newID   func() string
	// defaultQuota applies to tenants without a quota row (-1: unlimited).
	defaultQuota models.Quota
	// uploadLocks serializes requests on the same upload.
	uploadLocks keyedMutex
	// pulls collects manifest pulls until FlushPulls.
	pulls pullBatch
	// secrets seals stored secrets (nil: none can be stored).
	secrets *secretbox.Box
	// fed decides which account names this registry may hold.
	fed federation.Driver
	// copies is the writer of manifest copies (nil when not started).
	copiesMu sync.Mutex
	copies   *manifestCopies
	// replication configures replica accounts; replicas is their state.
	replication ReplicationSettings
	replicas    replicaState
}

// Option configures a Service.
type Option func(*Service)

// WithClock injects the clock (for tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithIDGenerator injects the generator of storage IDs and upload UUIDs.
func WithIDGenerator(f func() string) Option { return func(s *Service) { s.newID = f } }

// WithDefaultQuota sets the quota of tenants that have none of their own
// (-1 in a field means unlimited). Without this option it is unlimited.
func WithDefaultQuota(q models.Quota) Option { return func(s *Service) { s.defaultQuota = q } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New builds the service.
func New(store db.Store, driver storage.Driver, opts ...Option) *Service {
	s := &Service{db: store, storage: driver, log: slog.Default(), now: time.Now, newID: randomID,
		defaultQuota: models.Quota{ManifestCount: -1, SizeBytes: -1},
		replication:  ReplicationSettings{TagLifetime: DefaultTagLifetime}}
	for _, o := range opts {
		o(s)
	}
	return s
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Repo is a resolved repository with its account.
type Repo struct {
	Account models.Account
	models.Repository
}

// StorageRef returns the storage area of the repository's account.
func (r Repo) StorageRef() models.StorageRef { return r.Account.StorageRef() }

// FindRepository resolves a full repository name to an existing repository.
// Accounts in deletion have no repositories any more as far as clients
// are concerned.
func (s *Service) FindRepository(ctx context.Context, fullName string) (Repo, error) {
	account, name, err := s.findAccount(ctx, fullName)
	if err != nil {
		return Repo{}, err
	}
	if account.IsDeleting {
		return Repo{}, fmt.Errorf("%w: repository %s is not known to the registry", ErrRepositoryUnknown, fullName)
	}
	repo, err := s.db.GetRepository(ctx, account.Name, name)
	if errors.Is(err, db.ErrNotFound) {
		return Repo{}, fmt.Errorf("%w: repository %s is not known to the registry", ErrRepositoryUnknown, fullName)
	}
	if err != nil {
		return Repo{}, fmt.Errorf("looking up repository: %w", err)
	}
	return Repo{Account: account, Repository: repo}, nil
}

// FindOrCreateRepository resolves a full repository name for a push,
// creating the repository inside its account if needed. The account must
// exist and not be in deletion.
func (s *Service) FindOrCreateRepository(ctx context.Context, fullName string) (Repo, error) {
	account, name, err := s.findAccount(ctx, fullName)
	if err != nil {
		return Repo{}, err
	}
	if account.IsDeleting {
		return Repo{}, fmt.Errorf("%w: account %s is being deleted", ErrAccountDeleting, account.Name)
	}
	if account.ReplicationJSON != "" {
		return Repo{}, fmt.Errorf("%w: account %s replicates %s and takes no pushes; push to the upstream instead",
			ErrReplicaAccount, account.Name, describeUpstream(account))
	}
	repo, err := s.db.FindOrCreateRepository(ctx, account.Name, name)
	if err != nil {
		return Repo{}, fmt.Errorf("creating repository: %w", err)
	}
	return Repo{Account: account, Repository: repo}, nil
}

func (s *Service) findAccount(ctx context.Context, fullName string) (models.Account, string, error) {
	accountName, name, ok := oci.SplitRepositoryName(fullName)
	if !ok {
		return models.Account{}, "", fmt.Errorf("%w: %q must be <account>/<repository> with lower-case components as the OCI spec defines", ErrNameInvalid, fullName)
	}
	account, err := s.db.GetAccount(ctx, accountName)
	if errors.Is(err, db.ErrNotFound) {
		return models.Account{}, "", fmt.Errorf("%w: account %s does not exist; an administrator can create it with `keppel account create %s` or PUT /keppel/v1/accounts/%s", ErrAccountUnknown, accountName, accountName, accountName)
	}
	if err != nil {
		return models.Account{}, "", fmt.Errorf("looking up account: %w", err)
	}
	return account, name, nil
}

// CreateAccount creates an account, or confirms that it exists with the same
// auth tenant (so that the call is idempotent). It returns created=false for
// an existing account, and db.ErrConflict for an existing account of another
// tenant.
func (s *Service) CreateAccount(ctx context.Context, name, authTenantID string) (models.Account, bool, error) {
	return s.CreateAccountWithSettings(ctx, models.Account{Name: name, AuthTenantID: authTenantID})
}

// CreateAccountWithSettings is CreateAccount for an account with its
// policies, which are stored in the same statement.
func (s *Service) CreateAccountWithSettings(ctx context.Context, a models.Account) (models.Account, bool, error) {
	return s.CreateAccountWithSublease(ctx, a, "")
}

// CreateAccountWithSublease is CreateAccountWithSettings for a replica
// account that another registry's sublease token allows. The name is
// claimed with the federation driver first (ErrAccountNameTaken,
// ErrSubleaseTokenInvalid).
func (s *Service) CreateAccountWithSublease(ctx context.Context, a models.Account, subleaseToken string) (models.Account, bool, error) {
	if err := s.claimAccountName(ctx, a, subleaseToken); err != nil {
		return models.Account{}, false, err
	}
	a.CreatedAt = s.now()
	err := s.db.CreateAccount(ctx, a)
	if errors.Is(err, db.ErrConflict) {
		existing, getErr := s.db.GetAccount(ctx, a.Name)
		if getErr != nil {
			return models.Account{}, false, fmt.Errorf("looking up account: %w", getErr)
		}
		if existing.AuthTenantID != a.AuthTenantID {
			return models.Account{}, false, err
		}
		return existing, false, nil
	}
	if err != nil {
		return models.Account{}, false, fmt.Errorf("creating account: %w", err)
	}
	return a, true, nil
}

// ValidateName checks a full repository name against the spec's grammar and
// the account name rules, without looking anything up.
func (s *Service) ValidateName(fullName string) (accountName string, err error) {
	accountName, _, ok := oci.SplitRepositoryName(fullName)
	if !ok {
		return "", fmt.Errorf("%w: %q must be <account>/<repository> with lower-case components as the OCI spec defines", ErrNameInvalid, fullName)
	}
	return accountName, nil
}

// GetAccount returns an account by name (db.ErrNotFound if unknown).
func (s *Service) GetAccount(ctx context.Context, name string) (models.Account, error) {
	return s.db.GetAccount(ctx, name)
}

// ListAccounts returns all accounts.
func (s *Service) ListAccounts(ctx context.Context) ([]models.Account, error) {
	return s.db.ListAccounts(ctx)
}
