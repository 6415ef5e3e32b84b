package config_test

import (
	"strings"
	"testing"

	"keppel/internal/config"
)

// TestTrivySettings covers scan.trivy_*.
func TestTrivySettings(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", env(map[string]string{
		"KEPPEL_SCAN_SCANNER": "trivy", "KEPPEL_SCAN_TRIVY_URL": "http://127.0.0.1:4954",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scan.TrivyURL != "http://127.0.0.1:4954" || cfg.Scan.TrivyBinary != "trivy" {
		t.Fatalf("loaded %+v", cfg.Scan)
	}
	cfg, err = config.Load("", env(map[string]string{
		"KEPPEL_SCAN_SCANNER": "trivy", "KEPPEL_SCAN_TRIVY_URL": "https://trivy.example", "KEPPEL_SCAN_TRIVY_BINARY": "/opt/trivy/bin/trivy",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scan.TrivyBinary != "/opt/trivy/bin/trivy" {
		t.Fatalf("loaded %+v", cfg.Scan)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no server", map[string]string{"KEPPEL_SCAN_SCANNER": "trivy"}, "scan.trivy_url (KEPPEL_SCAN_TRIVY_URL)"},
		{"not a URL", map[string]string{"KEPPEL_SCAN_SCANNER": "trivy", "KEPPEL_SCAN_TRIVY_URL": "127.0.0.1:4954"}, "scan.trivy_url"},
		{"unknown scanner", map[string]string{"KEPPEL_SCAN_SCANNER": "clair"}, "builtin, trivy"},
	} {
		if _, err := config.Load("", env(c.env)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.want)
		}
	}
}
