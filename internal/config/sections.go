package config

import "time"

// Replication configures replica accounts (on_first_use and
// from_external_on_first_use).
type Replication struct {
	// TagLifetime is how long a tag of a from_external_on_first_use
	// account is served before the upstream is asked again where it
	// points (5m if zero).
	TagLifetime time.Duration `yaml:"tag_lifetime"`
	// SpoolDir holds temporary copies of blobs while they are fetched from
	// an upstream (the system's temporary directory if empty).
	SpoolDir string `yaml:"spool_dir"`
}

// Scan configures vulnerability scanning (docs/scanning.md).
type Scan struct {
	// Scanner is "" (no scanning, the default), "builtin" or "trivy".
	Scanner string `yaml:"scanner"`
	// OSVDir is the directory of OSV advisories of the builtin scanner
	// (<dir>/<Ecosystem>/all.zip, as osv.dev publishes them).
	OSVDir string `yaml:"osv_dir"`
	// TrivyBinary is the trivy client of the trivy scanner ("trivy" from
	// PATH if empty).
	TrivyBinary string `yaml:"trivy_binary"`
	// TrivyURL is the Trivy server that the trivy scanner uses.
	TrivyURL string `yaml:"trivy_url"`
	// Interval is how often each manifest is scanned again (24h if zero).
	Interval time.Duration `yaml:"interval"`
	// Concurrency is how many manifests a janitor scans at once (2 if
	// zero).
	Concurrency int64 `yaml:"concurrency"`
}
