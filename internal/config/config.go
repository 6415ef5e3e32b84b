// Package config holds the typed server configuration: defaults that make the
// embedded mode work with no configuration at all, loading from a YAML file
// and KEPPEL_* environment variables (the environment wins), and validation
// with errors that name the offending key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole server configuration.
type Config struct {
	API      API      `yaml:"api"`
	DataDir  string   `yaml:"data_dir"`
	Database Database `yaml:"database"`
	Storage  Storage  `yaml:"storage"`
	Auth     Auth     `yaml:"auth"`
	Janitor  Janitor  `yaml:"janitor"`
	Quota    Quota    `yaml:"quota"`
	Audit    Audit    `yaml:"audit"`
	// RateLimits limit each account's use of the OCI API.
	RateLimits RateLimits `yaml:"rate_limits"`
	// Federation decides which account names this registry may hold.
	Federation Federation `yaml:"federation"`
	// Replication configures replica accounts.
	Replication Replication `yaml:"replication"`
	// Scan configures vulnerability scanning.
	Scan Scan `yaml:"scan"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is "text" or "json".
	LogFormat string `yaml:"log_format"`
}

// API configures the HTTP listener.
type API struct {
	ListenAddress string `yaml:"listen_address"`
	// PublicURL is the URL clients reach the registry at, used in the auth
	// challenge and Location headers. Derived from PublicFQDN or the listen
	// address when empty.
	PublicURL  string `yaml:"public_url"`
	PublicFQDN string `yaml:"public_fqdn"`
	TLSCert    string `yaml:"tls_cert_file"`
	TLSKey     string `yaml:"tls_key_file"`
	// PprofListenAddress enables net/http/pprof on a separate listener.
	PprofListenAddress string `yaml:"pprof_listen_address"`
	// TrustedProxies are the addresses (CIDRs) of reverse proxies whose
	// X-Forwarded-For header is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AccountSubdomains serves <account>.<public host>/v2/<repo>/… as
	// /v2/<account>/<repo>/… (a registry mirror for dockerd).
	AccountSubdomains bool `yaml:"account_subdomains"`
	// AnycastURL is a URL shared by the registries of a federation: a
	// read-only request for an account that another registry holds is
	// forwarded there ("": none).
	AnycastURL string `yaml:"anycast_url"`
}

// Database selects and configures the metadata store. With neither URL nor
// Hostname set, SQLite in the data directory is used.
type Database struct {
	URL               string `yaml:"url"`
	Hostname          string `yaml:"hostname"`
	Port              string `yaml:"port"`
	Username          string `yaml:"username"`
	Password          string `yaml:"password"`
	Name              string `yaml:"name"`
	ConnectionOptions string `yaml:"connection_options"`
	// SQLitePath overrides the SQLite file location.
	SQLitePath string `yaml:"sqlite_path"`
	// CacheMaxBytes bounds the in-memory cache of the metadata that pulls
	// read (0: 64 MiB; -1: no cache).
	CacheMaxBytes int64 `yaml:"cache_max_bytes"`
}

// Storage selects the content storage driver.
type Storage struct {
	// Driver is "filesystem" (default), "s3", or "memory" (for tests only).
	Driver string `yaml:"driver"`
	// Path is the root of the filesystem driver (default <data_dir>/storage).
	Path string `yaml:"path"`
	// S3 configures the s3 driver.
	S3 S3 `yaml:"s3"`
	// Swift configures the swift driver.
	Swift Swift `yaml:"swift"`
	// MigrateFrom, if set, is the storage that content moves away from:
	// it is still read, and the storage sweep moves each account's content
	// from it to this storage.
	MigrateFrom *Storage `yaml:"migrate_from"`
}

// Federation selects the federation driver, which keeps the claims of
// account names among registries that replicate between each other.
type Federation struct {
	// Driver is "trivial" (a single registry, the default) or "postgres"
	// (claims in a PostgreSQL database that every registry reaches).
	Driver string `yaml:"driver"`
	// PostgresURL is the claims database of the postgres driver.
	PostgresURL string `yaml:"postgres_url"`
	// Peers are the base URLs of the other registries of the federation
	// (e.g. https://keppel.eu-de-2.example.com), with which this registry
	// exchanges rotating service passwords for replication. Each is known
	// by the host (and port) of its URL; this registry's own URL may be
	// listed too and is skipped.
	Peers []string `yaml:"peers"`
	// PeerPasswordRotation is how often the password that this registry
	// issued to each peer is replaced (DefaultPeerPasswordRotation).
	PeerPasswordRotation time.Duration `yaml:"peer_password_rotation"`
}

// Swift configures the storage driver for OpenStack Swift.
type Swift struct {
	// AuthURL is the identity endpoint (Keystone v3 or v2, or TempAuth v1).
	AuthURL  string `yaml:"auth_url"`
	UserName string `yaml:"user_name"`
	Password string `yaml:"password"`
	// UserDomainName, ProjectName and ProjectDomainName scope a Keystone
	// token.
	UserDomainName    string `yaml:"user_domain_name"`
	ProjectName       string `yaml:"project_name"`
	ProjectDomainName string `yaml:"project_domain_name"`
	RegionName        string `yaml:"region_name"`
	// ContainerPrefix starts the name of each account's container.
	ContainerPrefix string `yaml:"container_prefix"`
	// TempURLKey is the Swift account's Temp-URL-Key (for redirects).
	TempURLKey string `yaml:"temp_url_key"`
	// RedirectBlobGets answers blob GETs with a redirect to a temporary URL
	// valid for PresignTTL (default 15m); needs TempURLKey.
	RedirectBlobGets bool          `yaml:"redirect_blob_gets"`
	PresignTTL       time.Duration `yaml:"presign_ttl"`
}

// S3 configures the storage driver for S3-compatible object stores.
type S3 struct {
	// Endpoint is the URL of the S3 API (empty: AWS).
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	// AccessKeyID and SecretAccessKey are static credentials; without
	// them the AWS SDK's default credential chain is used.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	// PathStyle addresses buckets as <endpoint>/<bucket>.
	PathStyle bool `yaml:"path_style"`
	// Bucket keeps all accounts in one bucket, below
	// <key_prefix><tenant>/<account>/.
	Bucket    string `yaml:"bucket"`
	KeyPrefix string `yaml:"key_prefix"`
	// BucketPrefix, instead of Bucket, gives each account its own bucket
	// named <bucket_prefix><account>.
	BucketPrefix string `yaml:"bucket_prefix"`
	// PartSize is the multipart upload part size in bytes (default 8 MiB,
	// at least 5 MiB).
	PartSize int64 `yaml:"part_size"`
	// RedirectBlobGets answers blob GETs with a redirect to a presigned
	// URL of the object store, valid for PresignTTL (default 15m).
	RedirectBlobGets bool          `yaml:"redirect_blob_gets"`
	PresignTTL       time.Duration `yaml:"presign_ttl"`
}

// Auth configures authentication and token issuance.
type Auth struct {
	// AdminPassword sets the password of the built-in "admin" user instead
	// of generating one on first start.
	AdminPassword string `yaml:"admin_password"`
	// IssuerKeyFile holds the Ed25519 private key (PEM, PKCS#8) that signs
	// tokens. Default: <data_dir>/token-key.pem, generated on first start.
	IssuerKeyFile string `yaml:"issuer_key_file"`
	// PreviousIssuerKeyFile holds the key used before the last rotation;
	// tokens signed with it are still accepted.
	PreviousIssuerKeyFile string        `yaml:"previous_issuer_key_file"`
	TokenLifetime         time.Duration `yaml:"token_lifetime"`
	// SecretsKeyFile holds the key (32 bytes, base64) that encrypts stored
	// secrets such as upstream registry passwords. Default:
	// <data_dir>/secrets-key, generated on first start.
	SecretsKeyFile string `yaml:"secrets_key_file"`
	// Driver checks credentials: "builtin" (users in the metadata store,
	// the default) or "oidc" (an OpenID Connect provider; the built-in
	// admin keeps working).
	Driver string `yaml:"driver"`
	OIDC   OIDC   `yaml:"oidc"`
}

// OIDC configures the OpenID Connect credential driver.
type OIDC struct {
	IssuerURL     string   `yaml:"issuer_url"`
	ClientID      string   `yaml:"client_id"`
	ClientSecret  string   `yaml:"client_secret"`
	UsernameClaim string   `yaml:"username_claim"`
	Scopes        []string `yaml:"scopes"`
	AdminClaim    string   `yaml:"admin_claim"`
	AdminValue    string   `yaml:"admin_value"`
	// RoleMappings grant roles in auth tenants by ID token claims.
	RoleMappings []OIDCRoleMapping `yaml:"role_mappings"`
}

// OIDCRoleMapping grants Role in AuthTenantID to users whose claim contains Value.
type OIDCRoleMapping struct {
	Claim        string `yaml:"claim"`
	Value        string `yaml:"value"`
	AuthTenantID string `yaml:"auth_tenant_id"`
	Role         string `yaml:"role"`
}

// Quota configures the quotas of auth tenants that have none of their own.
type Quota struct {
	// DefaultManifests is the number of manifests (-1: unlimited).
	DefaultManifests int64 `yaml:"default_manifests"`
	// DefaultBytes is the number of blob bytes (-1: unlimited).
	DefaultBytes int64 `yaml:"default_bytes"`
}

// Audit configures where audit events go besides the metadata store.
type Audit struct {
	// WebhookURL receives every event as a JSON POST (optional).
	WebhookURL string `yaml:"webhook_url"`
}

// Janitor configures the background jobs.
type Janitor struct {
	// Embedded runs the janitor inside the API process (the default).
	Embedded *bool `yaml:"embedded"`
	// ListenAddress, if set, makes `keppel server janitor` serve /metrics
	// and /healthcheck on this address.
	ListenAddress string `yaml:"listen_address"`
	// AbandonedUploadAge is how long an untouched upload is kept.
	AbandonedUploadAge time.Duration `yaml:"abandoned_upload_age"`
	// ManagedAccountsFile declares accounts that the janitor reconciles.
	ManagedAccountsFile string `yaml:"managed_accounts_file"`
	// GCGracePeriod is how long a blob mount or blob stays after it was
	// found unreferenced (docs/gc.md).
	GCGracePeriod time.Duration `yaml:"gc_grace_period"`
	// GCSweepInterval is how often each repository's mounts and each
	// account's blobs are swept.
	GCSweepInterval time.Duration `yaml:"gc_sweep_interval"`
	// ReplicaSyncInterval is how often each repository of a replica
	// account is compared with its upstream (1h if zero).
	ReplicaSyncInterval time.Duration `yaml:"replica_sync_interval"`
	// StorageSweepInterval is how often each account's storage is compared
	// with the database.
	StorageSweepInterval time.Duration `yaml:"storage_sweep_interval"`
	// BlobRehashInterval is how often each blob's content is read back
	// and hashed.
	BlobRehashInterval time.Duration `yaml:"blob_rehash_interval"`
	// PollInterval is how long the janitor's jobs that look for work
	// (abandoned uploads, account deletion, missing manifest copies) wait
	// when they found none.
	PollInterval time.Duration `yaml:"poll_interval"`
	// ManifestRevalidationInterval is how often each manifest's stored
	// content is checked again.
	ManifestRevalidationInterval time.Duration `yaml:"manifest_revalidation_interval"`
	// GCPolicyInterval is how often the GC policies of an account are
	// applied to each of its repositories.
	GCPolicyInterval time.Duration `yaml:"gc_policy_interval"`
	// GCRecentPushProtection keeps GC policies from deleting manifests
	// pushed more recently than this.
	GCRecentPushProtection time.Duration `yaml:"gc_recent_push_protection"`
	// GCPoliciesDryRun records what GC policies decide without deleting.
	GCPoliciesDryRun bool `yaml:"gc_policies_dry_run"`
}

// Default returns the configuration used when nothing is configured.
func Default() Config {
	return Config{
		API:       API{ListenAddress: "127.0.0.1:5000"},
		DataDir:   "keppel-data",
		Storage:   Storage{Driver: "filesystem"},
		Auth:      Auth{TokenLifetime: time.Hour, Driver: "builtin"},
		LogLevel:  "info",
		LogFormat: "text",
		Janitor: Janitor{AbandonedUploadAge: 24 * time.Hour, GCGracePeriod: 10 * time.Minute, GCSweepInterval: 5 * time.Minute,
			StorageSweepInterval: time.Hour, BlobRehashInterval: 7 * 24 * time.Hour,
			GCPolicyInterval: time.Hour, GCRecentPushProtection: time.Hour, ManifestRevalidationInterval: 24 * time.Hour,
			PollInterval: 30 * time.Second},
		Quota:      Quota{DefaultManifests: -1, DefaultBytes: -1},
		Federation: Federation{PeerPasswordRotation: DefaultPeerPasswordRotation},
	}
}

// Load builds the configuration from the defaults, then the YAML file (if
// path is not empty), then the environment (lookup is os.LookupEnv in
// production, injectable for tests). The result is validated and completed.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path != "" {
		buf, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("reading config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(buf))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("parsing config file %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, lookup); err != nil {
		return Config{}, err
	}
	if err := cfg.complete(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

type envBinding struct {
	name string
	set  func(c *Config, v string) error
}

func str(f func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func dur(f func(c *Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*f(c) = d
		return nil
	}
}

func integer(f func(c *Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return err
		}
		*f(c) = n
		return nil
	}
}

func boolean(f func(c *Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		*f(c) = b
		return nil
	}
}

var envBindings = []envBinding{
	{"KEPPEL_API_LISTEN_ADDRESS", str(func(c *Config) *string { return &c.API.ListenAddress })},
	{"KEPPEL_API_PUBLIC_URL", str(func(c *Config) *string { return &c.API.PublicURL })},
	{"KEPPEL_API_ACCOUNT_SUBDOMAINS", boolean(func(c *Config) *bool { return &c.API.AccountSubdomains })},
	{"KEPPEL_API_ANYCAST_URL", str(func(c *Config) *string { return &c.API.AnycastURL })},
	{"KEPPEL_API_PUBLIC_FQDN", str(func(c *Config) *string { return &c.API.PublicFQDN })},
	{"KEPPEL_API_TLS_CERT_FILE", str(func(c *Config) *string { return &c.API.TLSCert })},
	{"KEPPEL_API_TLS_KEY_FILE", str(func(c *Config) *string { return &c.API.TLSKey })},
	{"KEPPEL_PPROF_LISTEN_ADDRESS", str(func(c *Config) *string { return &c.API.PprofListenAddress })},
	{"KEPPEL_API_TRUSTED_PROXIES", func(c *Config, v string) error {
		c.API.TrustedProxies = strings.Split(v, ",")
		return nil
	}},
	{"KEPPEL_DATA_DIR", str(func(c *Config) *string { return &c.DataDir })},
	{"KEPPEL_DB_URL", str(func(c *Config) *string { return &c.Database.URL })},
	{"KEPPEL_DB_HOSTNAME", str(func(c *Config) *string { return &c.Database.Hostname })},
	{"KEPPEL_DB_PORT", str(func(c *Config) *string { return &c.Database.Port })},
	{"KEPPEL_DB_USERNAME", str(func(c *Config) *string { return &c.Database.Username })},
	{"KEPPEL_DB_PASSWORD", str(func(c *Config) *string { return &c.Database.Password })},
	{"KEPPEL_DB_NAME", str(func(c *Config) *string { return &c.Database.Name })},
	{"KEPPEL_DB_CONNECTION_OPTIONS", str(func(c *Config) *string { return &c.Database.ConnectionOptions })},
	{"KEPPEL_DB_SQLITE_PATH", str(func(c *Config) *string { return &c.Database.SQLitePath })},
	{"KEPPEL_DB_CACHE_MAX_BYTES", integer(func(c *Config) *int64 { return &c.Database.CacheMaxBytes })},
	{"KEPPEL_STORAGE_DRIVER", str(func(c *Config) *string { return &c.Storage.Driver })},
	{"KEPPEL_STORAGE_PATH", str(func(c *Config) *string { return &c.Storage.Path })},
	{"KEPPEL_FEDERATION_DRIVER", str(func(c *Config) *string { return &c.Federation.Driver })},
	{"KEPPEL_FEDERATION_POSTGRES_URL", str(func(c *Config) *string { return &c.Federation.PostgresURL })},
	{"KEPPEL_STORAGE_MIGRATE_FROM_DRIVER", func(c *Config, v string) error {
		c.Storage.migrateFrom().Driver = v
		return nil
	}},
	{"KEPPEL_STORAGE_MIGRATE_FROM_PATH", func(c *Config, v string) error {
		c.Storage.migrateFrom().Path = v
		return nil
	}},
	{"KEPPEL_SWIFT_AUTH_URL", str(func(c *Config) *string { return &c.Storage.Swift.AuthURL })},
	{"KEPPEL_SWIFT_USER_NAME", str(func(c *Config) *string { return &c.Storage.Swift.UserName })},
	{"KEPPEL_SWIFT_PASSWORD", str(func(c *Config) *string { return &c.Storage.Swift.Password })},
	{"KEPPEL_SWIFT_USER_DOMAIN_NAME", str(func(c *Config) *string { return &c.Storage.Swift.UserDomainName })},
	{"KEPPEL_SWIFT_PROJECT_NAME", str(func(c *Config) *string { return &c.Storage.Swift.ProjectName })},
	{"KEPPEL_SWIFT_PROJECT_DOMAIN_NAME", str(func(c *Config) *string { return &c.Storage.Swift.ProjectDomainName })},
	{"KEPPEL_SWIFT_REGION_NAME", str(func(c *Config) *string { return &c.Storage.Swift.RegionName })},
	{"KEPPEL_SWIFT_CONTAINER_PREFIX", str(func(c *Config) *string { return &c.Storage.Swift.ContainerPrefix })},
	{"KEPPEL_SWIFT_TEMP_URL_KEY", str(func(c *Config) *string { return &c.Storage.Swift.TempURLKey })},
	{"KEPPEL_SWIFT_REDIRECT_BLOB_GETS", boolean(func(c *Config) *bool { return &c.Storage.Swift.RedirectBlobGets })},
	{"KEPPEL_SWIFT_PRESIGN_TTL", dur(func(c *Config) *time.Duration { return &c.Storage.Swift.PresignTTL })},
	{"KEPPEL_S3_ENDPOINT", str(func(c *Config) *string { return &c.Storage.S3.Endpoint })},
	{"KEPPEL_S3_REGION", str(func(c *Config) *string { return &c.Storage.S3.Region })},
	{"KEPPEL_S3_ACCESS_KEY_ID", str(func(c *Config) *string { return &c.Storage.S3.AccessKeyID })},
	{"KEPPEL_S3_SECRET_ACCESS_KEY", str(func(c *Config) *string { return &c.Storage.S3.SecretAccessKey })},
	{"KEPPEL_S3_PATH_STYLE", boolean(func(c *Config) *bool { return &c.Storage.S3.PathStyle })},
	{"KEPPEL_S3_BUCKET", str(func(c *Config) *string { return &c.Storage.S3.Bucket })},
	{"KEPPEL_S3_KEY_PREFIX", str(func(c *Config) *string { return &c.Storage.S3.KeyPrefix })},
	{"KEPPEL_S3_BUCKET_PREFIX", str(func(c *Config) *string { return &c.Storage.S3.BucketPrefix })},
	{"KEPPEL_S3_PART_SIZE", integer(func(c *Config) *int64 { return &c.Storage.S3.PartSize })},
	{"KEPPEL_S3_REDIRECT_BLOB_GETS", boolean(func(c *Config) *bool { return &c.Storage.S3.RedirectBlobGets })},
	{"KEPPEL_S3_PRESIGN_TTL", dur(func(c *Config) *time.Duration { return &c.Storage.S3.PresignTTL })},
	{"KEPPEL_ADMIN_PASSWORD", str(func(c *Config) *string { return &c.Auth.AdminPassword })},
	{"KEPPEL_AUTH_ISSUER_KEY_FILE", str(func(c *Config) *string { return &c.Auth.IssuerKeyFile })},
	{"KEPPEL_AUTH_PREVIOUS_ISSUER_KEY_FILE", str(func(c *Config) *string { return &c.Auth.PreviousIssuerKeyFile })},
	{"KEPPEL_JANITOR_REPLICA_SYNC_INTERVAL", dur(func(c *Config) *time.Duration { return &c.Janitor.ReplicaSyncInterval })},
	{"KEPPEL_SCAN_SCANNER", str(func(c *Config) *string { return &c.Scan.Scanner })},
	{"KEPPEL_SCAN_OSV_DIR", str(func(c *Config) *string { return &c.Scan.OSVDir })},
	{"KEPPEL_SCAN_TRIVY_BINARY", str(func(c *Config) *string { return &c.Scan.TrivyBinary })},
	{"KEPPEL_SCAN_TRIVY_URL", str(func(c *Config) *string { return &c.Scan.TrivyURL })},
	{"KEPPEL_SCAN_INTERVAL", dur(func(c *Config) *time.Duration { return &c.Scan.Interval })},
	{"KEPPEL_SCAN_CONCURRENCY", integer(func(c *Config) *int64 { return &c.Scan.Concurrency })},
	{"KEPPEL_REPLICATION_TAG_LIFETIME", dur(func(c *Config) *time.Duration { return &c.Replication.TagLifetime })},
	{"KEPPEL_REPLICATION_SPOOL_DIR", str(func(c *Config) *string { return &c.Replication.SpoolDir })},
	{"KEPPEL_AUTH_TOKEN_LIFETIME", dur(func(c *Config) *time.Duration { return &c.Auth.TokenLifetime })},
	{"KEPPEL_AUTH_DRIVER", str(func(c *Config) *string { return &c.Auth.Driver })},
	{"KEPPEL_SECRETS_KEY_FILE", str(func(c *Config) *string { return &c.Auth.SecretsKeyFile })},
	{"KEPPEL_AUTH_OIDC_ISSUER_URL", str(func(c *Config) *string { return &c.Auth.OIDC.IssuerURL })},
	{"KEPPEL_AUTH_OIDC_CLIENT_ID", str(func(c *Config) *string { return &c.Auth.OIDC.ClientID })},
	{"KEPPEL_AUTH_OIDC_CLIENT_SECRET", str(func(c *Config) *string { return &c.Auth.OIDC.ClientSecret })},
	{"KEPPEL_JANITOR_ABANDONED_UPLOAD_AGE", dur(func(c *Config) *time.Duration { return &c.Janitor.AbandonedUploadAge })},
	{"KEPPEL_JANITOR_GC_GRACE_PERIOD", dur(func(c *Config) *time.Duration { return &c.Janitor.GCGracePeriod })},
	{"KEPPEL_JANITOR_GC_SWEEP_INTERVAL", dur(func(c *Config) *time.Duration { return &c.Janitor.GCSweepInterval })},
	{"KEPPEL_JANITOR_POLL_INTERVAL", dur(func(c *Config) *time.Duration { return &c.Janitor.PollInterval })},
	{"KEPPEL_JANITOR_MANIFEST_REVALIDATION_INTERVAL", dur(func(c *Config) *time.Duration { return &c.Janitor.ManifestRevalidationInterval })},
	{"KEPPEL_JANITOR_GC_POLICY_INTERVAL", dur(func(c *Config) *time.Duration { return &c.Janitor.GCPolicyInterval })},
	{"KEPPEL_JANITOR_GC_RECENT_PUSH_PROTECTION", dur(func(c *Config) *time.Duration { return &c.Janitor.GCRecentPushProtection })},
	{"KEPPEL_JANITOR_GC_POLICIES_DRY_RUN", boolean(func(c *Config) *bool { return &c.Janitor.GCPoliciesDryRun })},
	{"KEPPEL_JANITOR_BLOB_REHASH_INTERVAL", dur(func(c *Config) *time.Duration { return &c.Janitor.BlobRehashInterval })},
	{"KEPPEL_JANITOR_STORAGE_SWEEP_INTERVAL", dur(func(c *Config) *time.Duration { return &c.Janitor.StorageSweepInterval })},
	{"KEPPEL_JANITOR_LISTEN_ADDRESS", str(func(c *Config) *string { return &c.Janitor.ListenAddress })},
	{"KEPPEL_MANAGED_ACCOUNTS_FILE", str(func(c *Config) *string { return &c.Janitor.ManagedAccountsFile })},
	{"KEPPEL_JANITOR_EMBEDDED", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		c.Janitor.Embedded = &b
		return nil
	}},
	{"KEPPEL_QUOTA_DEFAULT_MANIFESTS", integer(func(c *Config) *int64 { return &c.Quota.DefaultManifests })},
	{"KEPPEL_QUOTA_DEFAULT_BYTES", integer(func(c *Config) *int64 { return &c.Quota.DefaultBytes })},
	{"KEPPEL_AUDIT_WEBHOOK_URL", str(func(c *Config) *string { return &c.Audit.WebhookURL })},
	{"KEPPEL_LOG_LEVEL", str(func(c *Config) *string { return &c.LogLevel })},
	{"KEPPEL_LOG_FORMAT", str(func(c *Config) *string { return &c.LogFormat })},
}

// EnvironmentVariables lists every variable that Load reads.
func EnvironmentVariables() []string {
	bindings := allBindings()
	names := make([]string, len(bindings))
	for i, b := range bindings {
		names[i] = b.name
	}
	return names
}

// allBindings are the environment variables of every setting.
func allBindings() []envBinding {
	return append(append(append([]envBinding{}, envBindings...), rateLimitBindings()...), federationBindings()...)
}

func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	for _, b := range allBindings() {
		v, ok := lookup(b.name)
		if !ok || v == "" {
			continue
		}
		if err := b.set(cfg, v); err != nil {
			return fmt.Errorf("environment variable %s: %w", b.name, err)
		}
	}
	return nil
}

// complete validates the configuration and fills in derived values.
func (c *Config) complete() error {
	if c.DataDir == "" {
		return errors.New("data_dir (KEPPEL_DATA_DIR) must not be empty")
	}
	host, port, err := net.SplitHostPort(c.API.ListenAddress)
	if err != nil {
		return fmt.Errorf("api.listen_address (KEPPEL_API_LISTEN_ADDRESS) %q: %w", c.API.ListenAddress, err)
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		return errors.New("api.tls_cert_file and api.tls_key_file must be set together")
	}
	scheme := "http"
	if c.API.TLSCert != "" {
		scheme = "https"
	}
	switch {
	case c.API.PublicURL != "":
	case c.API.PublicFQDN != "":
		c.API.PublicURL = scheme + "://" + c.API.PublicFQDN
	default:
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.API.PublicURL = scheme + "://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(c.API.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("api.public_url (KEPPEL_API_PUBLIC_URL) %q must be an http(s) URL", c.API.PublicURL)
	}
	c.API.PublicURL = strings.TrimSuffix(c.API.PublicURL, "/")
	if c.API.AnycastURL != "" {
		a, err := url.Parse(c.API.AnycastURL)
		if err != nil || (a.Scheme != "http" && a.Scheme != "https") || a.Host == "" || strings.Trim(a.Path, "/") != "" {
			return fmt.Errorf("api.anycast_url (KEPPEL_API_ANYCAST_URL) %q must be an http(s) URL without a path", c.API.AnycastURL)
		}
		if strings.EqualFold(a.Host, u.Host) {
			return errors.New("api.anycast_url (KEPPEL_API_ANYCAST_URL) must differ from api.public_url")
		}
		c.API.AnycastURL = strings.ToLower(a.Scheme + "://" + a.Host)
	}

	if c.Database.URL != "" && c.Database.Hostname != "" {
		return errors.New("database.url (KEPPEL_DB_URL) and database.hostname (KEPPEL_DB_HOSTNAME) are exclusive")
	}
	if c.Database.Hostname != "" {
		c.Database.URL = c.Database.postgresURL()
	}
	if c.Database.URL != "" && !strings.HasPrefix(c.Database.URL, "postgres://") && !strings.HasPrefix(c.Database.URL, "postgresql://") {
		return errors.New("database.url (KEPPEL_DB_URL) must be a postgres:// URL")
	}
	if c.Database.SQLitePath == "" {
		c.Database.SQLitePath = filepath.Join(c.DataDir, "keppel.db")
	}

	switch c.Federation.Driver {
	case "", "trivial":
		c.Federation.Driver = "trivial"
	case "postgres":
		if !strings.HasPrefix(c.Federation.PostgresURL, "postgres://") && !strings.HasPrefix(c.Federation.PostgresURL, "postgresql://") {
			return errors.New("federation.postgres_url (KEPPEL_FEDERATION_POSTGRES_URL) must be a postgres:// URL for the postgres federation driver")
		}
	default:
		return fmt.Errorf("federation.driver (KEPPEL_FEDERATION_DRIVER) %q is not one of: trivial, postgres", c.Federation.Driver)
	}
	if err := c.Federation.validatePeers(); err != nil {
		return err
	}
	if err := c.Storage.validate(c.DataDir, "storage"); err != nil {
		return err
	}
	if m := c.Storage.MigrateFrom; m != nil {
		if m.MigrateFrom != nil {
			return errors.New("storage.migrate_from.migrate_from: one migration at a time")
		}
		if m.Driver == "memory" {
			return errors.New("storage.migrate_from.driver (KEPPEL_STORAGE_MIGRATE_FROM_DRIVER) cannot be memory")
		}
		if m.Driver == "filesystem" && m.Path == "" {
			return errors.New("storage.migrate_from.path (KEPPEL_STORAGE_MIGRATE_FROM_PATH) is required for a filesystem")
		}
		if err := m.validate(c.DataDir, "storage.migrate_from"); err != nil {
			return fmt.Errorf("storage.migrate_from: %w", err)
		}
		if m.Driver == c.Storage.Driver && m.Driver == "filesystem" && filepath.Clean(m.Path) == filepath.Clean(c.Storage.Path) {
			return errors.New("storage.migrate_from.path (KEPPEL_STORAGE_MIGRATE_FROM_PATH) is the storage itself")
		}
	}
	if c.Auth.SecretsKeyFile == "" {
		c.Auth.SecretsKeyFile = filepath.Join(c.DataDir, "secrets-key")
	}
	if c.Auth.IssuerKeyFile == "" {
		c.Auth.IssuerKeyFile = filepath.Join(c.DataDir, "token-key.pem")
	}
	switch c.Scan.Scanner {
	case "":
	case "builtin":
		if c.Scan.OSVDir == "" {
			return errors.New("scan.osv_dir (KEPPEL_SCAN_OSV_DIR) is required for the builtin scanner")
		}
	case "trivy":
		if c.Scan.TrivyURL == "" {
			return errors.New("scan.trivy_url (KEPPEL_SCAN_TRIVY_URL) is required for the trivy scanner")
		}
		if u, err := url.Parse(c.Scan.TrivyURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("scan.trivy_url (KEPPEL_SCAN_TRIVY_URL) %q must be an http(s) URL", c.Scan.TrivyURL)
		}
		if c.Scan.TrivyBinary == "" {
			c.Scan.TrivyBinary = "trivy"
		}
	default:
		return fmt.Errorf("scan.scanner (KEPPEL_SCAN_SCANNER) %q is not one of: builtin, trivy (or empty for no scanning)", c.Scan.Scanner)
	}
	if c.Scan.Interval < 0 || c.Scan.Concurrency < 0 || c.Scan.Concurrency > 64 {
		return errors.New("scan.interval (KEPPEL_SCAN_INTERVAL) must not be negative and scan.concurrency (KEPPEL_SCAN_CONCURRENCY) must be between 0 and 64")
	}
	if c.Replication.TagLifetime < 0 {
		return errors.New("replication.tag_lifetime (KEPPEL_REPLICATION_TAG_LIFETIME) must not be negative")
	}
	if c.Auth.TokenLifetime < time.Minute || c.Auth.TokenLifetime > 24*time.Hour {
		return fmt.Errorf("auth.token_lifetime (KEPPEL_AUTH_TOKEN_LIFETIME) %s must be between 1m and 24h", c.Auth.TokenLifetime)
	}
	switch c.Auth.Driver {
	case "builtin":
	case "oidc":
		if c.Auth.OIDC.IssuerURL == "" || c.Auth.OIDC.ClientID == "" {
			return errors.New("auth.oidc.issuer_url (KEPPEL_AUTH_OIDC_ISSUER_URL) and auth.oidc.client_id (KEPPEL_AUTH_OIDC_CLIENT_ID) are required with auth.driver oidc")
		}
	default:
		return fmt.Errorf("auth.driver (KEPPEL_AUTH_DRIVER) %q is not one of: builtin, oidc", c.Auth.Driver)
	}
	if c.Janitor.AbandonedUploadAge < time.Minute {
		return fmt.Errorf("janitor.abandoned_upload_age (KEPPEL_JANITOR_ABANDONED_UPLOAD_AGE) %s must be at least 1m", c.Janitor.AbandonedUploadAge)
	}
	if c.Janitor.GCPolicyInterval < time.Second || c.Janitor.GCRecentPushProtection < 0 {
		return fmt.Errorf("janitor.gc_policy_interval (KEPPEL_JANITOR_GC_POLICY_INTERVAL) %s must be at least 1s, and janitor.gc_recent_push_protection (KEPPEL_JANITOR_GC_RECENT_PUSH_PROTECTION) %s not negative",
			c.Janitor.GCPolicyInterval, c.Janitor.GCRecentPushProtection)
	}
	if c.Janitor.PollInterval < 100*time.Millisecond {
		return fmt.Errorf("janitor.poll_interval (KEPPEL_JANITOR_POLL_INTERVAL) %s must be at least 100ms", c.Janitor.PollInterval)
	}
	if c.Janitor.ManifestRevalidationInterval < time.Second {
		return fmt.Errorf("janitor.manifest_revalidation_interval (KEPPEL_JANITOR_MANIFEST_REVALIDATION_INTERVAL) %s must be at least 1s", c.Janitor.ManifestRevalidationInterval)
	}
	if c.Janitor.BlobRehashInterval < time.Second {
		return fmt.Errorf("janitor.blob_rehash_interval (KEPPEL_JANITOR_BLOB_REHASH_INTERVAL) %s must be at least 1s", c.Janitor.BlobRehashInterval)
	}
	if c.Janitor.StorageSweepInterval < time.Second {
		return fmt.Errorf("janitor.storage_sweep_interval (KEPPEL_JANITOR_STORAGE_SWEEP_INTERVAL) %s must be at least 1s", c.Janitor.StorageSweepInterval)
	}
	if c.Janitor.GCGracePeriod < time.Second || c.Janitor.GCSweepInterval < time.Second {
		return fmt.Errorf("janitor.gc_grace_period (KEPPEL_JANITOR_GC_GRACE_PERIOD) %s and janitor.gc_sweep_interval (KEPPEL_JANITOR_GC_SWEEP_INTERVAL) %s must be at least 1s",
			c.Janitor.GCGracePeriod, c.Janitor.GCSweepInterval)
	}
	if err := c.RateLimits.validate(); err != nil {
		return err
	}
	if c.Database.CacheMaxBytes < -1 {
		return errors.New("database.cache_max_bytes (KEPPEL_DB_CACHE_MAX_BYTES) must be -1 (no cache), 0 (the default) or a number of bytes")
	}
	if c.Quota.DefaultManifests < -1 || c.Quota.DefaultBytes < -1 {
		return errors.New("quota.default_manifests and quota.default_bytes must be -1 (unlimited) or at least 0")
	}
	if c.Audit.WebhookURL != "" {
		u, err := url.Parse(c.Audit.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("audit.webhook_url (KEPPEL_AUDIT_WEBHOOK_URL) must be an http(s) URL")
		}
	}
	if c.Janitor.Embedded == nil {
		embedded := true
		c.Janitor.Embedded = &embedded
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level (KEPPEL_LOG_LEVEL) %q is not one of: debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log_format (KEPPEL_LOG_FORMAT) %q is not one of: text, json", c.LogFormat)
	}
	return nil
}

// UsesPostgres reports whether the metadata store is PostgreSQL.
func (c Config) UsesPostgres() bool { return c.Database.URL != "" }

// postgresURL assembles a connection URL from SAP Keppel's separate variables.
func (d Database) postgresURL() string {
	u := url.URL{Scheme: "postgres", Host: d.Hostname, Path: "/" + d.Name}
	switch {
	case d.Port != "":
		u.Host = net.JoinHostPort(d.Hostname, d.Port)
	case strings.Contains(d.Hostname, ":") && !strings.HasPrefix(d.Hostname, "["):
		// An IPv6 address needs brackets even without a port.
		u.Host = "[" + d.Hostname + "]"
	}
	if d.Name == "" {
		u.Path = "/keppel"
	}
	switch {
	case d.Username != "" && d.Password != "":
		u.User = url.UserPassword(d.Username, d.Password)
	case d.Username != "":
		u.User = url.User(d.Username)
	}
	u.RawQuery = d.ConnectionOptions
	return u.String()
}

func (s *S3) validate() error {
	if (s.Bucket == "") == (s.BucketPrefix == "") {
		return errors.New("storage.s3: set exactly one of bucket (KEPPEL_S3_BUCKET) and bucket_prefix (KEPPEL_S3_BUCKET_PREFIX)")
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("storage.s3.endpoint (KEPPEL_S3_ENDPOINT) %q must be an http(s) URL", s.Endpoint)
		}
	}
	if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
		return errors.New("storage.s3: access_key_id (KEPPEL_S3_ACCESS_KEY_ID) and secret_access_key (KEPPEL_S3_SECRET_ACCESS_KEY) go together")
	}
	if s.PartSize != 0 && s.PartSize < 5<<20 {
		return fmt.Errorf("storage.s3.part_size (KEPPEL_S3_PART_SIZE) %d must be at least 5 MiB", s.PartSize)
	}
	if s.PresignTTL == 0 {
		s.PresignTTL = 15 * time.Minute
	}
	if s.PresignTTL < time.Minute || s.PresignTTL > 7*24*time.Hour {
		return fmt.Errorf("storage.s3.presign_ttl (KEPPEL_S3_PRESIGN_TTL) %s must be between 1m and 168h", s.PresignTTL)
	}
	return nil
}

func (s *Swift) validate() error {
	u, err := url.Parse(s.AuthURL)
	if s.AuthURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("storage.swift.auth_url (KEPPEL_SWIFT_AUTH_URL) %q must be an http(s) URL", s.AuthURL)
	}
	if s.UserName == "" {
		return errors.New("storage.swift.user_name (KEPPEL_SWIFT_USER_NAME) is required")
	}
	if strings.Contains(s.ContainerPrefix, "/") {
		return fmt.Errorf("storage.swift.container_prefix (KEPPEL_SWIFT_CONTAINER_PREFIX) %q must not contain a slash", s.ContainerPrefix)
	}
	if s.RedirectBlobGets && s.TempURLKey == "" {
		return errors.New("storage.swift.redirect_blob_gets (KEPPEL_SWIFT_REDIRECT_BLOB_GETS) needs storage.swift.temp_url_key (KEPPEL_SWIFT_TEMP_URL_KEY)")
	}
	if s.PresignTTL == 0 {
		s.PresignTTL = 15 * time.Minute
	}
	if s.PresignTTL < time.Minute || s.PresignTTL > 7*24*time.Hour {
		return fmt.Errorf("storage.swift.presign_ttl (KEPPEL_SWIFT_PRESIGN_TTL) %s must be between 1m and 168h", s.PresignTTL)
	}
	return nil
}

// migrateFrom returns MigrateFrom, creating it (as a filesystem) if unset.
func (s *Storage) migrateFrom() *Storage {
	if s.MigrateFrom == nil {
		s.MigrateFrom = &Storage{Driver: "filesystem"}
	}
	return s.MigrateFrom
}

// validate checks a storage section (key names the section) and fills in
// defaults.
func (s *Storage) validate(dataDir, key string) error {
	switch s.Driver {
	case "filesystem":
		if s.Path == "" {
			s.Path = filepath.Join(dataDir, "storage")
		}
	case "s3":
		if err := s.S3.validate(); err != nil {
			return err
		}
	case "swift":
		if err := s.Swift.validate(); err != nil {
			return err
		}
	case "memory":
	default:
		return fmt.Errorf("%s.driver (KEPPEL_STORAGE_DRIVER) %q is not one of: filesystem, s3, swift, memory", key, s.Driver)
	}
	return nil
}
