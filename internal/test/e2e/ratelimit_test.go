package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/test"
)

func TestRateLimitInProcess(t *testing.T) {
	t.Parallel()
	runRateLimit(t, map[string]string{})
}

// TestRateLimitRedis shares the limits through the Redis server of
// KEPPEL_TEST_REDIS_URL (default 127.0.0.1:6379), under a key prefix of its
// own.
func TestRateLimitRedis(t *testing.T) {
	t.Parallel()
	url := os.Getenv("KEPPEL_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	runRateLimit(t, map[string]string{"KEPPEL_REDIS_URL": url, "KEPPEL_RATELIMIT_REDIS_PREFIX": "keppel-test-" + hex.EncodeToString(b[:]) + ":"})
}

// runRateLimit allows two manifest pulls at once per account, then one per
// second: the third pull is refused with 429 TOOMANYREQUESTS and a
// Retry-After that, when honoured, lets the next pull through; another
// account is not affected.
func runRateLimit(t *testing.T, env map[string]string) {
	env["KEPPEL_RATELIMIT_MANIFEST_PULL"] = "1:2"
	s := test.NewServer(t, test.Options{Env: env, Accounts: map[string]string{"test": "tenant1", "other": "tenant2"}})
	for _, repo := range []string{"test/app", "other/app"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(s.Host+"/"+repo+":v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, adminAuth()); err != nil {
			t.Fatalf("push %s: %v", repo, err)
		}
	}
	token := s.Token(t, "repository:test/app:pull", "repository:other/app:pull")
	pull := func(repo string) test.Response {
		return s.Do(t, http.MethodGet, "/v2/"+repo+"/manifests/v1", token,
			http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}, nil)
	}
	for i := range 2 {
		if r := pull("test/app"); r.Status != http.StatusOK {
			t.Fatalf("pull %d within the burst: %d %s", i, r.Status, r.Body)
		}
	}
	r := pull("test/app")
	if r.Status != http.StatusTooManyRequests || r.ErrorCode() != "TOOMANYREQUESTS" {
		t.Fatalf("pull beyond the burst: %d %s, want 429 TOOMANYREQUESTS", r.Status, r.Body)
	}
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2 seconds", r.Header.Get("Retry-After"))
	}
	if r := pull("other/app"); r.Status != http.StatusOK {
		t.Fatalf("another account was limited: %d %s", r.Status, r.Body)
	}
	// HEAD is not limited (clients check for manifests often).
	if r := s.Do(t, http.MethodHead, "/v2/test/app/manifests/v1", token, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("HEAD was limited: %d", r.Status)
	}
	time.Sleep(time.Duration(retry) * time.Second)
	if r := pull("test/app"); r.Status != http.StatusOK {
		t.Fatalf("pull after honouring Retry-After: %d %s", r.Status, r.Body)
	}
}

// TestRateLimitRedisDown: when Redis cannot be reached, requests go
// through (and the failure is logged) rather than fail.
func TestRateLimitRedisDown(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{Env: map[string]string{
		"KEPPEL_REDIS_URL":               "redis://" + test.FreeAddress(t) + "/0",
		"KEPPEL_RATELIMIT_MANIFEST_PULL": "1:1",
	}})
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(s.Host+"/test/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, adminAuth()); err != nil {
		t.Fatalf("push: %v", err)
	}
	token := s.Token(t, "repository:test/app:pull")
	for i := range 3 {
		r := s.Do(t, http.MethodGet, "/v2/test/app/manifests/v1", token,
			http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("pull %d with Redis down: %d %s", i, r.Status, r.Body)
		}
	}
}
