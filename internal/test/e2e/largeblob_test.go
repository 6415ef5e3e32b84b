package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"

	"keppel/internal/test"
)

// randomStream yields n pseudo-random bytes without holding them in memory.
type randomStream struct {
	rng *rand.ChaCha8
	n   int64
}

func (r *randomStream) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	_, _ = r.rng.Read(p)
	r.n -= int64(len(p))
	return len(p), nil
}

func processToken(t *testing.T, p *test.Process, scope string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", p.URL+"/keppel/v1/auth?scope="+url.QueryEscape(scope), nil)
	req.SetBasicAuth("admin", test.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Token
}

// TestLargeBlobPushKeepsMemoryFlat pushes a 1 GiB blob in one streamed PATCH
// to the real binary and checks that the server's peak resident memory stays
// below 150 MiB: blobs stream to storage while being hashed.
func TestLargeBlobPushKeepsMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 1 GiB")
	}
	const size = 1 << 30
	const limit = 150 << 20
	p := test.StartKeppel(t)
	p.CreateAccount(t, "big", "tenant1")
	token := processToken(t, p, "repository:big/blob:pull,push")

	do := func(method, path string, body io.Reader, length int64) *http.Response {
		req, _ := http.NewRequest(method, p.URL+path, body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.ContentLength = length
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	resp := do("POST", "/v2/big/blob/blobs/uploads/", nil, 0)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %d", resp.StatusCode)
	}
	hasher := sha256.New()
	stream := io.TeeReader(&randomStream{rng: rand.NewChaCha8([32]byte{1}), n: size}, hasher)
	resp = do("PATCH", resp.Header.Get("Location"), stream, size)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	d := digest.NewDigest(digest.SHA256, hasher)
	resp = do("PUT", resp.Header.Get("Location")+"?digest="+d.String(), nil, 0)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish: %d", resp.StatusCode)
	}
	resp = do("HEAD", "/v2/big/blob/blobs/"+d.String(), nil, 0)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != strconv.Itoa(size) {
		t.Fatalf("head: %d, length %s", resp.StatusCode, resp.Header.Get("Content-Length"))
	}

	peak, err := p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak resident memory of the server while pushing 1 GiB: %.1f MiB", float64(peak)/(1<<20))
	if peak > limit {
		t.Fatalf("peak resident memory %d MiB exceeds %d MiB", peak>>20, limit>>20)
	}
}
