package loadgen

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// MaxRounds bounds the rounds of a comparison.
const MaxRounds = 50

// Target is one registry of a comparison.
type Target struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	PID      int    `json:"pid,omitempty"`
	Username string `json:"-"`
	Password string `json:"-"`
}

// CompareConfig configures a comparison: every scenario runs against every
// target in every round, the targets in alternating order (A,B,C in even
// rounds, C,B,A in odd ones).
type CompareConfig struct {
	// Base holds clients, duration, max ops, sizes, repository and
	// progress; its Registry, Username, Password and PID are set per
	// target.
	Base      Config
	Targets   []Target
	Reference int // index of the target the ratios are relative to
	Rounds    int
	Scenarios []string
}

// RoundResult is one scenario run against one target in one round.
type RoundResult struct {
	Round  int    `json:"round"`
	Target string `json:"target"`
	Result
}

// Comparison is what a comparison measured and its summary.
type Comparison struct {
	Reference string            `json:"reference"`
	Rounds    int               `json:"rounds"`
	Runs      []RoundResult     `json:"runs"`
	Summary   []ScenarioSummary `json:"summary"`
}

// Metric says which figure a scenario's ratio compares.
type Metric string

const (
	MetricOpsPerS Metric = "ops/s" // higher is better
	MetricMBPerS  Metric = "MB/s"  // higher is better
	MetricP50     Metric = "p50"   // lower is better
)

// HigherIsBetter reports whether a larger value of m is better.
func (m Metric) HigherIsBetter() bool { return m != MetricP50 }

// PrimaryMetric returns the figure a scenario is judged by: p50 latency
// for the catalog (as issue 4's target table has it), MB/s for scenarios
// that move blobs, operations per second for the others.
func PrimaryMetric(scenario string) Metric {
	switch scenario {
	case "catalog":
		return MetricP50
	case "blob-push-monolithic", "blob-push-chunked", "blob-pull", "pull-storm":
		return MetricMBPerS
	}
	return MetricOpsPerS
}

// Spread is the median, minimum and maximum of a figure over rounds.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// NewSpread returns the median, minimum and maximum of vs (the mean of the
// two middle values for an even count); zero for none.
func NewSpread(vs []float64) Spread {
	if len(vs) == 0 {
		return Spread{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// TargetSummary holds the medians and spreads of one target's figures in
// one scenario over the rounds.
type TargetSummary struct {
	Target     string `json:"target"`
	OpsPerS    Spread `json:"ops_per_second"`
	MBPerS     Spread `json:"mb_per_second"`
	P50Ms      Spread `json:"p50_ms"`
	P99Ms      Spread `json:"p99_ms"`
	CPUSeconds Spread `json:"server_cpu_seconds"`
	PeakRSSMiB Spread `json:"server_peak_rss_mib"`
	Errors     int64  `json:"errors"`
	// Primary is the spread of the scenario's primary metric.
	Primary Spread `json:"primary"`
	// Ratio is target/reference of the primary metric, per round paired
	// by round, then median, min and max; RSSRatio the same for peak RSS.
	// Both are empty for the reference itself.
	Ratio    Spread `json:"ratio"`
	RSSRatio Spread `json:"rss_ratio"`
}

// ScenarioSummary summarises one scenario of a comparison.
type ScenarioSummary struct {
	Scenario string          `json:"scenario"`
	Metric   Metric          `json:"metric"`
	Higher   bool            `json:"higher_is_better"`
	Targets  []TargetSummary `json:"targets"`
}

func primaryValue(m Metric, r Result) float64 {
	switch m {
	case MetricMBPerS:
		return r.MBPerS
	case MetricP50:
		return r.P50.Seconds() * 1000
	}
	return r.OpsPerS
}

// Summarize computes the per-scenario summaries of runs. Ratios pair the
// runs of a target with those of the reference target of the same round.
func Summarize(runs []RoundResult, targets []string, reference string, scenarios []string) []ScenarioSummary {
	var out []ScenarioSummary
	for _, sc := range scenarios {
		m := PrimaryMetric(sc)
		ss := ScenarioSummary{Scenario: sc, Metric: m, Higher: m.HigherIsBetter()}
		ref := map[int]Result{}
		for _, r := range runs {
			if r.Scenario == sc && r.Target == reference {
				ref[r.Round] = r.Result
			}
		}
		for _, t := range targets {
			var ops, mb, p50, p99, cpu, rss, prim, ratio, rssRatio []float64
			ts := TargetSummary{Target: t}
			for _, r := range runs {
				if r.Scenario != sc || r.Target != t {
					continue
				}
				ts.Errors += r.Errors
				ops = append(ops, r.OpsPerS)
				mb = append(mb, r.MBPerS)
				p50 = append(p50, r.P50.Seconds()*1000)
				p99 = append(p99, r.P99.Seconds()*1000)
				if r.ServerPeakRSS > 0 {
					cpu = append(cpu, r.ServerCPUSeconds)
					rss = append(rss, float64(r.ServerPeakRSS)/(1<<20))
				}
				v := primaryValue(m, r.Result)
				prim = append(prim, v)
				if t == reference {
					continue
				}
				if rr, ok := ref[r.Round]; ok {
					if rv := primaryValue(m, rr); rv > 0 {
						ratio = append(ratio, v/rv)
					}
					if rr.ServerPeakRSS > 0 && r.ServerPeakRSS > 0 {
						rssRatio = append(rssRatio, float64(r.ServerPeakRSS)/float64(rr.ServerPeakRSS))
					}
				}
			}
			ts.OpsPerS, ts.MBPerS, ts.P50Ms, ts.P99Ms = NewSpread(ops), NewSpread(mb), NewSpread(p50), NewSpread(p99)
			ts.CPUSeconds, ts.PeakRSSMiB, ts.Primary = NewSpread(cpu), NewSpread(rss), NewSpread(prim)
			ts.Ratio, ts.RSSRatio = NewSpread(ratio), NewSpread(rssRatio)
			ss.Targets = append(ss.Targets, ts)
		}
		out = append(out, ss)
	}
	return out
}

// Compare runs the comparison. It stops at the first scenario whose setup
// fails (returning what it has, summarised) or when ctx ends.
func Compare(ctx context.Context, cc CompareConfig) (*Comparison, error) {
	if len(cc.Targets) == 0 {
		return nil, fmt.Errorf("no targets")
	}
	if cc.Rounds < 1 || cc.Rounds > MaxRounds {
		return nil, fmt.Errorf("rounds must be between 1 and %d", MaxRounds)
	}
	if cc.Reference < 0 || cc.Reference >= len(cc.Targets) {
		return nil, fmt.Errorf("reference target %d out of range", cc.Reference)
	}
	names := make([]string, len(cc.Targets))
	for i, t := range cc.Targets {
		if err := CheckLoopback(t.URL); err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		names[i] = t.Name
	}
	cmp := &Comparison{Reference: names[cc.Reference], Rounds: cc.Rounds}
	var runErr error
rounds:
	for round := 0; round < cc.Rounds; round++ {
		order := make([]int, len(cc.Targets))
		for i := range order {
			order[i] = i
			if round%2 == 1 {
				order[i] = len(order) - 1 - i
			}
		}
		for _, sc := range cc.Scenarios {
			for _, ti := range order {
				t := cc.Targets[ti]
				cfg := cc.Base
				cfg.Registry, cfg.Username, cfg.Password, cfg.PID = t.URL, t.Username, t.Password, t.PID
				progress(cfg, "round %d/%d, %s, %s", round+1, cc.Rounds, sc, t.Name)
				res, err := Run(ctx, cfg, []string{sc})
				for _, r := range res {
					cmp.Runs = append(cmp.Runs, RoundResult{Round: round, Target: t.Name, Result: r})
				}
				if err != nil {
					runErr = fmt.Errorf("round %d, %s: %w", round+1, t.Name, err)
					break rounds
				}
			}
		}
	}
	cmp.Summary = Summarize(cmp.Runs, names, names[cc.Reference], cc.Scenarios)
	return cmp, runErr
}

// WriteComparison writes the summary as aligned text: per scenario and
// target the medians over the rounds, and the median ratio to the
// reference with its min–max spread.
func WriteComparison(w io.Writer, c *Comparison) error {
	var b strings.Builder
	fmt.Fprintf(&b, "medians over %d round(s); ratio = target/%s of the metric, median [min–max] over rounds\n", c.Rounds, c.Reference)
	fmt.Fprintf(&b, "%-22s %-20s %10s %9s %10s %10s %8s %9s %6s  %s\n",
		"scenario", "target", "ops/s", "MB/s", "p50", "p99", "cpu s", "RSS MiB", "errors", "ratio")
	for _, s := range c.Summary {
		better := "higher is better"
		if !s.Higher {
			better = "lower is better"
		}
		for _, t := range s.Targets {
			mb, cpu, rss := "-", "-", "-"
			if t.MBPerS.Median > 0 {
				mb = fmt.Sprintf("%.1f", t.MBPerS.Median)
			}
			if t.PeakRSSMiB.N > 0 {
				cpu = fmt.Sprintf("%.2f", t.CPUSeconds.Median)
				rss = fmt.Sprintf("%.1f", t.PeakRSSMiB.Median)
			}
			ratio := "(reference)"
			if t.Target != c.Reference {
				ratio = "-"
				if t.Ratio.N > 0 {
					ratio = fmt.Sprintf("%.2f× %s [%.2f–%.2f] (%s)", t.Ratio.Median, s.Metric, t.Ratio.Min, t.Ratio.Max, better)
				}
				if t.RSSRatio.N > 0 {
					ratio += fmt.Sprintf("; RSS %.2f× [%.2f–%.2f]", t.RSSRatio.Median, t.RSSRatio.Min, t.RSSRatio.Max)
				}
			}
			fmt.Fprintf(&b, "%-22s %-20s %10.1f %9s %10s %10s %8s %9s %6d  %s\n",
				s.Scenario, t.Target, t.OpsPerS.Median, mb, ms(t.P50Ms.Median), ms(t.P99Ms.Median), cpu, rss, t.Errors, ratio)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(v float64) string {
	return round(time.Duration(v * float64(time.Millisecond)))
}
