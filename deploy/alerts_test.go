package deploy

import (
	"regexp"
	"strings"
	"testing"
)

// healthMonitorMetrics are the metrics of the health monitor, which the
// alert rules may use before its code registers them.
var healthMonitorMetrics = map[string]bool{
	"keppel_healthmonitor_result":                         true,
	"keppel_healthmonitor_last_success_timestamp_seconds": true,
	"keppel_healthmonitor_duration_seconds":               true,
	"keppel_healthmonitor_checks_total":                   true,
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var exprMetricPattern = regexp.MustCompile(`\bkeppel_[a-z0-9_]+`)

// metricBase strips the suffixes of the series of a histogram or summary.
func metricBase(name string) []string {
	out := []string{name}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			out = append(out, base)
		}
	}
	return out
}

func TestAlertRulesUseRealMetrics(t *testing.T) {
	t.Parallel()
	known := registeredMetrics(t)
	files := yamlDocuments[ruleFile](t, "deploy/prometheus/alerts.yaml")
	if len(files) != 1 || len(files[0].Groups) == 0 {
		t.Fatal("deploy/prometheus/alerts.yaml has no rule groups")
	}
	if !strings.Contains(string(readFile(t, "docs/operator-guide.md")), "deploy/prometheus/alerts.yaml") {
		t.Error("docs/operator-guide.md does not point at deploy/prometheus/alerts.yaml")
	}
	used := 0
	seen := map[string]bool{}
	for _, g := range files[0].Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q of group %s needs alert, expr, a severity label and a summary", r.Alert, g.Name)
			}
			if seen[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			for _, name := range exprMetricPattern.FindAllString(r.Expr, -1) {
				used++
				ok := false
				for _, base := range metricBase(name) {
					ok = ok || known[base] || healthMonitorMetrics[base]
				}
				if !ok {
					t.Errorf("alert %s uses %s, which the code does not register", r.Alert, name)
				}
			}
		}
	}
	if used == 0 {
		t.Error("no alert uses a keppel_ metric")
	}
}
