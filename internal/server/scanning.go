package server

import (
	"fmt"
	"log/slog"

	"keppel/internal/api/keppelv1"
	"keppel/internal/config"
	"keppel/internal/registry"
	"keppel/internal/scan"
	"keppel/internal/scan/builtin"
)

// openScanner builds the configured vulnerability scanner (nil if
// scanning is off).
func openScanner(cfg config.Scan, log *slog.Logger) (scan.Scanner, error) {
	switch cfg.Scanner {
	case "":
		return nil, nil
	case "builtin":
		s, err := builtin.New(cfg.OSVDir, log.With("component", "scanner"))
		if err != nil {
			return nil, fmt.Errorf("scan.osv_dir (KEPPEL_SCAN_OSV_DIR): %w", err)
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
