package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keppel/internal/test"
)

// TestBenchCompare runs the comparison with tiny sizes against the real
// keppel binary, plus the Distribution registry when
// KEPPEL_BENCH_DISTRIBUTION names its binary and Keppel on PostgreSQL when
// KEPPEL_TEST_POSTGRES_URL names a loopback server.
func TestBenchCompare(t *testing.T) {
	clearConfigEnv(t)
	bin := test.BuildKeppel(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // to check that the temporary directories go away

	args := []string{"bench", "compare", "--keppel", bin, "--rounds", "2", "--duration", "200ms",
		"--max-ops", "50", "--clients", "2", "--scenario", "manifest-get,catalog", "--tiny", "--json"}
	want := []string{"keppel-embedded"}
	if dist := os.Getenv("KEPPEL_BENCH_DISTRIBUTION"); dist != "" {
		args = append(args, "--distribution", dist)
		want = append([]string{"distribution"}, want...)
	}
	if pg := os.Getenv("KEPPEL_TEST_POSTGRES_URL"); pg != "" {
		args = append(args, "--postgres-url", pg)
		want = append(want, "keppel-postgres")
	}
	out, err := run(t, "", args...)
	if err != nil {
		t.Fatalf("bench compare: %v\n%s", err, out)
	}
	var doc struct {
		Targets []struct {
			Name string `json:"name"`
			PID  int    `json:"pid"`
		} `json:"targets"`
		Limits *struct {
			SHA256 float64 `json:"sha256_mb_per_second_one_core"`
		} `json:"limits"`
		Comparison struct {
			Reference string `json:"reference"`
			Runs      []struct {
				Target string `json:"target"`
				Ops    int64  `json:"ops"`
				Errors int64  `json:"errors"`
				RSS    int64  `json:"server_peak_rss_bytes"`
			} `json:"runs"`
			Summary []struct {
				Scenario string `json:"scenario"`
				Higher   bool   `json:"higher_is_better"`
				Targets  []struct {
					Target string `json:"target"`
				} `json:"targets"`
			} `json:"summary"`
		} `json:"comparison"`
	}
	// Progress lines go to stderr, which run shares with stdout: the JSON
	// document starts at the first line that is a lone brace.
	start := strings.Index(out, "\n{\n")
	if start < 0 {
		t.Fatalf("no JSON document in %q", out)
	}
	if err := json.Unmarshal([]byte(out[start:]), &doc); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	if len(doc.Targets) != len(want) {
		t.Fatalf("targets %+v, want %v", doc.Targets, want)
	}
	for i, tg := range doc.Targets {
		if tg.Name != want[i] || tg.PID == 0 {
			t.Errorf("target %d: %+v, want %s", i, tg, want[i])
		}
	}
	if doc.Limits == nil || doc.Limits.SHA256 <= 0 {
		t.Errorf("limits: %+v", doc.Limits)
	}
	if doc.Comparison.Reference != want[0] {
		t.Errorf("reference %q", doc.Comparison.Reference)
	}
	if n := len(doc.Comparison.Runs); n != 2*2*len(want) {
		t.Errorf("%d runs", n)
	}
	for _, r := range doc.Comparison.Runs {
		if r.Ops == 0 || r.Errors != 0 || r.RSS == 0 {
			t.Errorf("run %+v", r)
		}
	}
	if len(doc.Comparison.Summary) != 2 || !doc.Comparison.Summary[0].Higher || doc.Comparison.Summary[1].Higher {
		t.Errorf("summary %+v", doc.Comparison.Summary)
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "keppel-bench-") {
			t.Errorf("temporary directory %s was left behind", filepath.Join(tmp, e.Name()))
		}
	}

	// The text output, without the limit probes.
	out, err = run(t, "", "bench", "compare", "--keppel", bin, "--rounds", "1", "--duration", "100ms",
		"--max-ops", "10", "--scenario", "blob-head", "--tiny", "--skip-limits")
	if err != nil {
		t.Fatalf("bench compare (text): %v\n%s", err, out)
	}
	if !strings.Contains(out, "blob-head") || !strings.Contains(out, "(reference)") || strings.Contains(out, "machine limits") {
		t.Errorf("text output:\n%s", out)
	}
}

func TestBenchCompareRefusals(t *testing.T) {
	clearConfigEnv(t)
	for _, args := range [][]string{
		{"bench", "compare", "--scenario", "manifest-get"}, // no --keppel
		{"bench", "compare", "--keppel", "/nonexistent", "--rounds", "0"},
		{"bench", "compare", "--keppel", "/nonexistent", "--scenario", "nope"},
		{"bench", "compare", "--keppel", "/nonexistent", "--postgres-url", "postgres://db.example.com/x"},
		{"bench", "compare", "--keppel", "/nonexistent", "--postgres-url", "postgres://192.0.2.1/x"},
	} {
		if out, err := run(t, "", args...); err == nil {
			t.Errorf("%v succeeded: %s", args, out)
		}
	}
	for _, ok := range []string{"postgres://127.0.0.1/x", "postgres://localhost:5432/x", "postgresql:///x?host=/var/run/postgresql", "postgres://[::1]/x"} {
		if err := checkLoopbackPostgres(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
