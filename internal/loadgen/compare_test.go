package loadgen

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"keppel/internal/test"
)

func TestNewSpread(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{5}, Spread{Median: 5, Min: 5, Max: 5, N: 1}},
		{[]float64{3, 1, 2}, Spread{Median: 2, Min: 1, Max: 3, N: 3}},
		{[]float64{4, 1, 3, 2}, Spread{Median: 2.5, Min: 1, Max: 4, N: 4}},
	} {
		in := append([]float64(nil), c.in...)
		if got := NewSpread(c.in); got != c.want {
			t.Errorf("NewSpread(%v) = %+v, want %+v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("NewSpread modified its input")
			}
		}
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	run := func(round int, target, sc string, ops, mb float64, p50 time.Duration, rss int64) RoundResult {
		return RoundResult{Round: round, Target: target, Result: Result{Scenario: sc, OpsPerS: ops, MBPerS: mb, P50: p50, P99: 2 * p50, ServerPeakRSS: rss, ServerCPUSeconds: 1}}
	}
	runs := []RoundResult{
		// manifest-get: ops/s. Ratios per round: 3, 2, 4 → median 3.
		run(0, "dist", "manifest-get", 100, 0, ms, 10<<20),
		run(0, "keppel", "manifest-get", 300, 0, ms, 5<<20),
		run(1, "keppel", "manifest-get", 400, 0, ms, 5<<20),
		run(1, "dist", "manifest-get", 200, 0, ms, 10<<20),
		run(2, "dist", "manifest-get", 50, 0, ms, 10<<20),
		run(2, "keppel", "manifest-get", 200, 0, ms, 20<<20),
		// catalog: p50. Ratios 0.1, 0.5 → median 0.3.
		run(0, "dist", "catalog", 1, 0, 10*ms, 0),
		run(0, "keppel", "catalog", 1, 0, 1*ms, 0),
		run(1, "dist", "catalog", 1, 0, 10*ms, 0),
		run(1, "keppel", "catalog", 1, 0, 5*ms, 0),
		// blob-pull: MB/s; the keppel run of round 1 is missing.
		run(0, "dist", "blob-pull", 1, 100, ms, 0),
		run(0, "keppel", "blob-pull", 1, 150, ms, 0),
		run(1, "dist", "blob-pull", 1, 100, ms, 0),
	}
	sum := Summarize(runs, []string{"dist", "keppel"}, "dist", []string{"manifest-get", "catalog", "blob-pull"})
	if len(sum) != 3 {
		t.Fatalf("got %d summaries", len(sum))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

	mg := sum[0]
	if mg.Metric != MetricOpsPerS || !mg.Higher {
		t.Errorf("manifest-get metric %s higher %v", mg.Metric, mg.Higher)
	}
	d, k := mg.Targets[0], mg.Targets[1]
	if d.Target != "dist" || d.Ratio.N != 0 || d.OpsPerS != (Spread{Median: 100, Min: 50, Max: 200, N: 3}) {
		t.Errorf("dist: %+v", d)
	}
	if k.Ratio != (Spread{Median: 3, Min: 2, Max: 4, N: 3}) {
		t.Errorf("keppel ratio: %+v", k.Ratio)
	}
	if k.RSSRatio != (Spread{Median: 0.5, Min: 0.5, Max: 2, N: 3}) {
		t.Errorf("keppel RSS ratio: %+v", k.RSSRatio)
	}
	if k.PeakRSSMiB.Median != 5 || k.CPUSeconds.Median != 1 {
		t.Errorf("keppel server figures: %+v %+v", k.PeakRSSMiB, k.CPUSeconds)
	}

	cat := sum[1]
	if cat.Metric != MetricP50 || cat.Higher {
		t.Errorf("catalog metric %s higher %v", cat.Metric, cat.Higher)
	}
	if r := cat.Targets[1].Ratio; !near(r.Median, 0.3) || !near(r.Min, 0.1) || !near(r.Max, 0.5) || r.N != 2 {
		t.Errorf("catalog ratio: %+v", r)
	}
	if cat.Targets[1].RSSRatio.N != 0 {
		t.Errorf("catalog RSS ratio without RSS figures: %+v", cat.Targets[1].RSSRatio)
	}

	bp := sum[2]
	if bp.Metric != MetricMBPerS {
		t.Errorf("blob-pull metric %s", bp.Metric)
	}
	if r := bp.Targets[1].Ratio; r != (Spread{Median: 1.5, Min: 1.5, Max: 1.5, N: 1}) {
		t.Errorf("blob-pull ratio: %+v", r)
	}
}

func TestCompareTwoServers(t *testing.T) {
	a := test.NewServer(t, test.Options{})
	b := test.NewServer(t, test.Options{})
	cc := CompareConfig{
		Base: Config{
			Repo: "test/load", Clients: 2, Duration: 150 * time.Millisecond, MaxOps: 10,
			PID:   999999, // overwritten per target
			Sizes: Sizes{BigBlob: 1 << 20, Chunk: 1 << 18, Layer: 1024, Tags: 3, Repos: 2, PageSize: 2},
		},
		Targets: []Target{
			{Name: "a", URL: a.URL, Username: "admin", Password: test.AdminPassword, PID: selfPID()},
			{Name: "b", URL: b.URL, Username: "admin", Password: test.AdminPassword, PID: selfPID()},
		},
		Rounds:    2,
		Scenarios: []string{"manifest-get", "catalog"},
	}
	var progressLog strings.Builder
	cc.Base.Progress = &progressLog
	c, err := Compare(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Runs) != 2*2*2 {
		t.Fatalf("%d runs", len(c.Runs))
	}
	// Round 0 runs a before b, round 1 b before a.
	if c.Runs[0].Target != "a" || c.Runs[1].Target != "b" || c.Runs[4].Target != "b" || c.Runs[5].Target != "a" {
		t.Errorf("order: %s %s … %s %s", c.Runs[0].Target, c.Runs[1].Target, c.Runs[4].Target, c.Runs[5].Target)
	}
	for _, r := range c.Runs {
		if r.Ops == 0 || r.Errors != 0 || r.ServerPeakRSS == 0 {
			t.Errorf("%s %s round %d: %+v", r.Target, r.Scenario, r.Round, r.Result)
		}
	}
	if len(c.Summary) != 2 || c.Summary[0].Targets[1].Ratio.N != 2 {
		t.Errorf("summary: %+v", c.Summary)
	}
	var out strings.Builder
	if err := WriteComparison(&out, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"manifest-get", "catalog", "(reference)", "higher is better", "lower is better"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())

	cc.Targets[1].URL = "http://192.0.2.1:5000"
	if _, err := Compare(context.Background(), cc); err == nil {
		t.Error("a non-loopback target was accepted")
	}
	cc.Targets[1].URL = b.URL
	cc.Rounds = MaxRounds + 1
	if _, err := Compare(context.Background(), cc); err == nil {
		t.Error("too many rounds were accepted")
	}
}

func TestProbeLimits(t *testing.T) {
	l, err := ProbeLimits(context.Background(), t.TempDir(), LimitSizes{
		HashBytes: 3<<20 + 5, TCPDuration: 100 * time.Millisecond, DiskBytes: 2 << 20,
		HTTPClients: 4, HTTPTime: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.CPUs < 1 || l.SHA256MBPerS <= 0 || l.LoopbackMBPerS <= 0 || l.DiskFsyncMBPerS <= 0 || l.HTTPReqPerS <= 0 || l.HTTPClients != 4 {
		t.Errorf("limits: %+v", l)
	}
	var out strings.Builder
	if err := WriteLimits(&out, l); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if _, err := ProbeLimits(context.Background(), t.TempDir(), LimitSizes{HashBytes: 1, TCPDuration: time.Hour, DiskBytes: 1, HTTPClients: 1, HTTPTime: time.Second}); err == nil {
		t.Error("an hour-long probe was accepted")
	}
}
