package server

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"keppel/internal/config"
)

// TestPeeringWiring checks that federation.peers gives the server a
// peering Service, its rotation job, and no peering without peers.
func TestPeeringWiring(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, peers := range []string{"", "http://127.0.0.1:1,http://127.0.0.1:2"} {
		env := map[string]string{
			"KEPPEL_DATA_DIR":               t.TempDir(),
			"KEPPEL_STORAGE_DRIVER":         "memory",
			"KEPPEL_ADMIN_PASSWORD":         "admin-password",
			"KEPPEL_API_PUBLIC_URL":         "http://127.0.0.1:2",
			"KEPPEL_PEERS":                  peers,
			"KEPPEL_PEER_PASSWORD_ROTATION": "20m",
			"KEPPEL_JANITOR_EMBEDDED":       "false",
		}
		cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		s, err := Build(t.Context(), cfg, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		var job bool
		for _, j := range s.janitor.Jobs() {
			if j.Name == "peering" {
				job = true
				if j.Interval != s.Peering().PollInterval() || j.Interval != time.Minute {
					t.Errorf("the peering job runs every %s", j.Interval)
				}
			}
		}
		if (s.Peering() != nil) != (peers != "") || job != (peers != "") {
			t.Fatalf("KEPPEL_PEERS=%q: peering %v, job %v", peers, s.Peering() != nil, job)
		}
		if peers == "" {
			continue
		}
		if u, ok := s.Peering().PeerURL("127.0.0.1:1"); !ok || u != "http://127.0.0.1:1" {
			t.Errorf("PeerURL of a peer: %q, %v", u, ok)
		}
		if _, ok := s.Peering().PeerURL("127.0.0.1:2"); ok {
			t.Error("the server is its own peer")
		}
	}
}
