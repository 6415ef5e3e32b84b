// Package conformance runs the OCI distribution-spec conformance suite
// against the real keppel binary, once on SQLite + filesystem and once on
// PostgreSQL + filesystem, through the token flow. The suite's binary is
// given by KEPPEL_CONFORMANCE_BIN (scripts/test.sh builds it); without it the
// tests are skipped.
package conformance

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/xml"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

const password = "conformance-password"

func TestConformanceSQLite(t *testing.T) {
	runConformance(t, nil)
}

func TestConformancePostgres(t *testing.T) {
	if os.Getenv("KEPPEL_CONFORMANCE_BIN") == "" {
		t.Skip("KEPPEL_CONFORMANCE_BIN is not set; scripts/test.sh sets it")
	}
	url := createDatabase(t)
	runConformance(t, []string{"KEPPEL_DB_URL=" + url})
}

func createDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("KEPPEL_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "keppel_conformance_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating database (is PostgreSQL running?): %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("dropping database: %v", err)
		}
	})
	return strings.Replace(base, "/postgres?", "/"+name+"?", 1)
}

func buildKeppel(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keppel")
	cmd := exec.Command("go", "build", "-o", bin, "keppel/cmd/keppel")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building keppel: %v", err)
	}
	return bin
}

func freeAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func runConformance(t *testing.T, extraEnv []string) {
	suite := os.Getenv("KEPPEL_CONFORMANCE_BIN")
	if suite == "" {
		t.Skip("KEPPEL_CONFORMANCE_BIN is not set; scripts/test.sh sets it")
	}
	keppel := buildKeppel(t)
	addr := freeAddress(t)
	dataDir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server := exec.CommandContext(ctx, keppel, "server")
	server.Env = append(os.Environ(),
		"KEPPEL_API_LISTEN_ADDRESS="+addr,
		"KEPPEL_DATA_DIR="+dataDir,
		"KEPPEL_ADMIN_PASSWORD="+password,
		"KEPPEL_LOG_LEVEL=warn",
	)
	server.Env = append(server.Env, extraEnv...)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	server.Stdout, server.Stderr = logFile, logFile
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = server.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("server log:\n%s", log)
		}
	})
	waitHealthy(t, "http://"+addr)
	createAccount(t, "http://"+addr, "conformance")

	results := t.TempDir()
	cmd := exec.Command(suite)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_USERNAME=admin",
		"OCI_PASSWORD="+password,
		"OCI_RESULTS_DIR="+results,
		"OCI_VERSION=1.1",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_MANIFESTS_TAG_PARAM=true",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("conformance output:\n%s", out)
	if err != nil {
		t.Errorf("conformance suite exited with %v", err)
	}
	tests, failures, skipped := junitCounts(t, filepath.Join(results, "junit.xml"))
	t.Logf("conformance: %d tests, %d failures, %d skipped", tests, failures, skipped)
	if tests == 0 {
		t.Fatal("the conformance suite ran no tests")
	}
	if failures != 0 {
		t.Fatalf("%d conformance failures", failures)
	}
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("keppel did not become healthy within 30s")
}

func createAccount(t *testing.T, base, name string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/keppel/v1/accounts/"+name,
		strings.NewReader(`{"account":{"auth_tenant_id":"conformance"}}`))
	req.SetBasicAuth("admin", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating account: HTTP %d", resp.StatusCode)
	}
}

type junitSuites struct {
	Suites []struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Skipped  int `xml:"skipped,attr"`
	} `xml:"testsuite"`
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
}

func junitCounts(t *testing.T, path string) (tests, failures, skipped int) {
	t.Helper()
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading conformance results: %v", err)
	}
	var s junitSuites
	if err := xml.Unmarshal(buf, &s); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	if len(s.Suites) == 0 {
		return s.Tests, s.Failures + s.Errors, s.Skipped
	}
	for _, suite := range s.Suites {
		tests += suite.Tests
		failures += suite.Failures + suite.Errors
		skipped += suite.Skipped
	}
	return tests, failures, skipped
}
