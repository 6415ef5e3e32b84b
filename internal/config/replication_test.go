package config_test

import (
	"testing"
	"time"

	"keppel/internal/config"
)

// TestReplicationAndHostRouting covers replication.*, janitor.replica_sync_interval,
// api.account_subdomains and api.anycast_url.
func TestReplicationAndHostRouting(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", env(map[string]string{
		"KEPPEL_REPLICATION_TAG_LIFETIME":      "90s",
		"KEPPEL_REPLICATION_SPOOL_DIR":         "/var/tmp",
		"KEPPEL_JANITOR_REPLICA_SYNC_INTERVAL": "10m",
		"KEPPEL_API_ACCOUNT_SUBDOMAINS":        "true",
		"KEPPEL_API_PUBLIC_URL":                "https://keppel.eu-de-1.example.com",
		"KEPPEL_API_ANYCAST_URL":               "https://Registry.Example.com/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Replication.TagLifetime != 90*time.Second || cfg.Replication.SpoolDir != "/var/tmp" ||
		cfg.Janitor.ReplicaSyncInterval != 10*time.Minute || !cfg.API.AccountSubdomains ||
		cfg.API.AnycastURL != "https://registry.example.com" {
		t.Fatalf("loaded %+v %+v %+v", cfg.Replication, cfg.Janitor, cfg.API)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"negative tag lifetime", map[string]string{"KEPPEL_REPLICATION_TAG_LIFETIME": "-1s"}, "replication.tag_lifetime"},
		{"anycast with a path", map[string]string{"KEPPEL_API_ANYCAST_URL": "https://registry.example.com/v2"}, "api.anycast_url"},
		{"anycast without scheme", map[string]string{"KEPPEL_API_ANYCAST_URL": "registry.example.com"}, "api.anycast_url"},
		{"anycast is the public URL", map[string]string{"KEPPEL_API_ANYCAST_URL": "http://a.example.com", "KEPPEL_API_PUBLIC_URL": "http://A.example.com"}, "api.anycast_url"},
		{"bad boolean", map[string]string{"KEPPEL_API_ACCOUNT_SUBDOMAINS": "sometimes"}, "KEPPEL_API_ACCOUNT_SUBDOMAINS"},
	} {
		t.Run(c.name, func(t *testing.T) { wantLoadError(t, "", c.env, c.want) })
	}
}

// TestScanSettings covers scan.*.
func TestScanSettings(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", env(map[string]string{
		"KEPPEL_SCAN_SCANNER": "builtin", "KEPPEL_SCAN_OSV_DIR": "/srv/osv",
		"KEPPEL_SCAN_INTERVAL": "6h", "KEPPEL_SCAN_CONCURRENCY": "4",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scan.Scanner != "builtin" || cfg.Scan.OSVDir != "/srv/osv" || cfg.Scan.Interval != 6*time.Hour || cfg.Scan.Concurrency != 4 {
		t.Fatalf("loaded %+v", cfg.Scan)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown scanner", map[string]string{"KEPPEL_SCAN_SCANNER": "clair"}, "scan.scanner"},
		{"builtin without advisories", map[string]string{"KEPPEL_SCAN_SCANNER": "builtin"}, "scan.osv_dir"},
		{"too many at once", map[string]string{"KEPPEL_SCAN_CONCURRENCY": "1000"}, "scan.concurrency"},
	} {
		t.Run(c.name, func(t *testing.T) { wantLoadError(t, "", c.env, c.want) })
	}
}
