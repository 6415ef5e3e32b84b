package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"

	"keppel/internal/test"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func pushBlob(t *testing.T, s *test.Server, repo, token string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	resp := s.Do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), token,
		http.Header{"Content-Type": {"application/octet-stream"}}, bytes.NewReader(content))
	if resp.Status != http.StatusCreated {
		t.Fatalf("monolithic push: %d %s", resp.Status, resp.Body)
	}
	return d
}

func TestCrossRepositoryMount(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{Accounts: map[string]string{"test": "tenant1", "other": "tenant1"}})
	token := s.Token(t, "repository:test/a:pull,push", "repository:test/b:pull,push", "repository:other/c:pull,push")
	content := randomBytes(t, 10000)
	d := pushBlob(t, s, "test/a", token, content)

	resp := s.Do(t, "POST", "/v2/test/b/blobs/uploads/?mount="+d.String()+"&from=test/a", token, nil, nil)
	if resp.Status != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("mount: %d %s", resp.Status, resp.Body)
	}
	resp = s.Do(t, "GET", "/v2/test/b/blobs/"+d.String(), token, nil, nil)
	if resp.Status != http.StatusOK || !bytes.Equal(resp.Body, content) {
		t.Fatalf("mounted blob: %d", resp.Status)
	}

	// Mounting from another account is not possible: storage is per account.
	// The registry answers with a new upload instead, as the spec says.
	resp = s.Do(t, "POST", "/v2/other/c/blobs/uploads/?mount="+d.String()+"&from=test/a", token, nil, nil)
	if resp.Status != http.StatusAccepted || resp.Header.Get("Location") == "" {
		t.Fatalf("cross-account mount: %d %s", resp.Status, resp.Body)
	}
	resp = s.Do(t, "HEAD", "/v2/other/c/blobs/"+d.String(), token, nil, nil)
	if resp.Status != http.StatusNotFound {
		t.Fatalf("blob visible in another account: %d", resp.Status)
	}
}

// failingReader yields n bytes of data and then fails, like a client whose
// connection breaks in the middle of a chunk.
type failingReader struct {
	data []byte
	n    int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection lost")
	}
	k := min(len(p), f.n, len(f.data))
	copy(p, f.data[:k])
	f.data, f.n = f.data[k:], f.n-k
	return k, nil
}

func TestResumeInterruptedChunkedUpload(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{})
	token := s.Token(t, "repository:test/resume:pull,push")
	content := randomBytes(t, 3<<20)
	first, second := content[:1<<20], content[1<<20:]

	resp := s.Do(t, "POST", "/v2/test/resume/blobs/uploads/", token, nil, nil)
	if resp.Status != http.StatusAccepted {
		t.Fatalf("start: %d %s", resp.Status, resp.Body)
	}
	location := resp.Header.Get("Location")

	resp = s.Do(t, "PATCH", location, token, http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {"0-" + strconv.Itoa(len(first)-1)},
	}, bytes.NewReader(first))
	if resp.Status != http.StatusAccepted || resp.Header.Get("Range") != "0-"+strconv.Itoa(len(first)-1) {
		t.Fatalf("chunk 1: %d %v %s", resp.Status, resp.Header, resp.Body)
	}
	location = resp.Header.Get("Location")

	// The second chunk breaks off half-way.
	req, _ := http.NewRequest("PATCH", s.URL+location, &failingReader{data: second, n: len(second) / 2})
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = int64(len(second))
	if r, err := http.DefaultClient.Do(req); err == nil {
		r.Body.Close()
		t.Fatalf("interrupted chunk was answered with %d", r.StatusCode)
	}

	// The upload status shows only the acknowledged chunk.
	resp = s.Do(t, "GET", location, token, nil, nil)
	if resp.Status != http.StatusNoContent || resp.Header.Get("Range") != "0-"+strconv.Itoa(len(first)-1) {
		t.Fatalf("status after interruption: %d Range=%q", resp.Status, resp.Header.Get("Range"))
	}

	// Resume from the acknowledged offset and finish.
	d := digest.FromBytes(content)
	resp = s.Do(t, "PATCH", location, token, http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {strconv.Itoa(len(first)) + "-" + strconv.Itoa(len(content)-1)},
	}, bytes.NewReader(second))
	if resp.Status != http.StatusAccepted {
		t.Fatalf("resumed chunk: %d %s", resp.Status, resp.Body)
	}
	resp = s.Do(t, "PUT", resp.Header.Get("Location")+"?digest="+d.String(), token, nil, nil)
	if resp.Status != http.StatusCreated {
		t.Fatalf("finish: %d %s", resp.Status, resp.Body)
	}
	resp = s.Do(t, "GET", "/v2/test/resume/blobs/"+d.String(), token, nil, nil)
	if resp.Status != http.StatusOK || !bytes.Equal(resp.Body, content) {
		t.Fatalf("blob after resume: %d, %d bytes", resp.Status, len(resp.Body))
	}

	// A chunk that does not start where the upload ends is refused.
	resp = s.Do(t, "POST", "/v2/test/resume/blobs/uploads/", token, nil, nil)
	location = resp.Header.Get("Location")
	resp = s.Do(t, "PATCH", location, token, http.Header{"Content-Range": {"5-9"}}, bytes.NewReader([]byte("hello")))
	if resp.Status != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("out-of-order chunk: %d %s", resp.Status, resp.Body)
	}
}
