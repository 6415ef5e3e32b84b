package config_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keppel/internal/config"
)

// env returns a lookup function over a fixed map, so that tests never read
// the real environment.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// writeYAML writes content to a config file in a fresh temporary directory.
func writeYAML(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keppel.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", env(nil))
	if err != nil {
		t.Fatalf("defaults do not load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen address", cfg.API.ListenAddress, "127.0.0.1:5000"},
		{"public URL", cfg.API.PublicURL, "http://127.0.0.1:5000"},
		{"data dir", cfg.DataDir, "keppel-data"},
		{"sqlite path", cfg.Database.SQLitePath, filepath.Join("keppel-data", "keppel.db")},
		{"uses postgres", cfg.UsesPostgres(), false},
		{"storage driver", cfg.Storage.Driver, "filesystem"},
		{"storage path", cfg.Storage.Path, filepath.Join("keppel-data", "storage")},
		{"issuer key file", cfg.Auth.IssuerKeyFile, filepath.Join("keppel-data", "token-key.pem")},
		{"token lifetime", cfg.Auth.TokenLifetime, time.Hour},
		{"janitor embedded set", cfg.Janitor.Embedded != nil, true},
		{"abandoned upload age", cfg.Janitor.AbandonedUploadAge, 24 * time.Hour},
		{"log level", cfg.LogLevel, "info"},
		{"log format", cfg.LogFormat, "text"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if cfg.Janitor.Embedded != nil && !*cfg.Janitor.Embedded {
		t.Error("janitor is not embedded by default")
	}
}

func TestDerivedValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		// want returns the actual and the expected value.
		want func(cfg config.Config) (got, want string)
	}{
		{
			name: "public URL from wildcard IPv4 listen address",
			env:  map[string]string{"KEPPEL_API_LISTEN_ADDRESS": "0.0.0.0:8080"},
			want: func(c config.Config) (string, string) { return c.API.PublicURL, "http://localhost:8080" },
		},
		{
			name: "public URL from listen address without host",
			env:  map[string]string{"KEPPEL_API_LISTEN_ADDRESS": ":8080"},
			want: func(c config.Config) (string, string) { return c.API.PublicURL, "http://localhost:8080" },
		},
		{
			name: "public URL from wildcard IPv6 listen address",
			env:  map[string]string{"KEPPEL_API_LISTEN_ADDRESS": "[::]:8080"},
			want: func(c config.Config) (string, string) { return c.API.PublicURL, "http://localhost:8080" },
		},
		{
			name: "public URL from IPv6 listen address",
			env:  map[string]string{"KEPPEL_API_LISTEN_ADDRESS": "[::1]:8080"},
			want: func(c config.Config) (string, string) { return c.API.PublicURL, "http://[::1]:8080" },
		},
		{
			name: "public URL from listen address with TLS",
			env: map[string]string{
				"KEPPEL_API_LISTEN_ADDRESS": "127.0.0.1:8443",
				"KEPPEL_API_TLS_CERT_FILE":  "cert.pem",
				"KEPPEL_API_TLS_KEY_FILE":   "key.pem",
			},
			want: func(c config.Config) (string, string) { return c.API.PublicURL, "https://127.0.0.1:8443" },
		},
		{
			name: "public FQDN without TLS",
			env:  map[string]string{"KEPPEL_API_PUBLIC_FQDN": "registry.example.com"},
			want: func(c config.Config) (string, string) { return c.API.PublicURL, "http://registry.example.com" },
		},
		{
			name: "public FQDN with TLS",
			env: map[string]string{
				"KEPPEL_API_PUBLIC_FQDN":   "registry.example.com",
				"KEPPEL_API_TLS_CERT_FILE": "cert.pem",
				"KEPPEL_API_TLS_KEY_FILE":  "key.pem",
			},
			want: func(c config.Config) (string, string) { return c.API.PublicURL, "https://registry.example.com" },
		},
		{
			name: "public URL wins over FQDN and loses its trailing slash",
			env: map[string]string{
				"KEPPEL_API_PUBLIC_FQDN": "registry.example.com",
				"KEPPEL_API_PUBLIC_URL":  "https://other.example.com/",
			},
			want: func(c config.Config) (string, string) { return c.API.PublicURL, "https://other.example.com" },
		},
		{
			name: "SQLite and storage paths follow the data dir",
			env:  map[string]string{"KEPPEL_DATA_DIR": "/srv/keppel"},
			want: func(c config.Config) (string, string) {
				return c.Database.SQLitePath + " " + c.Storage.Path + " " + c.Auth.IssuerKeyFile,
					"/srv/keppel/keppel.db /srv/keppel/storage /srv/keppel/token-key.pem"
			},
		},
		{
			name: "explicit paths are kept",
			env: map[string]string{
				"KEPPEL_DB_SQLITE_PATH":       "/db/k.db",
				"KEPPEL_STORAGE_PATH":         "/blobs",
				"KEPPEL_AUTH_ISSUER_KEY_FILE": "/keys/k.pem",
			},
			want: func(c config.Config) (string, string) {
				return c.Database.SQLitePath + " " + c.Storage.Path + " " + c.Auth.IssuerKeyFile,
					"/db/k.db /blobs /keys/k.pem"
			},
		},
		{
			name: "memory storage has no path",
			env:  map[string]string{"KEPPEL_STORAGE_DRIVER": "memory"},
			want: func(c config.Config) (string, string) { return c.Storage.Path, "" },
		},
		{
			name: "janitor can be disabled",
			env:  map[string]string{"KEPPEL_JANITOR_EMBEDDED": "false"},
			want: func(c config.Config) (string, string) {
				if c.Janitor.Embedded == nil {
					return "nil", "false"
				}
				return map[bool]string{true: "true", false: "false"}[*c.Janitor.Embedded], "false"
			},
		},
		{
			name: "janitor disabled in YAML",
			yaml: "janitor:\n  embedded: false\n",
			want: func(c config.Config) (string, string) {
				if c.Janitor.Embedded == nil {
					return "nil", "false"
				}
				return map[bool]string{true: "true", false: "false"}[*c.Janitor.Embedded], "false"
			},
		},
		{
			name: "durations in YAML",
			yaml: "auth:\n  token_lifetime: 30m\njanitor:\n  abandoned_upload_age: 2h\n",
			want: func(c config.Config) (string, string) {
				return c.Auth.TokenLifetime.String() + " " + c.Janitor.AbandonedUploadAge.String(), "30m0s 2h0m0s"
			},
		},
		{
			name: "empty environment values are ignored",
			yaml: "log_level: debug\n",
			env:  map[string]string{"KEPPEL_LOG_LEVEL": "", "KEPPEL_DB_URL": ""},
			want: func(c config.Config) (string, string) {
				return c.LogLevel + " " + c.Database.URL, "debug "
			},
		},
		{
			name: "postgres URL is taken as is",
			env:  map[string]string{"KEPPEL_DB_URL": "postgresql://u@db/k?sslmode=disable"},
			want: func(c config.Config) (string, string) { return c.Database.URL, "postgresql://u@db/k?sslmode=disable" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tc.yaml != "" {
				path = writeYAML(t, tc.yaml)
			}
			cfg, err := config.Load(path, env(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got, want := tc.want(cfg); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestEnvironmentOverridesYAML(t *testing.T) {
	t.Parallel()
	path := writeYAML(t, `
api:
  listen_address: 127.0.0.1:6000
  public_url: https://yaml.example.com
data_dir: /from/yaml
storage:
  driver: memory
auth:
  admin_password: from-yaml
  token_lifetime: 10m
log_level: warn
log_format: json
`)
	// Only some keys are overridden; the others must come from the file.
	cfg, err := config.Load(path, env(map[string]string{
		"KEPPEL_API_PUBLIC_URL":      "https://env.example.com",
		"KEPPEL_ADMIN_PASSWORD":      "from-env",
		"KEPPEL_AUTH_TOKEN_LIFETIME": "2h",
		"KEPPEL_LOG_LEVEL":           "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"public URL (env)", cfg.API.PublicURL, "https://env.example.com"},
		{"admin password (env)", cfg.Auth.AdminPassword, "from-env"},
		{"token lifetime (env)", cfg.Auth.TokenLifetime, 2 * time.Hour},
		{"log level (env)", cfg.LogLevel, "debug"},
		{"listen address (yaml)", cfg.API.ListenAddress, "127.0.0.1:6000"},
		{"data dir (yaml)", cfg.DataDir, "/from/yaml"},
		{"storage driver (yaml)", cfg.Storage.Driver, "memory"},
		{"log format (yaml)", cfg.LogFormat, "json"},
		{"sqlite path (derived from yaml)", cfg.Database.SQLitePath, "/from/yaml/keppel.db"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEmptyYAMLFile(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"empty":         "",
		"only comments": "# nothing configured here\n",
		"empty mapping": "{}\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(writeYAML(t, content), env(nil))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.API.PublicURL != "http://127.0.0.1:5000" || cfg.Storage.Driver != "filesystem" {
				t.Errorf("an empty file changed the defaults: %+v", cfg)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	t.Parallel()
	_, err := config.Load(filepath.Join(t.TempDir(), "does-not-exist.yaml"), env(nil))
	if err == nil {
		t.Fatal("a missing config file was accepted")
	}
}

func TestS3FromEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"KEPPEL_DATA_DIR":              t.TempDir(),
		"KEPPEL_STORAGE_DRIVER":        "s3",
		"KEPPEL_S3_ENDPOINT":           "http://127.0.0.1:9000",
		"KEPPEL_S3_REGION":             "eu-de-1",
		"KEPPEL_S3_ACCESS_KEY_ID":      "AK",
		"KEPPEL_S3_SECRET_ACCESS_KEY":  "SK",
		"KEPPEL_S3_PATH_STYLE":         "true",
		"KEPPEL_S3_BUCKET_PREFIX":      "keppel-",
		"KEPPEL_S3_PART_SIZE":          "16777216",
		"KEPPEL_S3_REDIRECT_BLOB_GETS": "1",
	}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	want := config.S3{
		Endpoint: "http://127.0.0.1:9000", Region: "eu-de-1", AccessKeyID: "AK", SecretAccessKey: "SK",
		PathStyle: true, BucketPrefix: "keppel-", PartSize: 16 << 20, RedirectBlobGets: true, PresignTTL: 15 * time.Minute,
	}
	if cfg.Storage.S3 != want {
		t.Errorf("storage.s3 = %+v, want %+v", cfg.Storage.S3, want)
	}
}

func TestStorageMigrationFromEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"KEPPEL_DATA_DIR":                    t.TempDir(),
		"KEPPEL_STORAGE_DRIVER":              "s3",
		"KEPPEL_S3_BUCKET":                   "keppel",
		"KEPPEL_STORAGE_MIGRATE_FROM_PATH":   "/srv/keppel/storage",
		"KEPPEL_STORAGE_MIGRATE_FROM_DRIVER": "filesystem",
	}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Storage.MigrateFrom; m == nil || m.Driver != "filesystem" || m.Path != "/srv/keppel/storage" {
		t.Errorf("storage.migrate_from = %+v", m)
	}
	delete(env, "KEPPEL_STORAGE_MIGRATE_FROM_PATH")
	delete(env, "KEPPEL_STORAGE_MIGRATE_FROM_DRIVER")
	cfg, err = config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.MigrateFrom != nil {
		t.Errorf("storage.migrate_from = %+v without any setting", cfg.Storage.MigrateFrom)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		// wantKeys must all occur in the error message.
		wantKeys []string
	}{
		{
			name:     "unknown top-level YAML key",
			yaml:     "listen_address: 127.0.0.1:5000\n",
			wantKeys: []string{"listen_address"},
		},
		{
			name:     "unknown nested YAML key",
			yaml:     "api:\n  listen_adress: 127.0.0.1:5000\n",
			wantKeys: []string{"listen_adress"},
		},
		{
			name:     "YAML of the wrong type",
			yaml:     "api: [1, 2]\n",
			wantKeys: []string{"parsing config file"},
		},
		{
			name:     "bad duration in YAML",
			yaml:     "auth:\n  token_lifetime: forever\n",
			wantKeys: []string{"forever"},
		},
		{
			name:     "unknown federation driver",
			env:      map[string]string{"KEPPEL_FEDERATION_DRIVER": "swift"},
			wantKeys: []string{"federation.driver", "KEPPEL_FEDERATION_DRIVER"},
		},
		{
			name:     "postgres federation without a database",
			env:      map[string]string{"KEPPEL_FEDERATION_DRIVER": "postgres"},
			wantKeys: []string{"federation.postgres_url", "KEPPEL_FEDERATION_POSTGRES_URL"},
		},
		{
			name:     "migration from a filesystem without a path",
			env:      map[string]string{"KEPPEL_STORAGE_MIGRATE_FROM_DRIVER": "filesystem"},
			wantKeys: []string{"storage.migrate_from.path", "KEPPEL_STORAGE_MIGRATE_FROM_PATH"},
		},
		{
			name:     "migration from the storage itself",
			env:      map[string]string{"KEPPEL_STORAGE_PATH": "/srv/keppel", "KEPPEL_STORAGE_MIGRATE_FROM_PATH": "/srv/keppel/"},
			wantKeys: []string{"storage.migrate_from.path"},
		},
		{
			name:     "migration from memory",
			env:      map[string]string{"KEPPEL_STORAGE_MIGRATE_FROM_DRIVER": "memory"},
			wantKeys: []string{"storage.migrate_from.driver"},
		},
		{
			name:     "migration from a broken S3 section",
			yaml:     "storage:\n  migrate_from:\n    driver: s3\n",
			wantKeys: []string{"storage.migrate_from", "bucket"},
		},
		{
			name:     "swift without an auth URL",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "swift"},
			wantKeys: []string{"storage.swift.auth_url", "KEPPEL_SWIFT_AUTH_URL"},
		},
		{
			name:     "swift without a user",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "swift", "KEPPEL_SWIFT_AUTH_URL": "https://keystone.example.com/v3"},
			wantKeys: []string{"KEPPEL_SWIFT_USER_NAME"},
		},
		{
			name: "swift redirects without a temp URL key",
			env: map[string]string{"KEPPEL_STORAGE_DRIVER": "swift", "KEPPEL_SWIFT_AUTH_URL": "https://keystone.example.com/v3",
				"KEPPEL_SWIFT_USER_NAME": "keppel", "KEPPEL_SWIFT_REDIRECT_BLOB_GETS": "true"},
			wantKeys: []string{"KEPPEL_SWIFT_REDIRECT_BLOB_GETS", "KEPPEL_SWIFT_TEMP_URL_KEY"},
		},
		{
			name:     "s3 without a bucket",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "s3"},
			wantKeys: []string{"KEPPEL_S3_BUCKET", "KEPPEL_S3_BUCKET_PREFIX"},
		},
		{
			name:     "s3 with both bucket layouts",
			yaml:     "storage:\n  driver: s3\n  s3:\n    bucket: b\n    bucket_prefix: p-\n",
			wantKeys: []string{"bucket", "bucket_prefix"},
		},
		{
			name:     "s3 endpoint that is no URL",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "s3", "KEPPEL_S3_BUCKET": "b", "KEPPEL_S3_ENDPOINT": "127.0.0.1:9000"},
			wantKeys: []string{"storage.s3.endpoint", "KEPPEL_S3_ENDPOINT"},
		},
		{
			name:     "s3 access key without secret",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "s3", "KEPPEL_S3_BUCKET": "b", "KEPPEL_S3_ACCESS_KEY_ID": "k"},
			wantKeys: []string{"KEPPEL_S3_ACCESS_KEY_ID", "KEPPEL_S3_SECRET_ACCESS_KEY"},
		},
		{
			name:     "s3 part size below the S3 minimum",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "s3", "KEPPEL_S3_BUCKET": "b", "KEPPEL_S3_PART_SIZE": "1048576"},
			wantKeys: []string{"storage.s3.part_size", "KEPPEL_S3_PART_SIZE"},
		},
		{
			name:     "s3 presign TTL out of range",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "s3", "KEPPEL_S3_BUCKET": "b", "KEPPEL_S3_PRESIGN_TTL": "1s"},
			wantKeys: []string{"storage.s3.presign_ttl", "KEPPEL_S3_PRESIGN_TTL"},
		},
		{
			name:     "s3 path style that is no boolean",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "s3", "KEPPEL_S3_BUCKET": "b", "KEPPEL_S3_PATH_STYLE": "sometimes"},
			wantKeys: []string{"KEPPEL_S3_PATH_STYLE"},
		},
		{
			name:     "bad listen address",
			env:      map[string]string{"KEPPEL_API_LISTEN_ADDRESS": "localhost"},
			wantKeys: []string{"api.listen_address", "KEPPEL_API_LISTEN_ADDRESS"},
		},
		{
			name:     "bad listen address in YAML",
			yaml:     "api:\n  listen_address: not-an-address\n",
			wantKeys: []string{"api.listen_address"},
		},
		{
			name:     "TLS cert without key",
			env:      map[string]string{"KEPPEL_API_TLS_CERT_FILE": "cert.pem"},
			wantKeys: []string{"api.tls_cert_file", "api.tls_key_file"},
		},
		{
			name:     "TLS key without cert",
			env:      map[string]string{"KEPPEL_API_TLS_KEY_FILE": "key.pem"},
			wantKeys: []string{"api.tls_cert_file", "api.tls_key_file"},
		},
		{
			name:     "public URL that is not http(s)",
			env:      map[string]string{"KEPPEL_API_PUBLIC_URL": "ftp://registry.example.com"},
			wantKeys: []string{"api.public_url", "KEPPEL_API_PUBLIC_URL"},
		},
		{
			name:     "public URL without host",
			env:      map[string]string{"KEPPEL_API_PUBLIC_URL": "registry.example.com"},
			wantKeys: []string{"api.public_url"},
		},
		{
			name:     "empty data dir",
			yaml:     "data_dir: \"\"\n",
			wantKeys: []string{"data_dir", "KEPPEL_DATA_DIR"},
		},
		{
			name: "both KEPPEL_DB_URL and KEPPEL_DB_HOSTNAME",
			env: map[string]string{
				"KEPPEL_DB_URL":      "postgres://db/keppel",
				"KEPPEL_DB_HOSTNAME": "db",
			},
			wantKeys: []string{"KEPPEL_DB_URL", "KEPPEL_DB_HOSTNAME"},
		},
		{
			name:     "non-postgres database URL",
			env:      map[string]string{"KEPPEL_DB_URL": "mysql://db/keppel"},
			wantKeys: []string{"database.url", "KEPPEL_DB_URL"},
		},
		{
			name:     "non-postgres database URL in YAML",
			yaml:     "database:\n  url: sqlite:///tmp/x.db\n",
			wantKeys: []string{"database.url"},
		},
		{
			name:     "unknown storage driver",
			env:      map[string]string{"KEPPEL_STORAGE_DRIVER": "s4"},
			wantKeys: []string{"storage.driver", "KEPPEL_STORAGE_DRIVER", "s4"},
		},
		{
			name:     "token lifetime too short",
			env:      map[string]string{"KEPPEL_AUTH_TOKEN_LIFETIME": "30s"},
			wantKeys: []string{"auth.token_lifetime", "KEPPEL_AUTH_TOKEN_LIFETIME"},
		},
		{
			name:     "token lifetime too long",
			yaml:     "auth:\n  token_lifetime: 25h\n",
			wantKeys: []string{"auth.token_lifetime"},
		},
		{
			name:     "negative token lifetime",
			env:      map[string]string{"KEPPEL_AUTH_TOKEN_LIFETIME": "-1h"},
			wantKeys: []string{"auth.token_lifetime"},
		},
		{
			name:     "bad log level",
			env:      map[string]string{"KEPPEL_LOG_LEVEL": "verbose"},
			wantKeys: []string{"log_level", "KEPPEL_LOG_LEVEL", "verbose"},
		},
		{
			name:     "bad log format",
			yaml:     "log_format: xml\n",
			wantKeys: []string{"log_format", "KEPPEL_LOG_FORMAT", "xml"},
		},
		{
			name:     "bad duration in env",
			env:      map[string]string{"KEPPEL_AUTH_TOKEN_LIFETIME": "1 hour"},
			wantKeys: []string{"KEPPEL_AUTH_TOKEN_LIFETIME"},
		},
		{
			name:     "bad upload age in env",
			env:      map[string]string{"KEPPEL_JANITOR_ABANDONED_UPLOAD_AGE": "soon"},
			wantKeys: []string{"KEPPEL_JANITOR_ABANDONED_UPLOAD_AGE"},
		},
		{
			name:     "bad boolean in env",
			env:      map[string]string{"KEPPEL_JANITOR_EMBEDDED": "maybe"},
			wantKeys: []string{"KEPPEL_JANITOR_EMBEDDED"},
		},
		{
			name:     "bad env value wins over good YAML",
			yaml:     "log_level: debug\n",
			env:      map[string]string{"KEPPEL_LOG_LEVEL": "loud"},
			wantKeys: []string{"log_level", "loud"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantLoadError(t, tc.yaml, tc.env, tc.wantKeys...)
		})
	}
}

// wantLoadError loads the YAML (none if "") with the environment and
// expects an error that mentions every one of wantKeys.
func wantLoadError(t *testing.T, yaml string, environment map[string]string, wantKeys ...string) {
	t.Helper()
	path := ""
	if yaml != "" {
		path = writeYAML(t, yaml)
	}
	_, err := config.Load(path, env(environment))
	if err == nil {
		t.Fatal("Load accepted an invalid configuration")
	}
	for _, key := range wantKeys {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not mention %q", err, key)
		}
	}
}

func TestPostgresURLFromSeparateVariables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{
			name: "hostname only",
			env:  map[string]string{"KEPPEL_DB_HOSTNAME": "db.example.com"},
			want: "postgres://db.example.com/keppel",
		},
		{
			name: "everything",
			env: map[string]string{
				"KEPPEL_DB_HOSTNAME":           "db.example.com",
				"KEPPEL_DB_PORT":               "5433",
				"KEPPEL_DB_USERNAME":           "keppel",
				"KEPPEL_DB_PASSWORD":           "secret",
				"KEPPEL_DB_NAME":               "registry",
				"KEPPEL_DB_CONNECTION_OPTIONS": "sslmode=disable&connect_timeout=10",
			},
			want: "postgres://keppel:secret@db.example.com:5433/registry?sslmode=disable&connect_timeout=10",
		},
		{
			name: "username without password",
			env: map[string]string{
				"KEPPEL_DB_HOSTNAME": "db",
				"KEPPEL_DB_USERNAME": "keppel",
			},
			want: "postgres://keppel@db/keppel",
		},
		{
			name: "password with special characters is escaped",
			env: map[string]string{
				"KEPPEL_DB_HOSTNAME": "db",
				"KEPPEL_DB_PORT":     "5432",
				"KEPPEL_DB_USERNAME": "keppel",
				"KEPPEL_DB_PASSWORD": "p@ss:w/rd?#% &x",
			},
			want: "postgres://keppel:p%40ss%3Aw%2Frd%3F%23%25%20&x@db:5432/keppel",
		},
		{
			name: "IPv6 host with port",
			env: map[string]string{
				"KEPPEL_DB_HOSTNAME": "::1",
				"KEPPEL_DB_PORT":     "5432",
			},
			want: "postgres://[::1]:5432/keppel",
		},
		{
			name: "IPv6 host without port",
			env:  map[string]string{"KEPPEL_DB_HOSTNAME": "::1"},
			want: "postgres://[::1]/keppel",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load("", env(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Database.URL != tc.want {
				t.Errorf("database URL = %q, want %q", cfg.Database.URL, tc.want)
			}
			// Whatever the spelling, the URL must decode to the inputs.
			u, err := url.Parse(cfg.Database.URL)
			if err != nil {
				t.Fatalf("database URL does not parse: %v", err)
			}
			if pw, _ := u.User.Password(); pw != tc.env["KEPPEL_DB_PASSWORD"] {
				t.Errorf("password decodes to %q, want %q", pw, tc.env["KEPPEL_DB_PASSWORD"])
			}
			if host := u.Hostname(); host != tc.env["KEPPEL_DB_HOSTNAME"] {
				t.Errorf("host decodes to %q, want %q", host, tc.env["KEPPEL_DB_HOSTNAME"])
			}
			if !cfg.UsesPostgres() {
				t.Error("UsesPostgres() = false for a configured PostgreSQL host")
			}
		})
	}
}

func TestPostgresURLFromYAML(t *testing.T) {
	t.Parallel()
	path := writeYAML(t, `
database:
  hostname: db
  username: keppel
  password: "a b"
  name: k
`)
	cfg, err := config.Load(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://keppel:a%20b@db/k"; cfg.Database.URL != want {
		t.Errorf("database URL = %q, want %q", cfg.Database.URL, want)
	}
}

func TestEnvironmentVariablesAreAllRead(t *testing.T) {
	t.Parallel()
	names := config.EnvironmentVariables()
	if len(names) == 0 {
		t.Fatal("no environment variables listed")
	}
	var read []string
	lookup := func(k string) (string, bool) {
		read = append(read, k)
		return "", false
	}
	if _, err := config.Load("", lookup); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range read {
		seen[k] = true
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "KEPPEL_") {
			t.Errorf("variable %s does not start with KEPPEL_", n)
		}
		if !seen[n] {
			t.Errorf("variable %s is listed but not read", n)
		}
	}
}
