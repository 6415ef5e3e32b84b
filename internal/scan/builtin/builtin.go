// Package builtin is the registry's own offline vulnerability scanner: it
// lists the packages an image installs (package inventory) and matches
// them against OSV advisories kept in a local directory (package osvdb),
// so that it works without internet access.
package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"keppel/internal/scan"
	"keppel/internal/scan/inventory"
	"keppel/internal/scan/osvdb"
)

// Scanner is the builtin scanner.
type Scanner struct {
	db     *osvdb.Watcher
	limits inventory.Limits
	now    func() time.Time
}

// Option configures a Scanner.
type Option func(*Scanner)

// WithLimits bounds the work on one image (inventory.DefaultLimits
// otherwise).
func WithLimits(l inventory.Limits) Option { return func(s *Scanner) { s.limits = l } }

// WithClock injects the clock that decides which distributions are past
// their end of life.
func WithClock(now func() time.Time) Option { return func(s *Scanner) { s.now = now } }

// New loads the advisories below osvDir; they are reloaded when files
// there change.
func New(osvDir string, log *slog.Logger, opts ...Option) (*Scanner, error) {
	w, err := osvdb.NewWatcher(osvDir, log)
	if err != nil {
		return nil, fmt.Errorf("loading OSV advisories from %s: %w", osvDir, err)
	}
	s := &Scanner{db: w, limits: inventory.DefaultLimits(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Name implements scan.Scanner.
func (s *Scanner) Name() string { return "builtin" }

// Report is the builtin scanner's report of one image.
type Report struct {
	OS              inventory.OS    `json:"os"`
	EndOfLife       bool            `json:"end_of_life,omitempty"`
	Packages        int             `json:"packages"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities"`
	// Unsupported says why the image could not be scanned.
	Unsupported string `json:"unsupported,omitempty"`
}

// Vulnerability is one advisory that affects an installed package.
type Vulnerability struct {
	ID           string   `json:"id"`
	Aliases      []string `json:"aliases,omitempty"`
	Summary      string   `json:"summary,omitempty"`
	Severity     string   `json:"severity"`
	Score        float64  `json:"score,omitempty"`
	Package      string   `json:"package"`
	Version      string   `json:"installed_version"`
	FixedVersion string   `json:"fixed_version,omitempty"`
	Ecosystem    string   `json:"ecosystem"`
}

// Scan implements scan.Scanner.
func (s *Scanner) Scan(ctx context.Context, img scan.Image) (scan.Result, error) {
	if err := s.reload(ctx); err != nil {
		return scan.Result{}, err
	}
	if configType, ok := img.ContainerImage(); !ok {
		return unsupported("not a container image (config media type " + configType + ")")
	}
	layers := make([]inventory.Layer, len(img.Layers))
	for i, l := range img.Layers {
		layers[i] = inventory.Layer{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size, Open: l.Open}
	}
	inv, err := inventory.Extract(ctx, layers, s.limits)
	if errors.Is(err, inventory.ErrUnsupported) {
		return unsupported(err.Error())
	}
	if err != nil {
		return scan.Result{}, fmt.Errorf("listing the packages of %s@%s: %w", img.Repository, img.Digest, err)
	}
	qs, unknown := queries(inv)
	if unknown > 0 {
		// Packages of a distribution without advisories here: "Clean"
		// would be a claim the scanner cannot make.
		return unsupported(fmt.Sprintf("%d packages of distribution %q, for which the builtin scanner has no advisories", unknown,
			strings.TrimSpace(inv.OS.ID+" "+inv.OS.VersionID)))
	}
	report := Report{OS: inv.OS, Packages: len(inv.Packages), Vulnerabilities: []Vulnerability{}}
	var result scan.Result
	findings := s.db.DB().Match(qs)
	status := scan.Clean
	for _, f := range findings {
		report.Vulnerabilities = append(report.Vulnerabilities, Vulnerability{ID: f.ID, Aliases: f.Aliases, Summary: f.Summary,
			Severity: f.Severity.String(), Score: f.Score, Package: f.Query.Name, Version: f.Query.Version,
			FixedVersion: f.FixedVersion, Ecosystem: f.Query.Ecosystem})
		st := severityStatus(f.Severity)
		if scan.Worse(st, status) {
			status = st
		}
		result.Findings = append(result.Findings, scan.Finding{ID: f.ID, Severity: st, FixReleased: f.FixedVersion != ""})
	}
	if endOfLife(inv.OS, s.now()) {
		report.EndOfLife = true
		status = scan.Rotten
	}
	buf, err := json.Marshal(report)
	if err != nil {
		return scan.Result{}, fmt.Errorf("encoding the report: %w", err)
	}
	result.Status, result.Report = status, buf
	return result, nil
}

// reload picks up changed advisory files; a broken new file keeps the
// advisories loaded before (and is logged by the watcher).
func (s *Scanner) reload(ctx context.Context) error {
	_, err := s.db.Check(ctx)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func unsupported(reason string) (scan.Result, error) {
	buf, err := json.Marshal(Report{Unsupported: reason, Vulnerabilities: []Vulnerability{}})
	if err != nil {
		return scan.Result{}, fmt.Errorf("encoding the report: %w", err)
	}
	return scan.Result{Status: scan.Unsupported, Report: buf}, nil
}

func severityStatus(s osvdb.Severity) scan.Status {
	switch s {
	case osvdb.SeverityLow:
		return scan.Low
	case osvdb.SeverityMedium:
		return scan.Medium
	case osvdb.SeverityHigh:
		return scan.High
	case osvdb.SeverityCritical:
		return scan.Critical
	}
	return scan.Unknown
}

// queries turns the inventory into advisory queries: OSV keys Alpine and
// Debian advisories by source package and distribution release, and Go
// ones by module path. unknown counts the packages of a distribution that
// has no OSV ecosystem here (Ubuntu's dpkg packages, for instance).
func queries(inv inventory.Inventory) (qs []osvdb.Query, unknown int) {
	for _, p := range inv.Packages {
		name := p.Source
		if name == "" {
			name = p.Name
		}
		var eco string
		switch p.Type {
		case "apk":
			eco = alpineEcosystem(inv.OS)
		case "dpkg":
			eco = debianEcosystem(inv.OS)
		case "go-module", "go-stdlib":
			eco = "Go"
		}
		switch {
		case eco == "" && (p.Type == "apk" || p.Type == "dpkg"):
			unknown++
			continue
		case eco == "":
			continue
		}
		qs = append(qs, osvdb.Query{Ecosystem: eco, Name: name, Version: p.Version})
	}
	return qs, unknown
}

// alpineEcosystem is "Alpine:v3.10" for Alpine 3.10.x.
func alpineEcosystem(os inventory.OS) string {
	if os.ID != "alpine" {
		return ""
	}
	parts := strings.SplitN(os.VersionID, ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return "Alpine:v" + parts[0] + "." + parts[1]
}

// debianEcosystem is "Debian:10" for Debian 10.
func debianEcosystem(os inventory.OS) string {
	if os.ID != "debian" || os.VersionID == "" {
		return ""
	}
	major, _, _ := strings.Cut(os.VersionID, ".")
	return "Debian:" + major
}
