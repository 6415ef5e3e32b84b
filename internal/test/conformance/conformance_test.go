// Package conformance runs the OCI distribution-spec conformance suite
// against the real keppel binary, on SQLite + filesystem, on PostgreSQL +
// filesystem, on PostgreSQL + S3 (a real S3 server) and on PostgreSQL +
// Swift (a real Swift), through the token flow. The suite's binary is
// given by KEPPEL_CONFORMANCE_BIN (scripts/test.sh builds it); without it the
// tests are skipped.
package conformance

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"keppel/internal/test"
)

func TestConformanceSQLite(t *testing.T) {
	runConformance(t, nil)
}

func TestConformancePostgres(t *testing.T) {
	if os.Getenv("KEPPEL_CONFORMANCE_BIN") == "" {
		t.Skip("KEPPEL_CONFORMANCE_BIN is not set; scripts/test.sh sets it")
	}
	url := test.PostgresDatabase(t)
	runConformance(t, []string{"KEPPEL_DB_URL=" + url})
}

func TestConformancePostgresS3(t *testing.T) {
	if os.Getenv("KEPPEL_CONFORMANCE_BIN") == "" {
		t.Skip("KEPPEL_CONFORMANCE_BIN is not set; scripts/test.sh sets it")
	}
	s3 := test.StartS3(t)
	env := append(s3.Env(s3.Bucket(t)), "KEPPEL_DB_URL="+test.PostgresDatabase(t))
	runConformance(t, env)
}

func TestConformancePostgresSwift(t *testing.T) {
	if os.Getenv("KEPPEL_CONFORMANCE_BIN") == "" {
		t.Skip("KEPPEL_CONFORMANCE_BIN is not set; scripts/test.sh sets it")
	}
	swift := test.SwiftFromEnvironment(t)
	runConformance(t, append(swift.Env(t), "KEPPEL_DB_URL="+test.PostgresDatabase(t)))
}

func runConformance(t *testing.T, extraEnv []string) {
	suite := os.Getenv("KEPPEL_CONFORMANCE_BIN")
	if suite == "" {
		t.Skip("KEPPEL_CONFORMANCE_BIN is not set; scripts/test.sh sets it")
	}
	p := test.StartKeppel(t, extraEnv...)
	p.CreateAccount(t, "conformance", "conformance")

	results := t.TempDir()
	cmd := exec.Command(suite)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+p.Addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_USERNAME=admin",
		"OCI_PASSWORD="+test.AdminPassword,
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
	// A skip means the suite found a feature missing (e.g. a mount that
	// fell back to an upload): that is a regression too.
	if skipped != 0 {
		t.Fatalf("%d conformance checks skipped", skipped)
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
