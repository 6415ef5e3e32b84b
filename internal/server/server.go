// Package server is the composition root: it builds the metadata store,
// storage driver, auth, registry service and HTTP handlers from the
// configuration, and runs them until shut down. It is the only package that
// imports concrete drivers.
package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"keppel/internal/api/keppelv1"
	"keppel/internal/api/middleware"
	ociapi "keppel/internal/api/oci"
	"keppel/internal/audit"
	"keppel/internal/auth"
	"keppel/internal/auth/builtin"
	"keppel/internal/auth/oidc"
	"keppel/internal/config"
	"keppel/internal/db"
	"keppel/internal/federation"
	"keppel/internal/janitor"
	"keppel/internal/models"
	"keppel/internal/peering"
	"keppel/internal/policy"
	"keppel/internal/registry"
	"keppel/internal/secretbox"
	"keppel/internal/storage"
	"keppel/internal/storage/fs"
	"keppel/internal/storage/memory"
	"keppel/internal/storage/migration"
	"keppel/internal/storage/s3"
	"keppel/internal/storage/swift"
)

// Server is a fully built registry.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	store   db.Store
	handler http.Handler
	// ops serves /metrics and /healthcheck.
	ops      http.Handler
	janitor  *janitor.Janitor
	recorder *audit.Recorder
	svc      *registry.Service
	// stopCache stops what keeps the metadata cache current.
	stopCache func()
	// stopCopies stops the writer of manifest copies.
	stopCopies func()
	// closeLimiter closes the rate limiter's Redis connections.
	closeLimiter func()
	// closeFed closes the federation driver's connections.
	closeFed func()
	// peering exchanges service passwords with the peers (nil if none).
	peering *peering.Service
	// AdminPasswordGenerated is the admin password created on this start
	// ("" if the admin existed or the password was configured).
	AdminPasswordGenerated string
}

// Build constructs the server from the configuration.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	store, stopCache, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	s, err := build(ctx, cfg, log, store)
	if err != nil {
		stopCache()
		store.Close()
		return nil, err
	}
	s.stopCache = stopCache
	return s, nil
}

func build(ctx context.Context, cfg config.Config, log *slog.Logger, store db.Store) (*Server, error) {
	driver, err := openStorage(ctx, cfg.Storage)
	if err != nil {
		return nil, err
	}
	key, err := auth.LoadOrCreateKey(cfg.Auth.IssuerKeyFile, true)
	if err != nil {
		return nil, err
	}
	var previous ed25519.PrivateKey
	if cfg.Auth.PreviousIssuerKeyFile != "" {
		previous, err = auth.LoadOrCreateKey(cfg.Auth.PreviousIssuerKeyFile, false)
		if err != nil {
			return nil, err
		}
	}
	publicURL, err := url.Parse(cfg.API.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("parsing public URL: %w", err)
	}
	tokens := auth.NewTokenService(publicURL.Host, cfg.Auth.TokenLifetime, key, previous, time.Now)
	if cfg.API.AnycastURL != "" {
		anycast, err := url.Parse(cfg.API.AnycastURL)
		if err != nil {
			return nil, fmt.Errorf("parsing anycast URL: %w", err)
		}
		tokens.AcceptService(anycast.Host)
	}
	generated, err := builtin.EnsureAdmin(ctx, store, cfg.Auth.AdminPassword, time.Now())
	if err != nil {
		return nil, fmt.Errorf("setting up the admin user: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := middleware.NewMetrics(reg)

	clientIPs, err := middleware.NewClientIPResolver(cfg.API.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("api.trusted_proxies (KEPPEL_API_TRUSTED_PROXIES): %w", err)
	}
	authz := &auth.Authorizer{
		Accounts: func(ctx context.Context, name string) (models.Account, error) {
			a, err := store.GetAccount(ctx, name)
			if errors.Is(err, db.ErrNotFound) {
				return a, auth.ErrAccountNotFound
			}
			return a, err
		},
		RBAC: evaluateRBAC,
	}
	var auditOpts []audit.Option
	if cfg.Audit.WebhookURL != "" {
		auditOpts = append(auditOpts, audit.WithWebhook(cfg.Audit.WebhookURL, 1000, 10*time.Second))
	}
	recorder := audit.New(store, log.With("component", "audit"), auditOpts...)

	secretsKey, err := secretbox.LoadOrCreateKey(cfg.Auth.SecretsKeyFile, true)
	if err != nil {
		return nil, fmt.Errorf("auth.secrets_key_file (KEPPEL_SECRETS_KEY_FILE): %w", err)
	}
	secrets, err := secretbox.New(secretsKey)
	if err != nil {
		return nil, fmt.Errorf("auth.secrets_key_file (KEPPEL_SECRETS_KEY_FILE): %w", err)
	}
	fed, closeFed, err := openFederation(ctx, cfg.Federation, publicURL.Host)
	if err != nil {
		return nil, err
	}
	peers, err := openPeering(cfg.Federation, store, publicURL.Host, secrets, log)
	if err != nil {
		return nil, fmt.Errorf("federation.peers (KEPPEL_PEERS): %w", err)
	}
	replication := registry.ReplicationSettings{TagLifetime: cfg.Replication.TagLifetime, SpoolDir: cfg.Replication.SpoolDir}
	if peers != nil {
		replication.Peers = peers
	}
	svc := registry.New(store, driver, registry.WithLogger(log), registry.WithSecrets(secrets), registry.WithDefaultQuota(models.Quota{
		ManifestCount: cfg.Quota.DefaultManifests, SizeBytes: cfg.Quota.DefaultBytes,
	}), registry.WithFederation(fed), registry.WithReplication(replication))
	if cfg.Federation.Driver == "postgres" {
		conflicts, err := svc.RecordAccountClaims(ctx)
		if err != nil {
			closeFed()
			return nil, fmt.Errorf("federation: %w", err)
		}
		for _, name := range conflicts {
			log.Warn("another registry of the federation holds the name of this account", "account", name)
		}
	}
	scanner, err := openScanner(cfg.Scan, cfg.API.PublicURL, tokens, log)
	if err != nil {
		return nil, err
	}
	limits, closeLimiter, err := rateLimits(cfg.RateLimits)
	if err != nil {
		return nil, err
	}
	v2 := ociapi.New(ociapi.Deps{Service: svc, Tokens: tokens, Authz: authz, ClientIP: clientIPs.ClientIP,
		Metrics: metrics, Recorder: recorder, Log: log, PublicURL: cfg.API.PublicURL, Limits: limits,
		BlobRedirectTTL: blobRedirectTTL(cfg), AnycastURL: cfg.API.AnycastURL, Scanning: scanner != nil})
	credentials, err := credentialDriver(ctx, cfg, store, peers)
	if err != nil {
		return nil, err
	}
	v1 := keppelv1.New(keppelv1.Deps{
		Accounts: svc, Repos: svc, Quotas: svc, Audit: store, Recorder: recorder,
		Tokens: tokens, Driver: credentials, DriverName: cfg.Auth.Driver, Authz: authz,
		ClientIP: clientIPs.ClientIP, Log: log, Peering: peeringAPI(peers), Replication: svc,
		Scans: scanAPI(scanner, svc), ScanPolicies: svc,
	})

	ops := http.NewServeMux()
	mux := http.NewServeMux()
	v1Wrapped := middleware.Wrap(v1, log, metrics, keppelv1.RouteName)
	mux.Handle("/keppel/v1/", v1Wrapped)
	// Without this, the ServeMux would redirect GET /keppel/v1 to /keppel/v1/.
	mux.Handle("/keppel/v1", v1Wrapped)
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ops.HandleFunc("GET /healthcheck", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := store.Ping(ctx); err != nil {
			log.Error("healthcheck failed", "error", err)
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})

	mux.Handle("GET /metrics", ops)
	mux.Handle("GET /healthcheck", ops)

	// /v2/ bypasses the ServeMux, which would answer paths with ".." or "//"
	// with a redirect; the OCI handler rejects them with NAME_INVALID.
	v2Wrapped := middleware.Wrap(v2, log, metrics, ociapi.RouteName)
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
			v2Wrapped.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	routed := hostRouting(root, cfg, publicURL.Host, store, fed, peers, log)
	s := &Server{cfg: cfg, log: log, store: store, svc: svc, ops: ops, stopCopies: svc.StartManifestCopies(), closeLimiter: closeLimiter, closeFed: closeFed}
	jan := janitor.New(svc, janitor.Config{
		AbandonedUploadAge:           cfg.Janitor.AbandonedUploadAge,
		GCGracePeriod:                cfg.Janitor.GCGracePeriod,
		GCSweepInterval:              cfg.Janitor.GCSweepInterval,
		StorageSweepInterval:         cfg.Janitor.StorageSweepInterval,
		ReplicaSyncInterval:          cfg.Janitor.ReplicaSyncInterval,
		Scan:                         scanSettings(cfg.Scan, scanner),
		BlobRehashInterval:           cfg.Janitor.BlobRehashInterval,
		ManifestRevalidationInterval: cfg.Janitor.ManifestRevalidationInterval,
		PollInterval:                 cfg.Janitor.PollInterval,
		GCPolicies: registry.GCPolicySettings{Interval: cfg.Janitor.GCPolicyInterval,
			RecentPushProtection: cfg.Janitor.GCRecentPushProtection, DryRun: cfg.Janitor.GCPoliciesDryRun},
		Registerer:          reg,
		ManagedAccountsFile: cfg.Janitor.ManagedAccountsFile,
		Jobs:                peeringJobs(peers),
	}, log.With("component", "janitor"))
	s.handler, s.janitor, s.recorder, s.AdminPasswordGenerated = routed, jan, recorder, generated
	s.peering = peers
	return s, nil
}

// credentialDriver builds the configured credential driver. The built-in
// user store comes first, so that the admin and local users (and their
// API keys) work whatever else is configured; only the peers (if any) come
// before it, so that a wrong password of a peer's name is refused before
// any other driver sees it.
func credentialDriver(ctx context.Context, cfg config.Config, store db.Store, peers *peering.Service) (auth.Driver, error) {
	var local auth.Driver = builtin.New(store)
	if peers != nil {
		local = auth.Chain{peers, local}
	}
	if cfg.Auth.Driver != "oidc" {
		return local, nil
	}
	oc := oidc.Config{
		IssuerURL: cfg.Auth.OIDC.IssuerURL, ClientID: cfg.Auth.OIDC.ClientID, ClientSecret: cfg.Auth.OIDC.ClientSecret,
		UsernameClaim: cfg.Auth.OIDC.UsernameClaim, Scopes: cfg.Auth.OIDC.Scopes,
		AdminClaim: cfg.Auth.OIDC.AdminClaim, AdminValue: cfg.Auth.OIDC.AdminValue,
	}
	for _, m := range cfg.Auth.OIDC.RoleMappings {
		oc.RoleMappings = append(oc.RoleMappings, oidc.RoleMapping{Claim: m.Claim, Value: m.Value, AuthTenantID: m.AuthTenantID, Role: models.Role(m.Role)})
	}
	remote, err := oidc.New(ctx, oc)
	if err != nil {
		return nil, fmt.Errorf("auth.oidc: %w", err)
	}
	return auth.Chain{local, remote}, nil
}

// openStorage opens the configured storage driver; with migrate_from, one
// that moves the content from the old storage to it.
func openStorage(ctx context.Context, cfg config.Storage) (storage.Driver, error) {
	d, err := openStorageDriver(ctx, cfg)
	if err != nil || cfg.MigrateFrom == nil {
		return d, err
	}
	from, err := openStorageDriver(ctx, *cfg.MigrateFrom)
	if err != nil {
		return nil, fmt.Errorf("storage.migrate_from: %w", err)
	}
	return migration.New(d, from), nil
}

func openStorageDriver(ctx context.Context, cfg config.Storage) (storage.Driver, error) {
	switch cfg.Driver {
	case "s3":
		c := cfg.S3
		d, err := s3.New(ctx, s3.Config{
			Endpoint: c.Endpoint, Region: c.Region, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
			PathStyle: c.PathStyle, Bucket: c.Bucket, KeyPrefix: c.KeyPrefix, BucketPrefix: c.BucketPrefix, PartSize: c.PartSize,
		})
		if err != nil {
			return nil, err
		}
		return d, checkStorage(ctx, d)
	case "swift":
		c := cfg.Swift
		d, err := swift.New(swift.Config{
			AuthURL: c.AuthURL, UserName: c.UserName, Password: c.Password,
			UserDomain: c.UserDomainName, Project: c.ProjectName, ProjectDomain: c.ProjectDomainName,
			Region: c.RegionName, ContainerPrefix: c.ContainerPrefix, TempURLKey: c.TempURLKey,
		})
		if err != nil {
			return nil, err
		}
		return d, checkStorage(ctx, d)
	case "memory":
		return memory.New(), nil
	case "filesystem":
		d, err := fs.New(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("opening filesystem storage: %w", err)
		}
		return d, nil
	default:
		return nil, fmt.Errorf("unknown storage driver %q", cfg.Driver)
	}
}

// openFederation opens the federation driver; self is this registry's
// public host name, under which the other registries know it.
func openFederation(ctx context.Context, cfg config.Federation, self string) (federation.Driver, func(), error) {
	if cfg.Driver != "postgres" {
		return federation.Trivial{}, nil, nil
	}
	p, err := federation.NewPostgres(ctx, cfg.PostgresURL, self)
	if err != nil {
		return nil, nil, fmt.Errorf("federation.postgres_url (KEPPEL_FEDERATION_POSTGRES_URL): %w", err)
	}
	return p, func() { _ = p.Close() }, nil
}

// checkStorage tries a remote storage's connection and credentials at
// start, so that a wrong setting shows at once.
func checkStorage(ctx context.Context, d interface{ Check(context.Context) error }) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return d.Check(ctx)
}

// blobRedirectTTL is how long the presigned URLs of blob redirects are
// valid (0: no redirects).
func blobRedirectTTL(cfg config.Config) time.Duration {
	switch {
	case cfg.Storage.Driver == "s3" && cfg.Storage.S3.RedirectBlobGets:
		return cfg.Storage.S3.PresignTTL
	case cfg.Storage.Driver == "swift" && cfg.Storage.Swift.RedirectBlobGets:
		return cfg.Storage.Swift.PresignTTL
	}
	return 0
}

// Store returns the metadata store (for tests and maintenance commands).
func (s *Server) Store() db.Store { return s.store }

// Handler returns the server's HTTP handler (for in-process tests).
func (s *Server) Handler() http.Handler { return s.handler }

// Close releases the server's resources.
func (s *Server) Close() error {
	s.recorder.Close()
	if s.stopCopies != nil {
		s.stopCopies()
	}
	if s.closeLimiter != nil {
		s.closeLimiter()
	}
	if s.closeFed != nil {
		s.closeFed()
	}
	if s.stopCache != nil {
		s.stopCache()
	}
	return s.store.Close()
}

// evaluateRBAC applies an account's RBAC policies to a request.
func evaluateRBAC(a models.Account, repoName, username string, remoteIP net.IP) (auth.RBACDecision, error) {
	d := auth.RBACDecision{Granted: map[string]bool{}, Forbidden: map[string]bool{}}
	if a.RBACPoliciesJSON == "" {
		return d, nil
	}
	policies, err := policy.ParseRBACPolicies(a.RBACPoliciesJSON)
	if err != nil {
		return d, err
	}
	granted, forbidden := policy.EvaluateRBAC(policies, policy.RBACRequest{RepoName: repoName, Username: username, RemoteIP: remoteIP})
	for _, p := range granted.List() {
		d.Granted[string(p)] = true
	}
	for _, p := range forbidden.List() {
		d.Forbidden[string(p)] = true
	}
	return d, nil
}

// RunJanitor runs the background jobs until ctx is cancelled. With
// janitor.listen_address, it serves /metrics and /healthcheck there
// meanwhile.
func (s *Server) RunJanitor(ctx context.Context) error {
	if addr := s.cfg.Janitor.ListenAddress; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("janitor.listen_address: listening on %s: %w", addr, err)
		}
		srv := &http.Server{Handler: s.ops, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	s.janitor.Run(ctx)
	return nil
}

// pullFlushInterval is how often pulls are written to the metadata store.
const pullFlushInterval = 10 * time.Second

// FlushPulls writes the pulls remembered in memory to the metadata store.
func (s *Server) FlushPulls(ctx context.Context) error { return s.svc.FlushPulls(ctx) }

func (s *Server) flushPullsPeriodically(ctx context.Context) {
	t := time.NewTicker(pullFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// one last flush, so that a clean shutdown loses nothing
			flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.svc.FlushPulls(flushCtx); err != nil {
				s.log.Warn("cannot record pulls at shutdown", "error", err)
			}
			return
		case <-t.C:
			if err := s.svc.FlushPulls(ctx); err != nil {
				s.log.Warn("cannot record pulls", "error", err)
			}
		}
	}
}

// Run serves HTTP until ctx is cancelled, then shuts down gracefully. In
// embedded mode (janitor.embedded, the default) it runs the background jobs
// too. ready, if not nil, is called with the bound address once listening.
func (s *Server) Run(ctx context.Context, ready func(addr net.Addr)) error {
	flushCtx, stopFlush := context.WithCancel(context.Background())
	flushDone := make(chan struct{})
	go func() {
		s.flushPullsPeriodically(flushCtx)
		close(flushDone)
	}()
	defer func() {
		stopFlush()
		<-flushDone
	}()
	if *s.cfg.Janitor.Embedded {
		janitorCtx, stopJanitor := context.WithCancel(ctx)
		janitorDone := make(chan struct{})
		go func() {
			s.janitor.Run(janitorCtx)
			close(janitorDone)
		}()
		defer func() {
			stopJanitor()
			<-janitorDone
		}()
	}
	ln, err := net.Listen("tcp", s.cfg.API.ListenAddress)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.API.ListenAddress, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.cfg.API.PprofListenAddress != "" {
		go s.runPprof(ctx)
	}
	errs := make(chan error, 1)
	go func() {
		if s.cfg.API.TLSCert != "" {
			errs <- srv.ServeTLS(ln, s.cfg.API.TLSCert, s.cfg.API.TLSKey)
		} else {
			errs <- srv.Serve(ln)
		}
	}()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errs:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errs; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	return nil
}

func (s *Server) runPprof(ctx context.Context) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: s.cfg.API.PprofListenAddress, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("pprof listener failed", "error", err)
	}
}

// NewLogger builds the logger that the configuration asks for.
func NewLogger(cfg config.Config) *slog.Logger {
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[strings.ToLower(cfg.LogLevel)]
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
