package main

import (
	"encoding/json"
	"strings"
	"testing"

	"keppel/internal/test"
)

func TestBenchCommand(t *testing.T) {
	clearConfigEnv(t)
	s := test.NewServer(t, test.Options{})
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	out, err := run(t, "", "bench", "--registry", s.URL, "--repo", "test/load", "--scenario", "manifest-get", "--duration", "1s", "--clients", "4")
	if err != nil {
		t.Fatalf("bench: %v (output %q)", err, out)
	}
	for _, want := range []string{"manifest-get", "p50", "p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}

	out, err = run(t, "", "bench", "--registry", s.URL, "--repo", "test/load", "--scenario", "blob-head", "--duration", "1s", "--max-ops", "10", "--json")
	if err != nil {
		t.Fatalf("bench --json: %v (output %q)", err, out)
	}
	var doc struct {
		Results []struct {
			Scenario string `json:"scenario"`
			Ops      int64  `json:"ops"`
			Errors   int64  `json:"errors"`
		} `json:"results"`
	}
	// Progress lines go to stderr, which run shares with stdout: the JSON
	// document starts at the first brace.
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &doc); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if len(doc.Results) != 1 || doc.Results[0].Ops != 10 || doc.Results[0].Errors != 0 {
		t.Errorf("json results: %+v", doc.Results)
	}
}

func TestBenchRefusesRemoteRegistry(t *testing.T) {
	clearConfigEnv(t)
	for _, u := range []string{"http://192.0.2.1:5000", "http://example.com"} {
		if out, err := run(t, "", "bench", "--registry", u, "--scenario", "manifest-get", "--duration", "1s"); err == nil {
			t.Errorf("bench --registry %s succeeded: %s", u, out)
		}
	}
	if _, err := run(t, "", "bench", "--scenario", "nope"); err == nil {
		t.Error("an unknown scenario was accepted")
	}
}
