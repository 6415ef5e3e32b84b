package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/test"
)

// trivyBuild is how to build the Trivy that TestTrivyScanner runs.
const trivyBuild = "GOEXPERIMENT=jsonv2 GOBIN=$HOME/.cache/keppel-ci/trivy-v0.74.0 go install github.com/aquasecurity/trivy/cmd/trivy@v0.74.0"

// trivyBinary finds the trivy binary (KEPPEL_TRIVY_BIN, or the cached
// build), or skips the test.
func trivyBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEPPEL_TRIVY_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("KEPPEL_TRIVY_BIN: %v", err)
		}
		return p
	}
	home, err := os.UserHomeDir()
	if err == nil {
		p := filepath.Join(home, ".cache", "keppel-ci", "trivy-v0.74.0", "trivy")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("Trivy v0.74.0 is not built; to run this test: " + trivyBuild + " (or set KEPPEL_TRIVY_BIN)")
	return ""
}

// emptyTrivyDB makes a Trivy cache directory with an empty vulnerability
// database (schema 2), so that a server started with --skip-db-update
// runs offline. The bbolt file is written by a small program built from
// the Go module cache (no network); the test is skipped if that fails.
func emptyTrivyDB(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	dbDir := filepath.Join(cache, "db")
	src := t.TempDir()
	files := map[string]string{
		"go.mod":  "module trivydbstub\n\ngo 1.24\n\nrequire (\n\tgo.etcd.io/bbolt v1.5.0\n\tgolang.org/x/sys v0.47.0\n)\n",
		"main.go": "package main\n\nimport (\n\t\"os\"\n\n\tbolt \"go.etcd.io/bbolt\"\n)\n\nfunc main() {\n\tdb, err := bolt.Open(os.Args[1], 0o644, nil)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tif err := db.Close(); err != nil {\n\t\tpanic(err)\n\t}\n}\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", ".", filepath.Join(dbDir, "trivy.db"))
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot make an empty Trivy DB from the module cache (go.etcd.io/bbolt v1.5.0 and golang.org/x/sys v0.47.0, fetched by the Trivy build): %v\n%s", err, out)
	}
	now := time.Now().UTC()
	meta, _ := json.Marshal(map[string]any{"Version": 2, "NextUpdate": now.Add(24 * time.Hour), "UpdatedAt": now, "DownloadedAt": now})
	if err := os.WriteFile(filepath.Join(dbDir, "metadata.json"), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	return cache
}

// startTrivyServer runs `trivy server` on a loopback port until the test
// ends and returns its URL.
func startTrivyServer(t *testing.T, bin, cache string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "server", "--listen", addr, "--cache-dir", cache, "--skip-db-update", "--quiet")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRIVY_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "http://" + addr
	for range 300 {
		select {
		case <-done:
			t.Fatalf("trivy server exited:\n%s", logs.String())
		default:
		}
		if r, err := http.Get(url + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return url
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("trivy server not ready within 30 s:\n%s", logs.String())
	return ""
}

// trivyStatus waits up to 2 minutes for a manifest's scan to end and
// returns its status and Trivy's report.
func trivyStatus(t *testing.T, s *test.Server, repo string, d v1.Hash) (string, map[string]any) {
	t.Helper()
	account, name, _ := strings.Cut(repo, "/")
	status := ""
	for range 600 {
		r := s.Do(t, "GET", "/keppel/v1/accounts/"+account+"/repositories/"+name+"/_manifests", s.Token(t), nil, nil)
		var list struct {
			Manifests []struct {
				Digest string `json:"digest"`
				Status string `json:"vulnerability_status"`
			} `json:"manifests"`
		}
		_ = json.Unmarshal(r.Body, &list)
		for _, m := range list.Manifests {
			if m.Digest == d.String() {
				status = m.Status
			}
		}
		if status != "" && status != "Pending" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := s.Do(t, "GET", "/keppel/v1/accounts/"+account+"/repositories/"+name+"/_manifests/"+d.String()+"/vulnerability_report", s.Token(t), nil, nil)
	var report map[string]any
	_ = json.Unmarshal(r.Body, &report)
	if r.Header.Get("X-Keppel-Scanner") != "trivy" {
		t.Errorf("report of %s by %q", repo, r.Header.Get("X-Keppel-Scanner"))
	}
	return status, report
}

// TestTrivyScanner runs the real Trivy v0.74.0 in client/server mode
// against the registry: the client pulls the image with the registry's
// scanner token (which does not count as a pull), the server answers from
// an empty offline vulnerability database. So this checks the plumbing,
// the report and the end-of-life mark (Trivy knows Alpine 3.10 is past its
// support without a database), not the matching of vulnerabilities, which
// needs a real database. Skipped unless Trivy is built (see trivyBuild).
func TestTrivyScanner(t *testing.T) {
	t.Parallel()
	bin := trivyBinary(t)
	trivyURL := startTrivyServer(t, bin, emptyTrivyDB(t))
	s := test.NewServer(t, test.Options{Env: map[string]string{
		"KEPPEL_SCAN_SCANNER": "trivy", "KEPPEL_SCAN_TRIVY_URL": trivyURL, "KEPPEL_SCAN_TRIVY_BINARY": bin,
		"KEPPEL_JANITOR_POLL_INTERVAL": "100ms",
	}})
	s.RunJanitor(t)

	alpine := func(release string) v1.Image {
		return imageOf(t, layerOf(t, map[string]string{
			"etc/alpine-release":   release + "\n",
			"etc/os-release":       "ID=alpine\nVERSION_ID=" + release + "\nPRETTY_NAME=\"Alpine Linux v" + release + "\"\n",
			"lib/apk/db/installed": "P:musl\nV:1.2.5-r10\nA:x86_64\no:musl\n\n",
		}))
	}
	for _, c := range []struct {
		repo   string
		img    v1.Image
		status string
	}{
		{"test/alpine322", alpine("3.22.1"), "Clean"},
		{"test/alpine310", alpine("3.10.9"), "Rotten"},
	} {
		if err := remote.Write(ref(t, s, c.repo+":v1"), c.img, adminAuth()); err != nil {
			t.Fatal(err)
		}
		d, err := c.img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		status, report := trivyStatus(t, s, c.repo, d)
		if status != c.status {
			t.Errorf("%s: status %s, want %s; report %v", c.repo, status, c.status, report)
		}
		if name, _ := report["ArtifactName"].(string); !strings.HasSuffix(name, c.repo+"@"+d.String()) {
			t.Errorf("%s: Trivy's report is not there: %v", c.repo, report)
		}
	}

	s.FlushPulls(t)
	r := s.Do(t, "GET", "/keppel/v1/accounts/test/repositories/alpine322/_manifests", s.Token(t), nil, nil)
	var body struct {
		Manifests []struct {
			LastPulledAt *int64 `json:"last_pulled_at"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Manifests) != 1 || body.Manifests[0].LastPulledAt != nil {
		t.Errorf("the scanner's pull counted as a pull: %s", r.Body)
	}
}
