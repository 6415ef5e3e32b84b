package e2e

import (
	"bytes"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/redis/go-redis/v9"

	"keppel/internal/test"
)

// cluster is the reference deployment of docs/operator-guide.md in small:
// API processes behind a load balancer and two janitors, on one PostgreSQL
// database, one S3 bucket and one Redis server (for the rate limits),
// sharing the token signing key as every replica must.
type cluster struct {
	lb       *test.LoadBalancer
	apis     []*test.Process
	janitors []*test.Process
	// janitorAddrs serve the janitors' /metrics and /healthcheck.
	janitorAddrs []string
	redisPrefix  string
}

func startCluster(t *testing.T, apis int, extraEnv ...string) *cluster {
	t.Helper()
	s3 := test.StartS3(t)
	lb := test.StartLoadBalancer(t)
	keys := t.TempDir()
	redisURL := os.Getenv("KEPPEL_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	redisPrefix := "keppel-test-" + randomHexString(6) + ":"
	env := append(s3.Env(s3.Bucket(t)),
		"KEPPEL_REDIS_URL="+redisURL,
		"KEPPEL_RATELIMIT_REDIS_PREFIX="+redisPrefix,
		"KEPPEL_RATELIMIT_BLOB_PUSH=1:1000", // refills slowly, so its key stays in Redis a while
		"KEPPEL_RATELIMIT_MANIFEST_PULL=1000:1000",
		"KEPPEL_API_PUBLIC_URL="+lb.URL,
		"KEPPEL_DB_URL="+test.PostgresDatabase(t),
		"KEPPEL_S3_PART_SIZE=5242880",
		"KEPPEL_AUTH_ISSUER_KEY_FILE="+filepath.Join(keys, "token-key.pem"),
		"KEPPEL_SECRETS_KEY_FILE="+filepath.Join(keys, "secrets-key"),
	)
	env = append(env, extraEnv...)
	c := &cluster{lb: lb, redisPrefix: redisPrefix}
	// The first process creates the shared keys; the others read them.
	for range apis {
		c.apis = append(c.apis, test.StartKeppelAPI(t, env...))
	}
	for range 2 {
		addr := test.FreeAddress(t)
		c.janitors = append(c.janitors, test.StartKeppelJanitor(t, append(env, "KEPPEL_JANITOR_LISTEN_ADDRESS="+addr)...))
		c.janitorAddrs = append(c.janitorAddrs, addr)
	}
	lb.SetBackends(c.apis...)
	c.apis[0].CreateAccount(t, "shared", "tenant")
	return c
}

// rawRequest sends one request to a process with a bearer token; path may
// be a Location header from another process (only its path and query are
// used, as a load balancer would route it anywhere).
func rawRequest(t *testing.T, p *test.Process, method, path, token string, hdr http.Header, body io.Reader) *http.Response {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, p.URL+u.RequestURI(), body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s at %s: %v", method, path, p.Addr, err)
	}
	return resp
}

func expectStatus(t *testing.T, resp *http.Response, want int, what string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s: HTTP %d, want %d: %s", what, resp.StatusCode, want, body)
	}
}

func randomHexString(n int) string {
	b := make([]byte, n)
	_, _ = cryptorand.Read(b)
	return hex.EncodeToString(b)
}

// withDigest adds the digest parameter that finishes an upload.
func withDigest(location, digest string) string {
	sep := "?"
	if strings.Contains(location, "?") {
		sep = "&"
	}
	return location + sep + "digest=" + url.QueryEscape(digest)
}

func randomBlob(seed uint64, size int) []byte {
	buf := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	return buf
}

func patchChunk(t *testing.T, p *test.Process, location, token string, offset int, chunk []byte, what string) string {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+len(chunk)-1))
	resp := rawRequest(t, p, http.MethodPatch, location, token, hdr, bytes.NewReader(chunk))
	next := resp.Header.Get("Location")
	wantRange := fmt.Sprintf("0-%d", offset+len(chunk)-1)
	if got := resp.Header.Get("Range"); resp.StatusCode == http.StatusAccepted && got != wantRange {
		t.Errorf("%s: Range %q, want %q", what, got, wantRange)
	}
	expectStatus(t, resp, http.StatusAccepted, what)
	return next
}

func uploadRange(t *testing.T, p *test.Process, location, token string) string {
	t.Helper()
	resp := rawRequest(t, p, http.MethodGet, location, token, nil, nil)
	rng := resp.Header.Get("Range")
	expectStatus(t, resp, http.StatusNoContent, "GET upload status at "+p.Addr)
	return rng
}

func expectBlobAt(t *testing.T, p *test.Process, token, digest string, want []byte) {
	t.Helper()
	resp := rawRequest(t, p, http.MethodGet, "/v2/shared/app/blobs/"+digest, token, nil, nil)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob at %s: HTTP %d, %v", p.Addr, resp.StatusCode, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GET blob at %s: %d bytes that differ from the %d pushed", p.Addr, len(got), len(want))
	}
}

// TestScaleOutUploadMovesBetweenProcesses: two API processes and a janitor
// on PostgreSQL and a real S3 server. A chunked upload started on one API
// process continues and completes on the other (upload and hash state live
// in the database and in S3, not in a process), and pulls through either
// process see the same data.
func TestScaleOutUploadMovesBetweenProcesses(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	a, b := c.apis[0], c.apis[1]
	token := processToken(t, a, "repository:shared/app:pull,push")

	chunks := [][]byte{randomBlob(1, 6<<20), randomBlob(2, 7<<20), randomBlob(3, 12345)}
	var content []byte
	for _, ch := range chunks {
		content = append(content, ch...)
	}
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(content))

	resp := rawRequest(t, a, http.MethodPost, "/v2/shared/app/blobs/uploads/", token, nil, nil)
	location := resp.Header.Get("Location")
	expectStatus(t, resp, http.StatusAccepted, "POST upload at A")
	location = patchChunk(t, a, location, token, 0, chunks[0], "PATCH chunk 1 at A")
	location = patchChunk(t, b, location, token, len(chunks[0]), chunks[1], "PATCH chunk 2 at B")
	if got, want := uploadRange(t, a, location, token), fmt.Sprintf("0-%d", len(chunks[0])+len(chunks[1])-1); got != want {
		t.Fatalf("upload status at A after a chunk through B: Range %q, want %q", got, want)
	}
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/octet-stream")
	resp = rawRequest(t, b, http.MethodPut, withDigest(location, digest), token, hdr, bytes.NewReader(chunks[2]))
	expectStatus(t, resp, http.StatusCreated, "PUT final chunk at B")
	expectBlobAt(t, a, token, digest, content)
	expectBlobAt(t, b, token, digest, content)

	// An image pushed through the load balancer (every request of the
	// push going to the next process) is pulled whole through both.
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(c.lb.Addr+"/shared/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, adminAuth()); err != nil {
		t.Fatalf("push through the load balancer: %v", err)
	}
	for range 2 {
		expectImage(t, ref, img)
	}

	// The janitors answer health checks and serve their metrics.
	for _, addr := range c.janitorAddrs {
		for _, path := range []string{"/healthcheck", "/metrics"} {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatalf("janitor %s: %v", path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || (path == "/metrics" && !bytes.Contains(body, []byte("process_cpu_seconds_total"))) {
				t.Errorf("janitor %s: HTTP %d %.200s", path, resp.StatusCode, body)
			}
		}
	}

	// The API processes counted their requests in the shared Redis.
	rdb := redis.NewClient(mustParseRedisURL(t, os.Getenv("KEPPEL_TEST_REDIS_URL")))
	defer rdb.Close()
	keys, err := rdb.Keys(t.Context(), c.redisPrefix+"*").Result()
	if err != nil {
		t.Fatalf("listing rate limit keys in Redis: %v", err)
	}
	if len(keys) == 0 {
		t.Error("no rate limit state in Redis: the API processes do not share their limits")
	}
}

func mustParseRedisURL(t *testing.T, url string) *redis.Options {
	t.Helper()
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// expectImage pulls the image with all its layers and compares digests.
func expectImage(t *testing.T, ref name.Reference, img v1.Image) {
	t.Helper()
	pulled, err := remote.Image(ref, adminAuth())
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	want, _ := img.Digest()
	if got, _ := pulled.Digest(); got != want {
		t.Fatalf("pull %s: got %s, pushed %s", ref, got, want)
	}
	layers, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed() // ggcr verifies the digest while reading
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("pull a layer of %s: %v", ref, err)
		}
		rc.Close()
	}
}

// TestScaleOutUploadSurvivesKilledProcess kills an API process (SIGKILL)
// while it receives a chunk. The client resumes through the other process:
// the upload holds exactly the acknowledged chunks, the rest of the content
// completes it, and an image whose push was acknowledged before the crash
// is intact.
func TestScaleOutUploadSurvivesKilledProcess(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	a, b := c.apis[0], c.apis[1]
	token := processToken(t, b, "repository:shared/app:pull,push")

	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(c.lb.Addr+"/shared/app:before-crash", name.Insecure)
	if err := remote.Write(ref, img, adminAuth()); err != nil {
		t.Fatalf("push through the load balancer: %v", err)
	}

	first, second := randomBlob(4, 6<<20), randomBlob(5, 9<<20)
	content := append(append([]byte{}, first...), second...)
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(content))
	resp := rawRequest(t, a, http.MethodPost, "/v2/shared/app/blobs/uploads/", token, nil, nil)
	location := resp.Header.Get("Location")
	expectStatus(t, resp, http.StatusAccepted, "POST upload at A")
	location = patchChunk(t, a, location, token, 0, first, "PATCH chunk 1 at A")

	// The second chunk reaches A in part (more than a multipart part, so
	// A has written to S3), then A dies.
	pr, pw := io.Pipe()
	u, _ := url.Parse(location)
	req, _ := http.NewRequest(http.MethodPatch, a.URL+u.RequestURI(), pr)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("the interrupted PATCH was answered with HTTP %d", resp.StatusCode)
		}
		done <- err
	}()
	if _, err := pw.Write(second[:7<<20]); err != nil {
		t.Fatalf("streaming the second chunk: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // let A pass the bytes on to S3
	a.Kill()
	pw.CloseWithError(io.ErrClosedPipe)
	select {
	case err := <-done:
		if err == nil || strings.Contains(err.Error(), "answered with") {
			t.Fatalf("the PATCH to the killed process: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the PATCH to the killed process did not end")
	}

	// B knows the upload with exactly the acknowledged chunk.
	if got, want := uploadRange(t, b, location, token), fmt.Sprintf("0-%d", len(first)-1); got != want {
		t.Fatalf("upload status at B after A died: Range %q, want %q", got, want)
	}
	location = patchChunk(t, b, location, token, len(first), second, "PATCH chunk 2 at B")
	resp = rawRequest(t, b, http.MethodPut, withDigest(location, digest), token, nil, nil)
	expectStatus(t, resp, http.StatusCreated, "PUT at B")
	expectBlobAt(t, b, token, digest, content)

	// The load balancer takes the dead process out; the image pushed
	// before the crash is whole.
	c.lb.SetBackends(b)
	expectImage(t, ref, img)
}
