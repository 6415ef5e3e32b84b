package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/policy"
	"keppel/internal/scan"
)

// Defaults of vulnerability scanning.
const (
	DefaultScanInterval    = 24 * time.Hour
	DefaultScanConcurrency = 2
	// scanLease is how long a claimed scan may take before another
	// janitor tries it again.
	scanLease = 30 * time.Minute
	// scanRecheck is when a manifest is looked at again whose scan had to
	// wait (an index whose children are pending, or an image of a replica
	// whose layers were not pulled yet).
	scanRecheck = time.Minute
	// indexRecheck is when an index whose children are pending is looked
	// at again. A child's result makes its indexes due at once, but one
	// scanned at the same time as the index may record before it.
	indexRecheck = 5 * time.Second
)

// ScanSettings configure vulnerability scanning.
type ScanSettings struct {
	// Scanner scans; nil turns scanning off.
	Scanner scan.Scanner
	// Interval is how often each manifest is scanned again
	// (DefaultScanInterval if zero).
	Interval time.Duration
	// Concurrency is how many manifests are scanned at once
	// (DefaultScanConcurrency if zero).
	Concurrency int
}

func (st ScanSettings) withDefaults() ScanSettings {
	if st.Interval <= 0 {
		st.Interval = DefaultScanInterval
	}
	if st.Concurrency <= 0 {
		st.Concurrency = DefaultScanConcurrency
	}
	return st
}

// ScanBatch is what one ScanNextManifests did.
type ScanBatch struct {
	// Scanned counts the manifests whose scan ended (with any status).
	Scanned int
	// Statuses counts the results by status.
	Statuses map[scan.Status]int
}

// ScanNextManifests claims up to Concurrency manifests whose scan is due
// and scans them at once. An index gets the merged status of its
// children.
func (s *Service) ScanNextManifests(ctx context.Context, st ScanSettings) (ScanBatch, error) {
	st = st.withDefaults()
	res := ScanBatch{Statuses: map[scan.Status]int{}}
	if st.Scanner == nil {
		return res, nil
	}
	var candidates []db.ScanCandidate
	for range st.Concurrency {
		now := s.now()
		c, claimed, err := s.db.ClaimVulnerabilityScan(ctx, now, now.Add(scanLease))
		if err != nil {
			return res, err
		}
		if !claimed {
			break
		}
		candidates = append(candidates, c)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range candidates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, err := s.scanManifest(ctx, st, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			res.Scanned++
			res.Statuses[status]++
		}()
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// scanManifest scans one claimed manifest and records the result.
func (s *Service) scanManifest(ctx context.Context, st ScanSettings, c db.ScanCandidate) (scan.Status, error) {
	record := func(status scan.Status, report []byte, next time.Duration) (scan.Status, error) {
		now := s.now()
		err := s.db.RecordVulnerabilityScan(ctx, c.ManifestKey, db.ScanRecord{Status: string(status),
			Scanner: st.Scanner.Name(), Report: report, At: now, Next: now.Add(next)})
		if errors.Is(err, db.ErrNotFound) {
			return status, nil // deleted meanwhile
		}
		return status, err
	}
	parsed, err := oci.ParseManifest(c.MediaType, c.Content)
	if err != nil {
		return record(scan.Unsupported, nil, st.Interval)
	}
	if len(parsed.Manifests) > 0 || oci.IsIndexMediaType(parsed.MediaType) {
		children, err := s.db.ListChildVulnerabilityStatuses(ctx, c.ManifestKey)
		if err != nil {
			return "", err
		}
		statuses := make([]scan.Status, len(children))
		for i, ch := range children {
			statuses[i] = scan.Status(ch)
		}
		merged := scan.Merge(statuses...)
		if merged == scan.Pending {
			return record(scan.Pending, nil, indexRecheck)
		}
		// An index follows its children, which are scanned as often.
		return record(merged, nil, min(st.Interval, scanRecheck*10))
	}
	img, ready, err := s.scanImage(ctx, c, parsed)
	if err != nil {
		return "", err
	}
	if !ready {
		return record(scan.Pending, nil, scanRecheck*60)
	}
	result, err := st.Scanner.Scan(ctx, img)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err() // the janitor stops: the lease runs out, another scans
		}
		report, _ := json.Marshal(map[string]string{"error": err.Error()})
		s.log.Warn("vulnerability scan failed", "repository", c.Storage.AccountName+"/"+c.RepoName, "digest", c.Digest, "error", err)
		return record(scan.Error, report, scanRecheck*60)
	}
	if !result.Status.Valid() || result.Status == scan.Pending {
		return "", fmt.Errorf("scanner %s returned status %q", st.Scanner.Name(), result.Status)
	}
	status, err := s.applyScanPolicies(ctx, c, result)
	if err != nil {
		return "", err
	}
	return record(status, result.Report, st.Interval)
}

// scanImage describes an image manifest for the scanner, with readers of
// its layers from the account's storage. ready is false while a layer of
// a replica has not been fetched from its upstream.
func (s *Service) scanImage(ctx context.Context, c db.ScanCandidate, parsed *oci.ParsedManifest) (scan.Image, bool, error) {
	ref := c.Storage
	img := scan.Image{Repository: ref.AccountName + "/" + c.RepoName, Digest: c.Digest, MediaType: parsed.MediaType, Manifest: c.Content}
	for i, desc := range parsed.Blobs {
		b, err := s.db.GetBlobInRepository(ctx, c.RepositoryID, desc.Digest.String())
		if err != nil {
			return img, false, fmt.Errorf("looking up blob %s of %s: %w", desc.Digest, c.Digest, err)
		}
		if b.StorageID == "" {
			return img, false, nil
		}
		if i == 0 && parsed.Config != nil {
			img.Config, err = s.readSmallBlob(ctx, ref, b)
			if err != nil {
				return img, false, err
			}
			continue
		}
		storageID := b.StorageID
		img.Layers = append(img.Layers, scan.Layer{MediaType: desc.MediaType, Digest: desc.Digest.String(), Size: desc.Size,
			Open: func(ctx context.Context) (io.ReadCloser, error) {
				return s.storage.ReadBlob(ctx, ref, storageID, 0, -1)
			}})
	}
	return img, true, nil
}

// readSmallBlob reads a blob of at most maxConfigSize bytes (nil if it is
// larger).
func (s *Service) readSmallBlob(ctx context.Context, ref models.StorageRef, b models.Blob) ([]byte, error) {
	if b.SizeBytes > maxConfigSize {
		return nil, nil
	}
	rc, err := s.storage.ReadBlob(ctx, ref, b.StorageID, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", b.Digest, err)
	}
	defer rc.Close()
	buf, err := io.ReadAll(io.LimitReader(rc, maxConfigSize))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", b.Digest, err)
	}
	return buf, nil
}

// VulnerabilityReport returns the report of the last scan of a manifest
// and the scanner that made it (ErrManifestUnknown if there is none).
func (s *Service) VulnerabilityReport(ctx context.Context, repo Repo, digest string) (scanner string, report []byte, err error) {
	scanner, report, err = s.db.GetVulnerabilityReport(ctx, db.ManifestKey{RepositoryID: repo.ID, Digest: digest})
	if errors.Is(err, db.ErrNotFound) {
		return "", nil, fmt.Errorf("%w: there is no vulnerability report for manifest %s in repository %s", ErrManifestUnknown, digest, repo.FullName())
	}
	return scanner, report, err
}

// applyScanPolicies returns the status of a scan result after the
// account's security scan policies: from the severities with which the
// findings count (Clean if none counts). Rotten and Unsupported stay.
func (s *Service) applyScanPolicies(ctx context.Context, c db.ScanCandidate, result scan.Result) (scan.Status, error) {
	if result.Status == scan.Rotten || result.Status == scan.Unsupported || len(result.Findings) == 0 {
		return result.Status, nil
	}
	a, err := s.db.GetAccount(ctx, c.Storage.AccountName)
	if err != nil {
		return "", fmt.Errorf("looking up account %s: %w", c.Storage.AccountName, err)
	}
	policies, err := policy.ParseScanPolicies(a.SecurityScanPoliciesJSON)
	if err != nil {
		return "", fmt.Errorf("security scan policies of account %s: %w", a.Name, err)
	}
	findings := make([]policy.ScanFinding, len(result.Findings))
	for i, f := range result.Findings {
		findings[i] = policy.ScanFinding{ID: f.ID, Severity: string(f.Severity), FixReleased: f.FixReleased}
	}
	status := scan.Clean
	for _, sev := range policy.ApplyScanPolicies(policies, c.RepoName, findings) {
		if sev != "" && scan.Worse(scan.Status(sev), status) {
			status = scan.Status(sev)
		}
	}
	return status, nil
}
