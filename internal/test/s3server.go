package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a real S3 server for tests: versitygw serving a temporary
// directory on a loopback port.
type S3Server struct {
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string
	// DataDir is the directory versitygw stores buckets and objects in.
	DataDir string
	Client  *s3.Client
}

// versitygwBinary finds the versitygw binary: $KEPPEL_VERSITYGW_BIN, the
// tool cache of scripts/test.sh, or $PATH.
func versitygwBinary() string {
	return toolBinary("KEPPEL_VERSITYGW_BIN", "versitygw-*", "versitygw")
}

// toolBinary finds the binary of a tool that scripts/test.sh builds: named
// by the environment variable, in the tool cache ($KEPPEL_CACHE_DIR or
// ~/.cache/keppel-ci, below a directory matching cacheDirGlob; the newest
// by name), or in $PATH. It returns "" if there is none.
func toolBinary(envVar, cacheDirGlob, name string) string {
	if bin := os.Getenv(envVar); bin != "" {
		return bin
	}
	cache := os.Getenv("KEPPEL_CACHE_DIR")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "keppel-ci")
		}
	}
	if cache != "" {
		if bins, _ := filepath.Glob(filepath.Join(cache, cacheDirGlob, name)); len(bins) > 0 && isExecutable(bins[len(bins)-1]) {
			return bins[len(bins)-1]
		}
	}
	if bin, err := exec.LookPath(name); err == nil {
		return bin
	}
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// StartS3 starts an S3 server for the test and stops it when the test
// ends. Without a versitygw binary the test is skipped, unless
// KEPPEL_TEST_REQUIRE_S3 is set (as scripts/test.sh does), in which case it
// fails.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin := versitygwBinary()
	if bin == "" {
		if os.Getenv("KEPPEL_TEST_REQUIRE_S3") != "" {
			t.Fatal("no versitygw binary: set KEPPEL_VERSITYGW_BIN or run scripts/test.sh, which builds it")
		}
		t.Skip("no versitygw binary (scripts/test.sh builds one); skipping the tests against a real S3 server")
	}
	dir := t.TempDir()
	dataDir, iamDir := filepath.Join(dir, "data"), filepath.Join(dir, "iam")
	for _, d := range []string{dataDir, iamDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	srv := &S3Server{Region: "us-east-1", AccessKey: "keppeltest", SecretKey: randomHex(16), DataDir: dataDir}
	var cmd *exec.Cmd
	var log *os.File
	for attempt := 0; ; attempt++ {
		addr := FreeAddress(t)
		srv.Endpoint = "http://" + addr
		var err error
		log, err = os.Create(filepath.Join(dir, "versitygw.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(bin, "--port", addr, "--access", srv.AccessKey, "--secret", srv.SecretKey,
			"--region", srv.Region, "--iam-dir", iamDir, "--health", "/health", "--keep-alive", "--quiet",
			"posix", dataDir)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting versitygw: %v", err)
		}
		if waitHealthy(srv.Endpoint+"/health", 10*time.Second) {
			break
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
		if attempt == 2 {
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("versitygw did not become healthy:\n%s", out)
		}
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			log.Close()
		})
	})
	srv.Client = s3.New(s3.Options{
		Region: srv.Region, BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return srv
}

func waitHealthy(url string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Bucket creates a bucket with a fresh name and returns the name.
func (s *S3Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "keppel-test-" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

// Env returns the KEPPEL_* variables that point a keppel process at the
// bucket on this server.
func (s *S3Server) Env(bucket string) []string {
	return []string{
		"KEPPEL_STORAGE_DRIVER=s3",
		"KEPPEL_S3_ENDPOINT=" + s.Endpoint,
		"KEPPEL_S3_REGION=" + s.Region,
		"KEPPEL_S3_ACCESS_KEY_ID=" + s.AccessKey,
		"KEPPEL_S3_SECRET_ACCESS_KEY=" + s.SecretKey,
		"KEPPEL_S3_PATH_STYLE=true",
		"KEPPEL_S3_BUCKET=" + bucket,
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
