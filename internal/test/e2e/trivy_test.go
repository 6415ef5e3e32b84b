package e2e

import (
	"context"
	"encoding/json"
	"fmt"
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

// trivyAdvisory is one advisory of the test's Trivy database: a package of
// an OS release (Trivy's bucket name, e.g. "alpine 3.22") fixed in a
// version, with the vulnerability's details.
type trivyAdvisory struct {
	Bucket, Package, ID, FixedVersion string
	// Severity is Trivy's name (LOW … CRITICAL).
	Severity, Title string
}

// trivyAdvisories are the advisories of the test's database. Alpine 3.22
// is too new for a real one to be stable, so its busybox advisory is made
// up; the musl one of Alpine 3.10 is real (Alpine's secdb lists
// CVE-2020-28928 as fixed in 1.1.22-r4, NVD rates it MEDIUM).
var trivyAdvisories = []trivyAdvisory{
	{"alpine 3.22", "busybox", "ALPINE-TEST-0001", "1.37.0-r19", "HIGH", "busybox: test advisory of the Keppel test suite"},
	{"alpine 3.10", "musl", "CVE-2020-28928", "1.1.22-r4", "MEDIUM", "musl: wcsnrtombs mishandles particular combinations of destination buffer size and source character limit"},
}

// trivyDBWriter is a small program that writes a bbolt file from a list
// of (bucket path, key, JSON value) entries.
const trivyDBWriter = `package main

import (
	"encoding/json"
	"os"

	bolt "go.etcd.io/bbolt"
)

type entry struct {
	Buckets []string
	Key     string
	Value   json.RawMessage
}

func main() {
	spec, err := os.ReadFile(os.Args[2])
	check(err)
	var entries []entry
	check(json.Unmarshal(spec, &entries))
	db, err := bolt.Open(os.Args[1], 0o644, nil)
	check(err)
	check(db.Update(func(tx *bolt.Tx) error {
		for _, e := range entries {
			b, err := tx.CreateBucketIfNotExists([]byte(e.Buckets[0]))
			if err != nil {
				return err
			}
			for _, name := range e.Buckets[1:] {
				if b, err = b.CreateBucketIfNotExists([]byte(name)); err != nil {
					return err
				}
			}
			if err := b.Put([]byte(e.Key), e.Value); err != nil {
				return err
			}
		}
		return nil
	}))
	check(db.Close())
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
`

// trivyDBEntries lays the advisories out as Trivy's database (schema 2)
// has them: "<OS> <release>" → package → vulnerability ID → the advisory
// (FixedVersion); "vulnerability" → ID → its details (Title, Severity and
// the vendor severities, by which Trivy rates a finding); "data-source" →
// "<OS> <release>" → where the release's advisories come from.
func trivyDBEntries(t *testing.T) []byte {
	t.Helper()
	type entry struct {
		Buckets []string
		Key     string
		Value   any
	}
	severities := map[string]int{"UNKNOWN": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
	var entries []entry
	for _, a := range trivyAdvisories {
		family, _, _ := strings.Cut(a.Bucket, " ")
		entries = append(entries,
			entry{[]string{a.Bucket, a.Package}, a.ID, map[string]any{"FixedVersion": a.FixedVersion}},
			entry{[]string{"vulnerability"}, a.ID, map[string]any{
				"Title": a.Title, "Severity": a.Severity,
				"VendorSeverity": map[string]int{"nvd": severities[a.Severity]},
			}},
			entry{[]string{"data-source"}, a.Bucket, map[string]any{"ID": family, "Name": "Alpine Secdb", "URL": "https://secdb.alpinelinux.org/"}},
		)
	}
	buf, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// trivyDB makes a Trivy cache directory with a vulnerability database
// (schema 2) of trivyAdvisories, so that a server started with
// --skip-db-update runs offline. The bbolt file is written by a small
// program built from the Go module cache (no network), with the bbolt
// version that Trivy uses; the test is skipped if that fails.
func trivyDB(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	dbDir := filepath.Join(cache, "db")
	src := t.TempDir()
	files := map[string]string{
		"go.mod":       "module trivydbwriter\n\ngo 1.24\n\nrequire (\n\tgo.etcd.io/bbolt v1.5.0\n\tgolang.org/x/sys v0.47.0\n)\n",
		"main.go":      trivyDBWriter,
		"entries.json": string(trivyDBEntries(t)),
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
	cmd := exec.CommandContext(ctx, "go", "run", ".", filepath.Join(dbDir, "trivy.db"), "entries.json")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot make the Trivy DB from the module cache (go.etcd.io/bbolt v1.5.0 and golang.org/x/sys v0.47.0, fetched by the Trivy build): %v\n%s", err, out)
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
		if status = manifestStatus(t, s, repo, d); status != "" && status != "Pending" {
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

// trivyFindings lists the vulnerabilities of a Trivy report as
// "ID package installed→fixed severity (data source)".
func trivyFindings(report map[string]any) []string {
	var out []string
	results, _ := report["Results"].([]any)
	for _, r := range results {
		vulns, _ := r.(map[string]any)["Vulnerabilities"].([]any)
		for _, v := range vulns {
			m, _ := v.(map[string]any)
			source, _ := m["DataSource"].(map[string]any)
			out = append(out, fmt.Sprintf("%v %v %v→%v %v (%v)", m["VulnerabilityID"], m["PkgName"], m["InstalledVersion"], m["FixedVersion"], m["Severity"], source["ID"]))
		}
	}
	return out
}

// trivyAlpineImage is an Alpine image with musl and busybox.
func trivyAlpineImage(t *testing.T, release, musl, busybox string) v1.Image {
	return imageOf(t, layerOf(t, map[string]string{
		"etc/alpine-release": release + "\n",
		"etc/os-release":     "ID=alpine\nVERSION_ID=" + release + "\nPRETTY_NAME=\"Alpine Linux v" + release + "\"\n",
		"lib/apk/db/installed": "P:musl\nV:" + musl + "\nA:x86_64\no:musl\n\n" +
			"P:busybox\nV:" + busybox + "\nA:x86_64\no:busybox\n\n",
	}))
}

// TestTrivyScanner runs the real Trivy v0.74.0 in client/server mode
// against the registry: the client pulls the image with the registry's
// scanner token (which does not count as a pull), the server answers from
// an offline vulnerability database in Trivy's own format with two
// advisories (trivyAdvisories). An Alpine 3.22 image with the vulnerable
// busybox is High, with the advisory and its fixed version in the stored
// report; the patched image is Clean; Alpine 3.10 is Rotten (past its
// support) with the real musl advisory still listed; a security scan
// policy that ignores the busybox advisory makes the vulnerable image
// Clean. Skipped unless Trivy is built (see trivyBuild).
func TestTrivyScanner(t *testing.T) {
	t.Parallel()
	bin := trivyBinary(t)
	trivyURL := startTrivyServer(t, bin, trivyDB(t))
	s := test.NewServer(t, test.Options{Env: map[string]string{
		"KEPPEL_SCAN_SCANNER": "trivy", "KEPPEL_SCAN_TRIVY_URL": trivyURL, "KEPPEL_SCAN_TRIVY_BINARY": bin,
		"KEPPEL_JANITOR_POLL_INTERVAL": "100ms",
	}})
	s.RunJanitor(t)

	cases := []struct {
		repo     string
		img      v1.Image
		status   string
		findings []string
	}{
		{"test/alpine322", trivyAlpineImage(t, "3.22.1", "1.2.5-r10", "1.37.0-r18"), "High",
			[]string{"ALPINE-TEST-0001 busybox 1.37.0-r18→1.37.0-r19 HIGH (alpine)"}},
		{"test/alpine322fixed", trivyAlpineImage(t, "3.22.1", "1.2.5-r10", "1.37.0-r19"), "Clean", nil},
		{"test/alpine310", trivyAlpineImage(t, "3.10.9", "1.1.22-r3", "1.30.1-r5"), "Rotten",
			[]string{"CVE-2020-28928 musl 1.1.22-r3→1.1.22-r4 MEDIUM (alpine)"}},
	}
	digests := map[string]v1.Hash{}
	for _, c := range cases {
		if err := remote.Write(ref(t, s, c.repo+":v1"), c.img, adminAuth()); err != nil {
			t.Fatal(err)
		}
		d, err := c.img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[c.repo] = d
	}
	for _, c := range cases {
		d := digests[c.repo]
		status, report := trivyStatus(t, s, c.repo, d)
		findings := trivyFindings(report)
		if status != c.status || strings.Join(findings, "; ") != strings.Join(c.findings, "; ") {
			t.Errorf("%s: status %s with %q, want %s with %q; report %v", c.repo, status, findings, c.status, c.findings, report)
		}
		if name, _ := report["ArtifactName"].(string); !strings.HasSuffix(name, c.repo+"@"+d.String()) {
			t.Errorf("%s: Trivy's report is not there: %v", c.repo, report)
		}
	}

	// a policy that ignores the busybox advisory: Clean after the rescan
	policies := `{"policies":[{"match_repository":"alpine322","match_vulnerability_id":"ALPINE-TEST-0001","action":{"assessment":"busybox is not used","ignore":true}}]}`
	if r := s.Do(t, "PUT", "/keppel/v1/accounts/test/security_scan_policies", s.Token(t), nil, strings.NewReader(policies)); r.Status != http.StatusOK {
		t.Fatalf("PUT security_scan_policies: %d %s", r.Status, r.Body)
	}
	waitStatus(t, s, "test/alpine322", digests["test/alpine322"], "Clean")
	waitStatus(t, s, "test/alpine310", digests["test/alpine310"], "Rotten")

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
