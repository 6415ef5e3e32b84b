package db

import (
	"context"
	"time"
)

// ScanStore keeps the results of vulnerability scans: each manifest's
// status (a column of the manifest, "Pending" until the first scan) and
// the report of its last scan.
type ScanStore interface {
	// ClaimVulnerabilityScan claims the next manifest (of an account that
	// is not being deleted) whose scan is due at now: manifests never
	// scanned first, then the longest due. Its next scan is set to retry,
	// so that a scan that never records its result is tried again then.
	// claimed is false if none is due.
	ClaimVulnerabilityScan(ctx context.Context, now, retry time.Time) (c ScanCandidate, claimed bool, err error)
	// RecordVulnerabilityScan stores the result of a scan of the manifest
	// (status, and the scanner's report unless it is nil) made at, and
	// schedules its next scan at next; the indexes that list it are due at
	// once, to take its status. ErrNotFound if the manifest is gone.
	RecordVulnerabilityScan(ctx context.Context, key ManifestKey, r ScanRecord) error
	// GetVulnerabilityReport returns the report of the manifest's last
	// scan; ErrNotFound if there is none.
	GetVulnerabilityReport(ctx context.Context, key ManifestKey) (scanner string, report []byte, err error)
	// RescheduleVulnerabilityScans makes every manifest of the account due
	// for a scan at the latest at at (after its policies changed).
	RescheduleVulnerabilityScans(ctx context.Context, account string, at time.Time) error
	// ListChildVulnerabilityStatuses returns the statuses of the child
	// manifests of an index.
	ListChildVulnerabilityStatuses(ctx context.Context, key ManifestKey) ([]string, error)
}

// ScanCandidate is a manifest whose scan is due, with what a scan needs.
type ScanCandidate struct {
	ManifestCopy
	MediaType string
}

// ScanRecord is the result of one scan.
type ScanRecord struct {
	Status  string
	Scanner string
	// Report is the scanner's report (nil: keep none).
	Report []byte
	At     time.Time
	Next   time.Time
}
