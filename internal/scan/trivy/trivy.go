// Package trivy scans images through a Trivy server: it runs the trivy
// client binary against the registry itself, with a short-lived pull-only
// token for the one repository, and reads Trivy's JSON report.
package trivy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"keppel/internal/scan"
)

// Defaults of a Scanner.
const (
	// DefaultTimeout bounds one scan.
	DefaultTimeout = 10 * time.Minute
	// DefaultMaxReport bounds the report that Trivy prints.
	DefaultMaxReport = 64 << 20
	// maxStderr is how much of Trivy's error output is kept for messages.
	maxStderr = 8 << 10
)

// TokenFunc returns a pull-only token for the repository, to be used by
// Trivy to pull the image from the registry.
type TokenFunc func(ctx context.Context, repository string) (string, error)

// Config is what a Scanner needs.
type Config struct {
	// Binary is the trivy client ("trivy" from PATH if empty).
	Binary string
	// ServerURL is the Trivy server's URL.
	ServerURL string
	// RegistryURL is the registry's own public URL; images are pulled
	// from its host (with --insecure if it is http).
	RegistryURL string
	// Token issues pull tokens.
	Token TokenFunc
}

// Scanner scans through a Trivy server.
type Scanner struct {
	binary    string
	serverURL string
	host      string
	insecure  bool
	token     TokenFunc
	timeout   time.Duration
	maxReport int64
	tempDir   string
}

// Option configures a Scanner.
type Option func(*Scanner)

// WithTimeout bounds one scan (DefaultTimeout otherwise).
func WithTimeout(d time.Duration) Option { return func(s *Scanner) { s.timeout = d } }

// WithMaxReport bounds the size of Trivy's output (DefaultMaxReport
// otherwise); a larger report fails the scan.
func WithMaxReport(n int64) Option { return func(s *Scanner) { s.maxReport = n } }

// WithTempDir sets where the per-scan cache directories are made (the
// system's temporary directory otherwise).
func WithTempDir(dir string) Option { return func(s *Scanner) { s.tempDir = dir } }

// New builds a Scanner.
func New(cfg Config, opts ...Option) (*Scanner, error) {
	if cfg.ServerURL == "" {
		return nil, errors.New("the Trivy server URL is missing")
	}
	if !strings.HasPrefix(cfg.ServerURL, "http://") && !strings.HasPrefix(cfg.ServerURL, "https://") {
		return nil, fmt.Errorf("the Trivy server URL %q must be an http(s) URL", cfg.ServerURL)
	}
	if cfg.Token == nil {
		return nil, errors.New("no token issuer for the scanner")
	}
	scheme, host, ok := strings.Cut(cfg.RegistryURL, "://")
	host = strings.TrimSuffix(host, "/")
	if !ok || (scheme != "http" && scheme != "https") || host == "" || strings.Contains(host, "/") {
		return nil, fmt.Errorf("the registry URL %q must be an http(s) URL without a path", cfg.RegistryURL)
	}
	s := &Scanner{binary: cfg.Binary, serverURL: cfg.ServerURL, host: host, insecure: scheme == "http",
		token: cfg.Token, timeout: DefaultTimeout, maxReport: DefaultMaxReport}
	if s.binary == "" {
		s.binary = "trivy"
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Name implements scan.Scanner.
func (s *Scanner) Name() string { return "trivy" }

// Scan implements scan.Scanner.
func (s *Scanner) Scan(ctx context.Context, img scan.Image) (scan.Result, error) {
	if configType, ok := img.ContainerImage(); !ok {
		return unsupported("not a container image (config media type " + configType + ")")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	token, err := s.token(ctx, img.Repository)
	if err != nil {
		return scan.Result{}, fmt.Errorf("issuing a pull token for %s: %w", img.Repository, err)
	}
	out, err := s.run(ctx, cancel, s.host+"/"+img.Repository+"@"+img.Digest, token)
	if err != nil {
		var u unsupportedError
		if errors.As(err, &u) {
			return unsupported(string(u))
		}
		return scan.Result{}, fmt.Errorf("trivy %s@%s: %w", img.Repository, img.Digest, err)
	}
	return ParseReport(out)
}

// unsupportedError is Trivy's refusal of content it cannot scan.
type unsupportedError string

func (e unsupportedError) Error() string { return string(e) }

// unsupportedMessages mark Trivy errors about content it cannot scan.
var unsupportedMessages = []string{"unsupported artifact type", "unsupported mediatype", "unsupported media type", "unsupported config"}

// run runs the trivy client and returns its standard output.
func (s *Scanner) run(ctx context.Context, cancel context.CancelFunc, ref, token string) ([]byte, error) {
	tmp, err := os.MkdirTemp(s.tempDir, "keppel-trivy-")
	if err != nil {
		return nil, fmt.Errorf("making a cache directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"image", "--server", s.serverURL, "--format", "json", "--quiet", "--scanners", "vuln"}
	if s.insecure {
		args = append(args, "--insecure")
	}
	args = append(args, ref)
	cmd := exec.CommandContext(ctx, s.binary, args...)
	// The token goes through the environment (TRIVY_REGISTRY_TOKEN is
	// --registry-token), where other users cannot read it as they can
	// read a command line.
	cmd.Env = append(childEnv(os.Environ()),
		"TRIVY_CACHE_DIR="+filepath.Join(tmp, "cache"),
		"TRIVY_REGISTRY_TOKEN="+token,
		"TMPDIR="+tmp,
	)
	cmd.Dir = tmp
	stdout := &limitedBuffer{max: s.maxReport, overflow: cancel}
	stderr := &limitedBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	switch {
	case stdout.overflowed:
		return nil, fmt.Errorf("the report is larger than %d bytes", s.maxReport)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("no result within %s: %w", s.timeout, ctx.Err())
	case err != nil:
		msg := strings.TrimSpace(string(stderr.buf))
		lower := strings.ToLower(msg)
		for _, u := range unsupportedMessages {
			if strings.Contains(lower, u) {
				return nil, unsupportedError(lastLine(msg))
			}
		}
		if msg == "" {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s", err, lastLine(msg))
	}
	return stdout.buf, nil
}

// childEnv is the environment without Trivy's own variables, which only
// the scanner sets.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(strings.ToUpper(kv), "TRIVY_") {
			out = append(out, kv)
		}
	}
	return out
}

// lastLine is the last non-empty line of a message (Trivy's fatal error).
func lastLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// limitedBuffer holds at most max bytes. Beyond, it calls overflow and
// fails the write if overflow is set, and keeps the last max bytes
// otherwise. (It has no ReadFrom, so that every write passes Write.)
type limitedBuffer struct {
	buf        []byte
	max        int64
	overflow   func()
	overflowed bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if int64(len(b.buf))+int64(len(p)) <= b.max {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if b.overflow != nil {
		b.overflowed = true
		b.overflow()
		return 0, errors.New("output too large")
	}
	// Keep the end, where the fatal error is.
	b.buf = append(b.buf, p...)
	b.buf = append([]byte(nil), b.buf[int64(len(b.buf))-b.max:]...)
	return len(p), nil
}

func unsupported(reason string) (scan.Result, error) {
	buf, err := json.Marshal(map[string]string{"unsupported": reason})
	if err != nil {
		return scan.Result{}, fmt.Errorf("encoding the report: %w", err)
	}
	return scan.Result{Status: scan.Unsupported, Report: buf}, nil
}
