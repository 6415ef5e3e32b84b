package test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// distributionBinary finds the CNCF Distribution registry binary:
// $KEPPEL_DISTRIBUTION_BIN, the tool cache of scripts/test.sh, or $PATH.
func distributionBinary() string {
	return toolBinary("KEPPEL_DISTRIBUTION_BIN", "distribution-*", "registry")
}

// StartDistribution starts the CNCF Distribution registry (anonymous
// access, filesystem storage in a temporary directory) on a loopback port
// and returns its address (host:port). Without the binary the test is
// skipped, unless KEPPEL_TEST_REQUIRE_DISTRIBUTION is set (as
// scripts/test.sh does), in which case it fails.
func StartDistribution(t testing.TB) string {
	t.Helper()
	bin := distributionBinary()
	if bin == "" {
		if os.Getenv("KEPPEL_TEST_REQUIRE_DISTRIBUTION") != "" {
			t.Fatal("no Distribution registry binary: set KEPPEL_DISTRIBUTION_BIN or run scripts/test.sh, which builds it")
		}
		t.Skip("no Distribution registry binary (KEPPEL_DISTRIBUTION_BIN)")
	}
	addr := FreeAddress(t)
	dir := t.TempDir()
	cfg := "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: " + dir + "/data\n  delete:\n    enabled: true\nhttp:\n  addr: " + addr + "\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if !waitHealthy("http://"+addr+"/v2/", 30*time.Second) {
		t.Fatalf("the Distribution registry did not start:\n%s", out.String())
	}
	return addr
}

// CountingProxy is a reverse proxy on a loopback port that counts the
// requests it forwards by method and path.
type CountingProxy struct {
	// Host is the proxy's address (host:port).
	Host string

	mu     sync.Mutex
	counts map[string]int
	// down, while set, answers every request with 502.
	down bool
}

// StartCountingProxy starts a proxy in front of the HTTP server at
// backendHost for the test.
func StartCountingProxy(t testing.TB, backendHost string) *CountingProxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: backendHost}
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &CountingProxy{counts: map[string]int{}}
	// Token realms point at the proxy too, so that clients fetch their
	// tokens through it.
	rp.ModifyResponse = func(resp *http.Response) error {
		if v := resp.Header.Get("Www-Authenticate"); v != "" {
			resp.Header.Set("Www-Authenticate", strings.ReplaceAll(v, `realm="http://`+backendHost, `realm="http://`+p.Host))
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.Method+" "+r.URL.Path]++
		down := p.down
		p.mu.Unlock()
		if down {
			http.Error(w, "backend down", http.StatusBadGateway)
			return
		}
		// The backend sees its own host, as token realms and Location
		// headers refer to it.
		r.Host = backendHost
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// Count returns how often "METHOD /path" was forwarded.
func (p *CountingProxy) Count(methodAndPath string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[methodAndPath]
}

// SetDown makes the proxy answer 502 to everything (true) or forward again.
func (p *CountingProxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}
