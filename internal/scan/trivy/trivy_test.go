package trivy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"keppel/internal/scan"
)

const testDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

// imageManifest is an image manifest as the registry hands it over.
var imageManifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
	`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + testDigest + `","size":2},"layers":[]}`)

// execMu keeps the parallel tests from starting a process while another
// one writes its fake executable: a child forked in that moment inherits
// the open file, and executing the file then fails with "text file busy".
var execMu sync.RWMutex

// fakeTrivy writes an executable that records its arguments and
// environment in dir and then runs body (a shell snippet).
func fakeTrivy(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "trivy")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > '" + dir + "/args'\nenv > '" + dir + "/env'\n" + body + "\n"
	execMu.Lock()
	err := os.WriteFile(path, []byte(script), 0o755)
	execMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

type fixture struct {
	dir, tmp string
	scanner  *Scanner
	repos    []string
}

func newFixture(t *testing.T, registryURL, body string, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), tmp: t.TempDir()}
	bin := fakeTrivy(t, f.dir, body)
	s, err := New(Config{Binary: bin, ServerURL: "http://127.0.0.1:4954", RegistryURL: registryURL,
		Token: func(_ context.Context, repository string) (string, error) {
			f.repos = append(f.repos, repository)
			return "token-for-" + repository, nil
		}}, append([]Option{WithTempDir(f.tmp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.scanner = s
	return f
}

func (f *fixture) scan(t *testing.T) (scan.Result, error) {
	t.Helper()
	execMu.RLock()
	defer execMu.RUnlock()
	return f.scanner.Scan(context.Background(), scan.Image{Repository: "test/app", Digest: testDigest,
		MediaType: "application/vnd.oci.image.manifest.v1+json", Manifest: imageManifest})
}

func (f *fixture) recorded(t *testing.T, name string) []string {
	t.Helper()
	buf, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(buf), "\n"), "\n")
}

func catReport(t *testing.T, file string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return "cat '" + abs + "'"
}

func TestScanArgumentsAndEnvironment(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		registryURL string
		host        string
		insecure    bool
	}{
		{"https://registry.example", "registry.example", false},
		{"http://127.0.0.1:5000", "127.0.0.1:5000", true},
	} {
		t.Run(c.registryURL, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, c.registryURL, catReport(t, "report.json"))
			if _, err := f.scan(t); err != nil {
				t.Fatal(err)
			}
			want := []string{"image", "--server", "http://127.0.0.1:4954", "--format", "json", "--quiet", "--scanners", "vuln"}
			if c.insecure {
				want = append(want, "--insecure")
			}
			want = append(want, c.host+"/test/app@"+testDigest)
			if got := f.recorded(t, "args"); !slices.Equal(got, want) {
				t.Errorf("arguments %q, want %q", got, want)
			}
			if !slices.Equal(f.repos, []string{"test/app"}) {
				t.Errorf("tokens issued for %q", f.repos)
			}
			var trivyVars []string
			for _, kv := range f.recorded(t, "env") {
				if strings.HasPrefix(kv, "TRIVY_") {
					trivyVars = append(trivyVars, kv)
				}
			}
			slices.Sort(trivyVars)
			if len(trivyVars) != 2 || trivyVars[1] != "TRIVY_REGISTRY_TOKEN=token-for-test/app" ||
				!strings.HasPrefix(trivyVars[0], "TRIVY_CACHE_DIR="+f.tmp+"/keppel-trivy-") {
				t.Errorf("Trivy's environment: %q", trivyVars)
			}
			left, err := os.ReadDir(f.tmp)
			if err != nil || len(left) != 0 {
				t.Errorf("left behind in the temporary directory: %v %v", left, err)
			}
		})
	}
}

func TestChildEnvDropsTrivyVariables(t *testing.T) {
	t.Parallel()
	got := childEnv([]string{"PATH=/bin", "TRIVY_USERNAME=alice", "trivy_password=x", "HOME=/root", "TRIVY_SERVER=http://elsewhere"})
	if want := []string{"PATH=/bin", "HOME=/root"}; !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
}

func TestScanResults(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		report   string
		status   scan.Status
		findings []scan.Finding
	}{
		{"vulnerable", `@report.json`, scan.High, []scan.Finding{
			{ID: "CVE-2025-0001", Severity: scan.Medium, FixReleased: true},
			{ID: "CVE-2025-0002", Severity: scan.High},
			{ID: "GHSA-xxxx-yyyy-zzzz", Severity: scan.Low, FixReleased: true},
		}},
		{"clean", `{"SchemaVersion":2,"Metadata":{"OS":{"Family":"alpine","Name":"3.22.1"}},"Results":[{"Target":"x","Class":"os-pkgs"}]}`, scan.Clean, nil},
		{"no results", `{"SchemaVersion":2}`, scan.Clean, nil},
		{"unknown severity", `{"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"UNKNOWN"},{"VulnerabilityID":"CVE-2","Severity":"whatever"}]}]}`,
			scan.Unknown, []scan.Finding{{ID: "CVE-1", Severity: scan.Unknown}, {ID: "CVE-2", Severity: scan.Unknown}}},
		{"critical", `{"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"LOW"},{"VulnerabilityID":"CVE-2","Severity":"CRITICAL","FixedVersion":"2"}]}]}`,
			scan.Critical, []scan.Finding{{ID: "CVE-1", Severity: scan.Low}, {ID: "CVE-2", Severity: scan.Critical, FixReleased: true}}},
		{"end of life", `{"Metadata":{"OS":{"Family":"alpine","Name":"3.10.9","EOSL":true}},"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"LOW"}]}]}`,
			scan.Rotten, []scan.Finding{{ID: "CVE-1", Severity: scan.Low}}},
		{"end of life and clean", `{"Metadata":{"OS":{"Family":"debian","Name":"9.13","EOSL":true}}}`, scan.Rotten, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			body := "cat <<'END'\n" + c.report + "\nEND"
			if file, ok := strings.CutPrefix(c.report, "@"); ok {
				body = catReport(t, file)
			}
			f := newFixture(t, "https://registry.example", body)
			res, err := f.scan(t)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != c.status || !slices.Equal(res.Findings, c.findings) {
				t.Errorf("status %s, findings %+v; want %s, %+v", res.Status, res.Findings, c.status, c.findings)
			}
			if !json.Valid(res.Report) {
				t.Errorf("report is not JSON: %s", res.Report)
			}
			if file, ok := strings.CutPrefix(c.report, "@"); ok {
				want, _ := os.ReadFile(filepath.Join("testdata", file))
				if string(res.Report) != string(want) {
					t.Errorf("the report is not Trivy's as it is")
				}
			}
		})
	}
}

func TestScanFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		body    string
		opts    []Option
		status  scan.Status // for Unsupported
		wantErr string
	}{
		{"unsupported media type", `echo '2026-01-01T00:00:00Z	FATAL	Fatal error	run error: image scan error: unsupported MediaType: "application/x-thing"' >&2; exit 1`,
			nil, scan.Unsupported, ""},
		{"unsupported artifact type", `echo 'FATAL unsupported artifact type "application/vnd.example"' >&2; exit 1`, nil, scan.Unsupported, ""},
		{"server down", `echo 'INFO starting' >&2; echo 'FATAL	Fatal error	connection refused' >&2; exit 1`, nil, "", "connection refused"},
		{"no JSON", `echo 'this is not JSON'`, nil, "", "reading the Trivy report"},
		{"empty output", `exit 0`, nil, "", "reading the Trivy report"},
		{"vulnerability without ID", `echo '{"Results":[{"Vulnerabilities":[{"PkgName":"x","Severity":"LOW"}]}]}'`, nil, "", "no ID"},
		{"timeout", `exec sleep 30`, []Option{WithTimeout(200 * time.Millisecond)}, "", "no result within 200ms"},
		{"report too large", `head -c 1000000 /dev/zero | tr '\000' a`, []Option{WithMaxReport(4096)}, "", "larger than 4096 bytes"},
		{"binary missing", "", nil, "", "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "https://registry.example", c.body, c.opts...)
			if c.name == "binary missing" {
				f.scanner.binary = filepath.Join(f.dir, "missing")
			}
			start := time.Now()
			res, err := f.scan(t)
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if c.status != "" {
				var reason struct{ Unsupported string }
				if err != nil || res.Status != c.status || json.Unmarshal(res.Report, &reason) != nil || !strings.Contains(strings.ToLower(reason.Unsupported), "unsupported") {
					t.Fatalf("result %s %s, error %v; want %s with a reason", res.Status, res.Report, err, c.status)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one with %q", err, c.wantErr)
			}
			left, _ := os.ReadDir(f.tmp)
			if len(left) != 0 {
				t.Errorf("left behind in the temporary directory: %v", left)
			}
		})
	}
}

func TestScanSkipsArtifactsAndReportsTokenErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "https://registry.example", "echo should not run; exit 1")
	execMu.RLock()
	res, err := f.scanner.Scan(context.Background(), scan.Image{Repository: "test/app", Digest: testDigest,
		Manifest: []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json"}}`)})
	execMu.RUnlock()
	if err != nil || res.Status != scan.Unsupported || !strings.Contains(string(res.Report), "helm") {
		t.Fatalf("artifact: %s %s %v", res.Status, res.Report, err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "args")); err == nil {
		t.Error("trivy ran for an artifact")
	}
	f.scanner.token = func(context.Context, string) (string, error) { return "", errors.New("no key") }
	if _, err := f.scan(t); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Fatalf("token failure: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	token := func(context.Context, string) (string, error) { return "", nil }
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{RegistryURL: "https://r.example", Token: token}, "server URL is missing"},
		{Config{ServerURL: "127.0.0.1:4954", RegistryURL: "https://r.example", Token: token}, "http(s) URL"},
		{Config{ServerURL: "http://127.0.0.1:4954", RegistryURL: "https://r.example"}, "token"},
		{Config{ServerURL: "http://127.0.0.1:4954", RegistryURL: "r.example", Token: token}, "registry URL"},
		{Config{ServerURL: "http://127.0.0.1:4954", RegistryURL: "https://r.example/path", Token: token}, "registry URL"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", c.cfg, err, c.want)
		}
	}
	s, err := New(Config{ServerURL: "http://127.0.0.1:4954", RegistryURL: "https://r.example/", Token: token})
	if err != nil || s.binary != "trivy" || s.host != "r.example" || s.insecure || s.Name() != "trivy" {
		t.Fatalf("defaults: %+v %v", s, err)
	}
}

func FuzzParseReport(f *testing.F) {
	if buf, err := os.ReadFile("testdata/report.json"); err == nil {
		f.Add(buf)
	}
	f.Add([]byte(`{"Metadata":{"OS":{"EOSL":true}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, buf []byte) {
		res, err := ParseReport(buf)
		if err != nil {
			return
		}
		if !res.Status.Valid() || res.Status == scan.Pending || res.Status == scan.Unsupported || res.Status == scan.Error {
			t.Fatalf("status %q", res.Status)
		}
		for _, fi := range res.Findings {
			if fi.ID == "" || !fi.Severity.Valid() {
				t.Fatalf("finding %+v", fi)
			}
		}
	})
}
