package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/test"
)

// TestS3BlobRedirects: with storage.s3.redirect_blob_gets, blob GETs are
// answered with a redirect to a presigned S3 URL that serves the content
// without the registry's credentials; HEAD is answered directly; clients
// pull through the redirect.
func TestS3BlobRedirects(t *testing.T) {
	t.Parallel()
	s3 := test.StartS3(t)
	p := test.StartKeppel(t, append(s3.Env(s3.Bucket(t)), "KEPPEL_S3_REDIRECT_BLOB_GETS=true", "KEPPEL_S3_PRESIGN_TTL=5m")...)
	digest, want := pushForRedirects(t, p)
	token := processToken(t, p, "repository:shared/app:pull")

	resp := getWithoutRedirects(t, p.URL+"/v2/shared/app/blobs/"+digest, token)
	location := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(location, s3.Endpoint+"/") {
		t.Fatalf("GET blob: HTTP %d to %q, want 307 to the S3 server", resp.StatusCode, location)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
		t.Errorf("Docker-Content-Digest %q, want %q", got, digest)
	}
	// The presigned URL needs no credentials, and supports ranges.
	if status, got := fetch(t, location, ""); status != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("GET presigned URL: HTTP %d, %d bytes (want %d)", status, len(got), len(want))
	}
	if status, got := fetch(t, location, "bytes=10-19"); status != http.StatusPartialContent || !bytes.Equal(got, want[10:20]) {
		t.Errorf("ranged GET of the presigned URL: HTTP %d %x", status, got)
	}

	// HEAD is answered by the registry itself.
	head := rawRequest(t, p, http.MethodHead, "/v2/shared/app/blobs/"+digest, token, nil, nil)
	head.Body.Close()
	if head.StatusCode != http.StatusOK || head.ContentLength != int64(len(want)) {
		t.Errorf("HEAD blob: HTTP %d, length %d", head.StatusCode, head.ContentLength)
	}
	// Without a token there is no redirect, only the challenge.
	if resp := getWithoutRedirects(t, p.URL+"/v2/shared/app/blobs/"+digest, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET blob: HTTP %d, want 401", resp.StatusCode)
	}
}

// TestSwiftBlobRedirects: with storage.swift.redirect_blob_gets, blob GETs
// are redirected to Swift temporary URLs, and clients pull through them.
func TestSwiftBlobRedirects(t *testing.T) {
	t.Parallel()
	swift := test.SwiftFromEnvironment(t)
	// The second of the Swift account's two keys: the driver's tests, which
	// may run at the same time, set the first.
	const key = "keppel-e2e-temp-url-key"
	if err := swift.Conn.AccountUpdate(t.Context(), map[string]string{"X-Account-Meta-Temp-URL-Key-2": key}); err != nil {
		t.Fatalf("setting the temp URL key: %v", err)
	}
	p := test.StartKeppel(t, append(swift.Env(t), "KEPPEL_SWIFT_TEMP_URL_KEY="+key, "KEPPEL_SWIFT_REDIRECT_BLOB_GETS=true")...)
	digest, want := pushForRedirects(t, p)
	token := processToken(t, p, "repository:shared/app:pull")

	resp := getWithoutRedirects(t, p.URL+"/v2/shared/app/blobs/"+digest, token)
	location := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(location, "temp_url_sig=") {
		t.Fatalf("GET blob: HTTP %d to %q, want 307 to a Swift temporary URL", resp.StatusCode, location)
	}
	if status, got := fetch(t, location, ""); status != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("GET temporary URL: HTTP %d, %d bytes (want %d)", status, len(got), len(want))
	}
}

// pushForRedirects creates the account "shared", pushes an image to
// shared/app:v1, pulls it whole (through the redirects), and returns the
// digest and content of its first layer.
func pushForRedirects(t *testing.T, p *test.Process) (digest string, content []byte) {
	t.Helper()
	p.CreateAccount(t, "shared", "tenant")
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(p.Addr+"/shared/app:v1", name.Insecure)
	if err := remote.Write(ref, img, adminAuth()); err != nil {
		t.Fatalf("push: %v", err)
	}
	expectImage(t, ref, img)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	content, err = io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), content
}

// getWithoutRedirects sends a GET (with a bearer token unless empty) and
// returns the response as it is, body closed.
func getWithoutRedirects(t *testing.T, url, token string) *http.Response {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// fetch GETs a URL without credentials (with a Range header unless empty).
func fetch(t *testing.T, url, rng string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}
