package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"keppel/internal/api/keppelv1"
	"keppel/internal/auth"
	"keppel/internal/config"
	"keppel/internal/registry"
	"keppel/internal/scan"
	"keppel/internal/scan/builtin"
	"keppel/internal/scan/trivy"
)

// scannerTokenMargin is how much longer a scanner's pull token lives than
// the scan may take.
const scannerTokenMargin = time.Minute

// openScanner builds the configured vulnerability scanner (nil if
// scanning is off). The trivy scanner pulls from publicURL with tokens
// that the server issues to auth.ScannerSubject.
func openScanner(cfg config.Scan, publicURL string, tokens *auth.TokenService, log *slog.Logger) (scan.Scanner, error) {
	switch cfg.Scanner {
	case "":
		return nil, nil
	case "builtin":
		s, err := builtin.New(cfg.OSVDir, log.With("component", "scanner"))
		if err != nil {
			return nil, fmt.Errorf("scan.osv_dir (KEPPEL_SCAN_OSV_DIR): %w", err)
		}
		return s, nil
	case "trivy":
		s, err := trivy.New(trivy.Config{Binary: cfg.TrivyBinary, ServerURL: cfg.TrivyURL, RegistryURL: publicURL,
			Token: func(_ context.Context, repository string) (string, error) {
				return tokens.IssueScannerToken(repository, trivy.DefaultTimeout+scannerTokenMargin)
			}})
		if err != nil {
			return nil, fmt.Errorf("scan.trivy_url (KEPPEL_SCAN_TRIVY_URL): %w", err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("unknown scanner %q", cfg.Scanner)
	}
}

// scanSettings are the janitor's scan settings.
func scanSettings(cfg config.Scan, s scan.Scanner) registry.ScanSettings {
	return registry.ScanSettings{Scanner: s, Interval: cfg.Interval, Concurrency: int(cfg.Concurrency)}
}

// scanAPI is what the management API serves reports with (a nil interface
// while scanning is off).
func scanAPI(s scan.Scanner, svc *registry.Service) keppelv1.ScanService {
	if s == nil {
		return nil
	}
	return svc
}
