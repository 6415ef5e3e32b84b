// Package healthmonitor checks a registry end to end, as its users see it:
// at every interval it pushes a tiny random image (one small layer, a
// config and a manifest), pulls it back, verifies every digest, deletes it
// again, and exports the outcome as Prometheus metrics
// (`keppel server healthmonitor`).
package healthmonitor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults of Config.
const (
	DefaultInterval   = 30 * time.Second
	DefaultRepository = "healthmonitor/check"
	// layerSize is the size of the random layer of each check.
	layerSize = 1024
)

// ErrInvalidConfig is returned by New for a configuration it cannot use.
var ErrInvalidConfig = errors.New("invalid health monitor configuration")

// ErrDigestMismatch is the failure of a check whose pulled content does not
// match what was pushed.
var ErrDigestMismatch = errors.New("pulled content does not match the pushed digest")

// Config configures a Monitor.
type Config struct {
	// Registry is the registry's base URL, e.g. https://registry.example.com
	// (plain HTTP if the scheme says so).
	Registry string
	// Repository is the repository to push to, "<account>/<name>"
	// (DefaultRepository if empty). The account must exist.
	Repository string
	// Username and Password authenticate (anonymous if both are empty).
	Username, Password string
	// Interval is the time between checks (DefaultInterval if zero).
	Interval time.Duration
	// Timeout bounds one check (Interval if zero).
	Timeout time.Duration
	// Log receives the failures of checks (slog.Default() if nil).
	Log *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Transport makes the HTTP requests (http.DefaultTransport if nil).
	Transport http.RoundTripper
}

// Monitor runs the checks and holds their metrics.
type Monitor struct {
	cfg      Config
	repo     name.Repository
	registry *prometheus.Registry

	result      prometheus.Gauge
	lastSuccess prometheus.Gauge
	duration    prometheus.Histogram
	checks      *prometheus.CounterVec

	mu sync.Mutex
	// previous is the image of the last successful check, deleted after
	// the next one.
	previous *name.Digest
}

// New builds a monitor; it checks nothing yet.
func New(cfg Config) (*Monitor, error) {
	if cfg.Repository == "" {
		cfg.Repository = DefaultRepository
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Interval < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative interval or timeout", ErrInvalidConfig)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = cfg.Interval
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	u, err := url.Parse(cfg.Registry)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("%w: registry %q is not a URL like https://registry.example.com", ErrInvalidConfig, cfg.Registry)
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	if !strings.Contains(cfg.Repository, "/") {
		return nil, fmt.Errorf("%w: repository %q is not <account>/<name>", ErrInvalidConfig, cfg.Repository)
	}
	repo, err := name.NewRepository(u.Host+"/"+cfg.Repository, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: repository %q: %w", ErrInvalidConfig, cfg.Repository, err)
	}

	m := &Monitor{cfg: cfg, repo: repo, registry: prometheus.NewRegistry(),
		result: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keppel_healthmonitor_result",
			Help: "1 if the last check (push, pull and verify an image) succeeded, 0 if it failed."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keppel_healthmonitor_last_success_timestamp_seconds",
			Help: "When the last successful check ended (Unix time; 0 if none yet)."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keppel_healthmonitor_duration_seconds",
			Help: "How long checks took, successful or not.", Buckets: prometheus.DefBuckets}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keppel_healthmonitor_checks_total",
			Help: "Checks done, by result (success or failure)."}, []string{"result"}),
	}
	m.checks.WithLabelValues("success")
	m.checks.WithLabelValues("failure")
	m.registry.MustRegister(m.result, m.lastSuccess, m.duration, m.checks)
	return m, nil
}

// Handler serves the metrics in the Prometheus format.
func (m *Monitor) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Run checks at once and then every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	ticker := time.NewTicker(m.cfg.Interval)
	defer ticker.Stop()
	for {
		_ = m.Check(ctx) // recorded and logged by Check
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Check runs one check, records its outcome in the metrics, logs a
// failure, and returns it.
func (m *Monitor) Check(ctx context.Context) error {
	start := m.cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	err := m.pushAndPull(ctx)
	end := m.cfg.Now()
	m.duration.Observe(end.Sub(start).Seconds())
	if err != nil {
		m.result.Set(0)
		m.checks.WithLabelValues("failure").Inc()
		m.cfg.Log.Error("health check failed", "registry", m.cfg.Registry, "repository", m.cfg.Repository, "error", err)
		return err
	}
	m.result.Set(1)
	m.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	m.checks.WithLabelValues("success").Inc()
	return nil
}

// pushAndPull pushes a random image, pulls it back by digest, verifies it,
// and deletes the image of the check before.
func (m *Monitor) pushAndPull(ctx context.Context) error {
	img, err := random.Image(layerSize, 1)
	if err != nil {
		return fmt.Errorf("making a random image: %w", err)
	}
	want, err := img.Digest()
	if err != nil {
		return fmt.Errorf("making a random image: %w", err)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(m.cfg.Transport)}
	if m.cfg.Username != "" || m.cfg.Password != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: m.cfg.Username, Password: m.cfg.Password}))
	}
	tag := m.repo.Tag("latest")
	if err := remote.Write(tag, img, opts...); err != nil {
		return fmt.Errorf("pushing %s: %w", tag, err)
	}
	ref := m.repo.Digest(want.String())
	if err := verify(ref, want, opts); err != nil {
		return err
	}
	m.mu.Lock()
	previous := m.previous
	m.previous = &ref
	m.mu.Unlock()
	if previous != nil && previous.DigestStr() != ref.DigestStr() {
		if err := remote.Delete(*previous, opts...); err != nil {
			// The check itself succeeded; the repository keeps one
			// more image.
			m.cfg.Log.Warn("cannot delete the image of the previous health check", "image", previous.String(), "error", err)
		}
	}
	return nil
}

// verify pulls the image by digest and checks the digests of its manifest,
// config and layers against their content.
func verify(ref name.Digest, want v1.Hash, opts []remote.Option) error {
	pulled, err := remote.Image(ref, opts...)
	if err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	manifest, err := pulled.RawManifest()
	if err != nil {
		return fmt.Errorf("pulling the manifest of %s: %w", ref, err)
	}
	if got := sha256Of(manifest); got != want.Hex {
		return fmt.Errorf("%w: manifest sha256:%s, want %s", ErrDigestMismatch, got, want)
	}
	cfg, err := pulled.RawConfigFile()
	if err != nil {
		return fmt.Errorf("pulling the config of %s: %w", ref, err)
	}
	cfgName, err := pulled.ConfigName()
	if err != nil {
		return fmt.Errorf("reading the config digest of %s: %w", ref, err)
	}
	if got := sha256Of(cfg); got != cfgName.Hex {
		return fmt.Errorf("%w: config sha256:%s, want %s", ErrDigestMismatch, got, cfgName)
	}
	layers, err := pulled.Layers()
	if err != nil {
		return fmt.Errorf("reading the layers of %s: %w", ref, err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("reading a layer digest of %s: %w", ref, err)
		}
		if err := verifyLayer(l, d); err != nil {
			return fmt.Errorf("layer %s of %s: %w", d, ref, err)
		}
	}
	return nil
}

func verifyLayer(l v1.Layer, want v1.Hash) error {
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("pulling: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return fmt.Errorf("pulling: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		return fmt.Errorf("%w: sha256:%s", ErrDigestMismatch, got)
	}
	return nil
}

func sha256Of(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
