package deploy

import (
	"strings"
	"testing"

	"keppel/internal/config"
)

// TestEveryVariableIsDocumented checks that docs/configuration.md names
// every environment variable that the configuration reads.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	doc := string(readFile(t, "docs/configuration.md"))
	for _, name := range config.EnvironmentVariables() {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/configuration.md does not describe %s", name)
		}
	}
}

// TestEveryMetricIsDocumented checks that docs/operator-guide.md names
// every metric that the code registers.
func TestEveryMetricIsDocumented(t *testing.T) {
	t.Parallel()
	guide := string(readFile(t, "docs/operator-guide.md"))
	for name := range registeredMetrics(t) {
		if !strings.Contains(guide, "`"+name) {
			t.Errorf("docs/operator-guide.md does not describe the metric %s", name)
		}
	}
}
