// Package janitor runs the registry's background jobs. Each job is a loop:
// it does one batch of work, runs again at once while there is more, and
// otherwise sleeps for its interval with jitter, so that several janitor
// processes spread out. Jobs are safe to run in any number of processes at
// once: every step they take is conditional on the state it found.
package janitor

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keppel/internal/registry"
)

// Job is one kind of background work.
type Job struct {
	Name string
	// Interval is the pause after a run that found nothing to do.
	Interval time.Duration
	// Run does one batch of work and reports whether it did anything (then
	// it runs again right away).
	Run func(ctx context.Context) (didWork bool, err error)
}

// Janitor runs a set of jobs.
type Janitor struct {
	jobs                []Job
	log                 *slog.Logger
	tasks               *prometheus.CounterVec
	validations         *prometheus.CounterVec
	manifestValidations *prometheus.CounterVec
	scans               *prometheus.CounterVec
}

// Config holds the settings of the jobs.
type Config struct {
	// AbandonedUploadAge is how long an upload may stay untouched.
	AbandonedUploadAge time.Duration
	// ManagedAccountsFile, if set, declares accounts that are reconciled
	// every ManagedAccountsInterval (PollInterval if zero).
	ManagedAccountsFile     string
	ManagedAccountsInterval time.Duration
	// GCGracePeriod and GCSweepInterval configure the blob-mount and blob
	// sweeps (registry.DefaultGCGracePeriod and DefaultGCSweepInterval if
	// zero).
	GCGracePeriod   time.Duration
	GCSweepInterval time.Duration
	// StorageSweepInterval is how often each account's storage is compared
	// with the database (registry.DefaultStorageSweepInterval if zero).
	StorageSweepInterval time.Duration
	// BlobRehashInterval is how often each blob's content is re-hashed
	// (registry.DefaultBlobRehashInterval if zero).
	BlobRehashInterval time.Duration
	// PollInterval is how long the jobs that look for work (abandoned
	// uploads, account deletion, missing manifest copies) wait when they
	// found none (DefaultPollInterval if zero).
	PollInterval time.Duration
	// ManifestRevalidationInterval is how often each manifest is checked
	// again (registry.DefaultManifestRevalidationInterval if zero).
	ManifestRevalidationInterval time.Duration
	// GCPolicies configures the application of GC policies (defaults from
	// registry.DefaultGCPolicyInterval and DefaultGCRecentPushProtection
	// for zero durations).
	GCPolicies registry.GCPolicySettings
	// Scan configures vulnerability scanning (no job without a scanner).
	Scan registry.ScanSettings
	// ReplicaSyncInterval is how often each repository of a replica
	// account is compared with its upstream
	// (registry.DefaultReplicaSyncInterval if zero).
	ReplicaSyncInterval time.Duration
	// Registerer, if set, gets the metrics keppel_janitor_tasks_total,
	// keppel_blob_validations_total and keppel_manifest_validations_total.
	Registerer prometheus.Registerer
	// Jobs are run besides the registry's own (e.g. the rotation of the
	// passwords of peers).
	Jobs []Job
}

// pollInterval is how long a sweep job waits when nothing was due: a fifth
// of the sweep interval, between 100 ms and a minute.
func pollInterval(sweep time.Duration) time.Duration {
	return min(max(sweep/5, 100*time.Millisecond), time.Minute)
}

// DefaultPollInterval is how long the jobs that look for work wait when
// they found none.
const DefaultPollInterval = 30 * time.Second

// batchSize is how many items a job handles per run.
const batchSize = 100

// New returns a janitor with the registry's jobs.
func New(svc *registry.Service, cfg Config, log *slog.Logger) *Janitor {
	if cfg.GCGracePeriod <= 0 {
		cfg.GCGracePeriod = registry.DefaultGCGracePeriod
	}
	if cfg.GCSweepInterval <= 0 {
		cfg.GCSweepInterval = registry.DefaultGCSweepInterval
	}
	if cfg.StorageSweepInterval <= 0 {
		cfg.StorageSweepInterval = registry.DefaultStorageSweepInterval
	}
	if cfg.BlobRehashInterval <= 0 {
		cfg.BlobRehashInterval = registry.DefaultBlobRehashInterval
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.ManifestRevalidationInterval <= 0 {
		cfg.ManifestRevalidationInterval = registry.DefaultManifestRevalidationInterval
	}
	if cfg.GCPolicies.Interval <= 0 {
		cfg.GCPolicies.Interval = registry.DefaultGCPolicyInterval
	}
	if cfg.GCPolicies.RecentPushProtection <= 0 {
		cfg.GCPolicies.RecentPushProtection = registry.DefaultGCRecentPushProtection
	}
	if cfg.ReplicaSyncInterval <= 0 {
		cfg.ReplicaSyncInterval = registry.DefaultReplicaSyncInterval
	}
	j := &Janitor{log: log}
	j.jobs = []Job{
		{
			Name:     "replica-sync",
			Interval: pollInterval(cfg.ReplicaSyncInterval),
			Run: func(ctx context.Context) (bool, error) {
				res, claimed, err := svc.SyncNextReplica(ctx, cfg.ReplicaSyncInterval)
				if res.TagsMoved+res.TagsDeleted+res.ManifestsDeleted > 0 {
					log.Info("replica follows its upstream", "repository", res.Repository, "tags_moved", res.TagsMoved,
						"tags_deleted", res.TagsDeleted, "manifests_deleted", res.ManifestsDeleted)
				}
				return claimed && err == nil, err
			},
		},
		{
			Name:     "gc-policies",
			Interval: pollInterval(cfg.GCPolicies.Interval),
			Run: func(ctx context.Context) (bool, error) {
				res, claimed, err := svc.ApplyGCPolicies(ctx, cfg.GCPolicies)
				if len(res.Deleted) > 0 {
					log.Info("GC policies deleted manifests", "repository", res.Repository.FullName(),
						"count", len(res.Deleted), "dry_run", cfg.GCPolicies.DryRun)
				}
				return claimed && err == nil, err
			},
		},
		{
			Name:     "manifest-revalidation",
			Interval: pollInterval(cfg.ManifestRevalidationInterval),
			Run: func(ctx context.Context) (bool, error) {
				res, claimed, err := svc.RevalidateNextManifest(ctx, cfg.ManifestRevalidationInterval)
				if claimed && err == nil && j.manifestValidations != nil {
					result := "ok"
					switch {
					case res.Error != "":
						result = "invalid"
					case res.CopyRepaired:
						result = "copy_repaired"
					}
					j.manifestValidations.WithLabelValues(result).Inc()
				}
				return claimed && err == nil, err
			},
		},
		{
			Name:     "blob-rehash",
			Interval: pollInterval(cfg.BlobRehashInterval),
			Run: func(ctx context.Context) (bool, error) {
				res, claimed, err := svc.RehashNextBlob(ctx, cfg.BlobRehashInterval)
				if claimed && err == nil && j.validations != nil {
					result := "ok"
					if res.Error != "" {
						result = "corrupt"
					}
					j.validations.WithLabelValues(result).Inc()
				}
				return claimed && err == nil, err
			},
		},
		{
			Name:     "blob-mount-sweep",
			Interval: pollInterval(cfg.GCSweepInterval),
			Run: func(ctx context.Context) (bool, error) {
				res, claimed, err := svc.SweepBlobMounts(ctx, cfg.GCGracePeriod, cfg.GCSweepInterval)
				if res.Deleted > 0 {
					log.Info("deleted unreferenced blob mounts", "repository_id", res.RepositoryID, "count", res.Deleted)
				}
				return claimed && err == nil, err
			},
		},
		{
			Name:     "storage-sweep",
			Interval: pollInterval(cfg.StorageSweepInterval),
			Run: func(ctx context.Context) (bool, error) {
				res, claimed, err := svc.SweepStorage(ctx, cfg.GCGracePeriod, cfg.StorageSweepInterval)
				if len(res.Deleted) > 0 {
					log.Info("deleted objects unknown to the database from the storage",
						"account", res.Account.AccountName, "count", len(res.Deleted))
				}
				if res.Migrated > 0 {
					log.Info("moved content to the new storage backend", "account", res.Account.AccountName,
						"moved", res.Migrated, "remaining", res.PendingMigration)
				}
				return claimed && err == nil, err
			},
		},
		{
			Name:     "blob-sweep",
			Interval: pollInterval(cfg.GCSweepInterval),
			Run: func(ctx context.Context) (bool, error) {
				res, claimed, err := svc.SweepBlobs(ctx, cfg.GCGracePeriod, cfg.GCSweepInterval)
				if len(res.Deleted) > 0 {
					log.Info("deleted unmounted blobs", "account", res.Account.AccountName, "count", len(res.Deleted))
				}
				return claimed && err == nil, err
			},
		},
		{
			Name:     "abandoned-upload-cleanup",
			Interval: cfg.PollInterval,
			Run: func(ctx context.Context) (bool, error) {
				n, err := svc.CleanAbandonedUploads(ctx, cfg.AbandonedUploadAge, batchSize)
				if n > 0 {
					log.Info("removed abandoned uploads", "count", n)
				}
				return n == batchSize, err
			},
		},
		{
			Name:     "manifest-copies",
			Interval: cfg.PollInterval,
			Run: func(ctx context.Context) (bool, error) {
				// Younger manifests are the background writer's.
				n, err := svc.StoreMissingManifestCopies(ctx, time.Minute, batchSize)
				if n > 0 {
					log.Info("wrote missing manifest copies to the storage", "count", n)
				}
				return n == batchSize, err
			},
		},
		{
			Name:     "account-deletion",
			Interval: cfg.PollInterval,
			Run: func(ctx context.Context) (bool, error) {
				accounts, err := svc.AccountsToDelete(ctx)
				if err != nil || len(accounts) == 0 {
					return false, err
				}
				a := accounts[rand.IntN(len(accounts))]
				done, progressed, err := svc.DeleteAccountStep(ctx, a.Name)
				if done {
					log.Info("account deleted", "account", a.Name, "auth_tenant_id", a.AuthTenantID)
				}
				return progressed && err == nil, err
			},
		},
	}
	if cfg.ManagedAccountsFile != "" {
		r := &Reconciler{svc: svc, path: cfg.ManagedAccountsFile}
		interval := cfg.ManagedAccountsInterval
		if interval <= 0 {
			interval = cfg.PollInterval
		}
		j.jobs = append(j.jobs, Job{
			Name:     "managed-accounts",
			Interval: interval,
			Run: func(ctx context.Context) (bool, error) {
				n, err := r.Reconcile(ctx)
				if n > 0 {
					log.Info("reconciled managed accounts", "changes", n)
				}
				return false, err
			},
		})
	}
	if cfg.Scan.Scanner != nil {
		j.jobs = append(j.jobs, Job{
			Name:     "vulnerability-scan",
			Interval: min(cfg.PollInterval, 10*time.Second),
			Run: func(ctx context.Context) (bool, error) {
				res, err := svc.ScanNextManifests(ctx, cfg.Scan)
				for status, n := range res.Statuses {
					if j.scans != nil {
						j.scans.WithLabelValues(string(status)).Add(float64(n))
					}
				}
				return res.Scanned > 0 && err == nil, err
			},
		})
	}
	j.jobs = append(j.jobs, cfg.Jobs...)
	if cfg.Registerer != nil {
		j.tasks = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keppel_janitor_tasks_total",
			Help: "Runs of janitor jobs by outcome: done (did work), idle (nothing was due) or error.",
		}, []string{"job", "outcome"})
		j.validations = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keppel_blob_validations_total",
			Help: "Re-hashes of blob content by result: ok, or corrupt (the content does not match the digest, or is missing).",
		}, []string{"result"})
		j.manifestValidations = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keppel_manifest_validations_total",
			Help: "Re-validations of stored manifests by result: ok, invalid (the content does not check out) or copy_repaired (the storage copy was written again).",
		}, []string{"result"})
		j.scans = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keppel_vulnerability_scans_total",
			Help: "Vulnerability scans of manifests by resulting status.",
		}, []string{"status"})
		cfg.Registerer.MustRegister(j.tasks, j.validations, j.manifestValidations, j.scans)
	}
	return j
}

// Jobs returns the janitor's jobs (for tests and status output).
func (j *Janitor) Jobs() []Job { return j.jobs }

// Run runs every job until ctx is cancelled.
func (j *Janitor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, job := range j.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.loop(ctx, job)
		}()
	}
	wg.Wait()
}

func (j *Janitor) loop(ctx context.Context, job Job) {
	// Start at a random point of the first interval, so that processes
	// started together do not run in lockstep.
	wait := jitter(job.Interval) / 2
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		didWork, err := job.Run(ctx)
		outcome := "idle"
		switch {
		case err != nil && ctx.Err() == nil:
			j.log.Error("janitor job failed", "job", job.Name, "error", err)
			wait = jitter(job.Interval)
			outcome = "error"
		case didWork:
			wait = 0
			outcome = "done"
		default:
			wait = jitter(job.Interval)
		}
		if j.tasks != nil && ctx.Err() == nil {
			j.tasks.WithLabelValues(job.Name, outcome).Inc()
		}
	}
}

// jitter returns d ± 10 %.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}
