package config_test

import (
	"slices"
	"testing"
	"time"

	"keppel/internal/config"
)

func TestPeerDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Federation.Peers) != 0 || cfg.Federation.PeerPasswordRotation != time.Hour {
		t.Errorf("federation = %+v, want no peers and a rotation of 1h", cfg.Federation)
	}
}

func TestPeersFromYAMLAndEnvironment(t *testing.T) {
	t.Parallel()
	yaml := writeYAML(t, `federation:
  peers:
    - https://keppel.eu-de-2.example.com/
    - http://127.0.0.3:8080
  peer_password_rotation: 30m
`)
	cfg, err := config.Load(yaml, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://keppel.eu-de-2.example.com", "http://127.0.0.3:8080"}
	if !slices.Equal(cfg.Federation.Peers, want) || cfg.Federation.PeerPasswordRotation != 30*time.Minute {
		t.Errorf("from YAML: %+v, want peers %q and rotation 30m", cfg.Federation, want)
	}

	// The environment wins, with a comma-separated list.
	cfg, err = config.Load(yaml, env(map[string]string{
		"KEPPEL_PEERS":                  " HTTPS://Keppel.EU-DE-3.example.com:443 ,, http://[::1]:5000",
		"KEPPEL_PEER_PASSWORD_ROTATION": "2h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"https://keppel.eu-de-3.example.com:443", "http://[::1]:5000"}
	if !slices.Equal(cfg.Federation.Peers, want) || cfg.Federation.PeerPasswordRotation != 2*time.Hour {
		t.Errorf("from the environment: %+v, want peers %q and rotation 2h", cfg.Federation, want)
	}
	if !slices.Contains(config.EnvironmentVariables(), "KEPPEL_PEERS") ||
		!slices.Contains(config.EnvironmentVariables(), "KEPPEL_PEER_PASSWORD_ROTATION") {
		t.Error("EnvironmentVariables does not list the peering variables")
	}
}

func TestPeerErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		env      map[string]string
		wantKeys []string
	}{
		{"no scheme", "", map[string]string{"KEPPEL_PEERS": "keppel.example.com"}, []string{"federation.peers", "KEPPEL_PEERS", "keppel.example.com"}},
		{"another scheme", "", map[string]string{"KEPPEL_PEERS": "ftp://keppel.example.com"}, []string{"federation.peers", "KEPPEL_PEERS"}},
		{"no host", "", map[string]string{"KEPPEL_PEERS": "https:///v2"}, []string{"federation.peers"}},
		{"a path", "federation:\n  peers: [https://keppel.example.com/keppel]\n", nil, []string{"federation.peers", "/keppel"}},
		{"a query", "", map[string]string{"KEPPEL_PEERS": "https://keppel.example.com?x=1"}, []string{"federation.peers"}},
		{"credentials", "", map[string]string{"KEPPEL_PEERS": "https://u:p@keppel.example.com"}, []string{"federation.peers"}},
		{"the same host twice", "", map[string]string{"KEPPEL_PEERS": "https://a.example.com,http://A.example.com/"},
			[]string{"federation.peers", "same registry"}},
		{"a rotation that is no duration", "", map[string]string{"KEPPEL_PEER_PASSWORD_ROTATION": "hourly"}, []string{"KEPPEL_PEER_PASSWORD_ROTATION"}},
		{"a rotation that is too short", "federation:\n  peer_password_rotation: 10s\n", nil,
			[]string{"federation.peer_password_rotation", "KEPPEL_PEER_PASSWORD_ROTATION"}},
		{"a rotation of zero", "", map[string]string{"KEPPEL_PEER_PASSWORD_ROTATION": "0s"}, []string{"federation.peer_password_rotation"}},
		{"a list in YAML of the wrong type", "federation:\n  peers: https://a.example.com\n", nil, []string{"parsing config file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantLoadError(t, tc.yaml, tc.env, tc.wantKeys...)
		})
	}
}
