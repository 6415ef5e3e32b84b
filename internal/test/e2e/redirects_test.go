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
	env := append(s3.Env(s3.Bucket(t)), "KEPPEL_S3_REDIRECT_BLOB_GETS=true", "KEPPEL_S3_PRESIGN_TTL=5m")
	p := test.StartKeppel(t, env...)
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
	layer := layers[0]
	digest, _ := layer.Digest()
	rc, _ := layer.Compressed()
	want, _ := io.ReadAll(rc)
	rc.Close()

	token := processToken(t, p, "repository:shared/app:pull")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/v2/shared/app/blobs/"+digest.String(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	location := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(location, s3.Endpoint+"/") {
		t.Fatalf("GET blob: HTTP %d to %q, want 307 to the S3 server", resp.StatusCode, location)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest.String() {
		t.Errorf("Docker-Content-Digest %q, want %q", got, digest)
	}
	// The presigned URL needs no credentials, and supports ranges.
	resp, err = http.Get(location)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("GET presigned URL: HTTP %d, %d bytes (want %d)", resp.StatusCode, len(got), len(want))
	}
	req, _ = http.NewRequest(http.MethodGet, location, nil)
	req.Header.Set("Range", "bytes=10-19")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want[10:20]) {
		t.Errorf("ranged GET of the presigned URL: HTTP %d %x", resp.StatusCode, got)
	}

	// HEAD is answered by the registry itself.
	resp = rawRequest(t, p, http.MethodHead, "/v2/shared/app/blobs/"+digest.String(), token, nil, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(want)) {
		t.Errorf("HEAD blob: HTTP %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	// Without a token there is no redirect, only the challenge.
	resp, err = noFollow.Get(p.URL + "/v2/shared/app/blobs/" + digest.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
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
	env := append(swift.Env(t), "KEPPEL_SWIFT_TEMP_URL_KEY="+key, "KEPPEL_SWIFT_REDIRECT_BLOB_GETS=true")
	p := test.StartKeppel(t, env...)
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
	digest, _ := layers[0].Digest()
	token := processToken(t, p, "repository:shared/app:pull")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/v2/shared/app/blobs/"+digest.String(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	location := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.Contains(location, "temp_url_sig=") {
		t.Fatalf("GET blob: HTTP %d to %q, want 307 to a Swift temporary URL", resp.StatusCode, location)
	}
	resp, err = http.Get(location)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rc, _ := layers[0].Compressed()
	want, _ := io.ReadAll(rc)
	rc.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("GET temporary URL: HTTP %d, %d bytes (want %d)", resp.StatusCode, len(got), len(want))
	}
}
