package deploy

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"

	"keppel/internal/test"
)

// TestServerServesWhatDeploymentsProbe starts an in-process registry and
// checks that it serves the paths that the deployment files probe and
// scrape, and that every keppel_ metric on its /metrics is one that
// registeredMetrics finds in the sources (so that the alert check cannot
// miss a metric that is registered in another way).
func TestServerServesWhatDeploymentsProbe(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	get := func(path string, want int) string {
		t.Helper()
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %s, want %d", path, resp.Status, want)
		}
		return string(body)
	}
	get("/healthcheck", http.StatusOK)
	// one request through the API, so that the request histogram has a series
	get("/v2/", http.StatusUnauthorized)
	metrics := get("/metrics", http.StatusOK)

	known := registeredMetrics(t)
	exposed := 0
	sc := bufio.NewScanner(strings.NewReader(metrics))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "#" || fields[1] != "TYPE" || !strings.HasPrefix(fields[2], "keppel_") {
			continue
		}
		exposed++
		if !known[fields[2]] {
			t.Errorf("the server exposes %s, which the search of the sources does not find", fields[2])
		}
	}
	if exposed == 0 {
		t.Errorf("/metrics shows no keppel_ metric:\n%s", metrics)
	}
}
