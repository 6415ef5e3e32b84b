package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"keppel/internal/test"
)

type fixture struct {
	configDigest, layerDigest digest.Digest
	layerSize                 int
	manifestDigest            digest.Digest
	indexDigest               digest.Digest
	uploadLocation            string
}

func manifestJSON(config, layer digest.Digest, configSize, layerSize int) []byte {
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + config.String() + `","size":` + itoa(configSize) + `},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + layer.String() + `","size":` + itoa(layerSize) + `}]}`)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func setupFixture(t *testing.T, s *test.Server, token string) fixture {
	t.Helper()
	var f fixture
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := randomBytes(t, 4096)
	f.configDigest = pushBlob(t, s, "test/base", token, config)
	f.layerDigest = pushBlob(t, s, "test/base", token, layer)
	f.layerSize = len(layer)
	m := manifestJSON(f.configDigest, f.layerDigest, len(config), len(layer))
	resp := s.Do(t, "PUT", "/v2/test/base/manifests/latest", token,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, bytes.NewReader(m))
	if resp.Status != http.StatusCreated {
		t.Fatalf("manifest push: %d %s", resp.Status, resp.Body)
	}
	f.manifestDigest = digest.FromBytes(m)
	idx := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + f.manifestDigest.String() + `","size":` + itoa(len(m)) + `}]}`)
	resp = s.Do(t, "PUT", "/v2/test/base/manifests/idx", token,
		http.Header{"Content-Type": {"application/vnd.oci.image.index.v1+json"}}, bytes.NewReader(idx))
	if resp.Status != http.StatusCreated {
		t.Fatalf("index push: %d %s", resp.Status, resp.Body)
	}
	f.indexDigest = digest.FromBytes(idx)
	resp = s.Do(t, "POST", "/v2/test/base/blobs/uploads/", token, nil, nil)
	f.uploadLocation = resp.Header.Get("Location")
	resp = s.Do(t, "PATCH", f.uploadLocation, token, http.Header{"Content-Range": {"0-4"}}, bytes.NewReader([]byte("hello")))
	if resp.Status != http.StatusAccepted {
		t.Fatalf("chunk: %d %s", resp.Status, resp.Body)
	}
	return f
}

// TestBadInputChangesNothing sends malformed and invalid requests and checks
// that each gets the exact OCI error code and leaves the registry's state
// (every metadata row and every stored file) untouched.
func TestBadInputChangesNothing(t *testing.T) {
	s := test.NewServer(t, test.Options{})
	token := s.Token(t, "repository:test/base:pull,push,delete", "repository:test/other:pull,push,delete",
		"repository:nosuch/repo:pull,push", "registry:catalog:*",
		"repository:Test/Base:pull", "repository:base:pull", "repository:test/../etc:pull", "repository:test//base:pull")
	f := setupFixture(t, s, token)

	ociManifest := http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}
	validManifest := manifestJSON(f.configDigest, f.layerDigest, 37, f.layerSize)
	missingBlob := manifestJSON(f.configDigest, digest.FromString("never pushed"), 37, 12)
	wrongSize := manifestJSON(f.configDigest, f.layerDigest, 37, f.layerSize+1)
	huge := append([]byte(`{"schemaVersion":2,"annotations":{"x":"`), bytes.Repeat([]byte("a"), 4<<20)...)
	huge = append(huge, []byte(`"}}`)...)
	missingChild := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("nope").String() + `","size":5}]}`)
	unknown := digest.FromString("unknown blob").String()
	sha384 := "sha384:" + strings.Repeat("ab", 48)

	cases := []struct {
		name   string
		method string
		path   string
		header http.Header
		body   []byte
		token  string
		status int
		code   string
	}{
		{"blob: malformed digest", "GET", "/v2/test/base/blobs/sha256:xyz", nil, nil, token, 400, "DIGEST_INVALID"},
		{"blob: unsupported algorithm", "GET", "/v2/test/base/blobs/" + sha384, nil, nil, token, 400, "DIGEST_INVALID"},
		{"blob: unknown", "GET", "/v2/test/base/blobs/" + unknown, nil, nil, token, 404, "BLOB_UNKNOWN"},
		{"blob: reversed range", "GET", "/v2/test/base/blobs/" + f.layerDigest.String(), http.Header{"Range": {"bytes=100-50"}}, nil, token, 416, "RANGE_INVALID"},
		{"blob: range beyond end", "GET", "/v2/test/base/blobs/" + f.layerDigest.String(), http.Header{"Range": {"bytes=5000-"}}, nil, token, 416, "RANGE_INVALID"},
		{"blob: range in other unit", "GET", "/v2/test/base/blobs/" + f.layerDigest.String(), http.Header{"Range": {"items=0-1"}}, nil, token, 416, "RANGE_INVALID"},
		{"blob: multiple ranges", "GET", "/v2/test/base/blobs/" + f.layerDigest.String(), http.Header{"Range": {"bytes=0-1,5-6"}}, nil, token, 416, "RANGE_INVALID"},
		{"blob: delete while referenced", "DELETE", "/v2/test/base/blobs/" + f.layerDigest.String(), nil, nil, token, 409, "DENIED"},
		{"manifest: unknown tag", "GET", "/v2/test/base/manifests/nope", nil, nil, token, 404, "MANIFEST_UNKNOWN"},
		{"manifest: unknown digest", "GET", "/v2/test/base/manifests/" + unknown, nil, nil, token, 404, "MANIFEST_UNKNOWN"},
		{"manifest: malformed digest", "GET", "/v2/test/base/manifests/sha256:12", nil, nil, token, 400, "DIGEST_INVALID"},
		{"manifest: invalid tag", "GET", "/v2/test/base/manifests/" + strings.Repeat("t", 129), nil, nil, token, 400, "TAG_INVALID"},
		{"manifest: malformed JSON", "PUT", "/v2/test/base/manifests/bad", ociManifest, []byte(`{"schemaVersion":2,`), token, 400, "MANIFEST_INVALID"},
		{"manifest: trailing garbage", "PUT", "/v2/test/base/manifests/bad", ociManifest, append(append([]byte{}, validManifest...), []byte("xx")...), token, 400, "MANIFEST_INVALID"},
		{"manifest: schema version 1", "PUT", "/v2/test/base/manifests/bad", http.Header{"Content-Type": {"application/vnd.docker.distribution.manifest.v1+prettyjws"}}, []byte(`{"schemaVersion":1,"name":"test/base","tag":"bad","fsLayers":[]}`), token, 400, "MANIFEST_INVALID"},
		{"manifest: missing blob", "PUT", "/v2/test/base/manifests/bad", ociManifest, missingBlob, token, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"manifest: missing child", "PUT", "/v2/test/base/manifests/bad", http.Header{"Content-Type": {"application/vnd.oci.image.index.v1+json"}}, missingChild, token, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"manifest: wrong layer size", "PUT", "/v2/test/base/manifests/bad", ociManifest, wrongSize, token, 400, "MANIFEST_INVALID"},
		{"manifest: too large", "PUT", "/v2/test/base/manifests/bad", ociManifest, huge, token, 413, "SIZE_INVALID"},
		{"manifest: digest mismatch", "PUT", "/v2/test/base/manifests/" + unknown, ociManifest, validManifest, token, 400, "DIGEST_INVALID"},
		{"manifest: media type mismatch", "PUT", "/v2/test/base/manifests/bad", http.Header{"Content-Type": {"application/vnd.oci.image.index.v1+json"}}, validManifest, token, 400, "MANIFEST_INVALID"},
		{"manifest: missing config", "PUT", "/v2/test/base/manifests/bad", ociManifest, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}`), token, 400, "MANIFEST_INVALID"},
		{"manifest: delete child of index", "DELETE", "/v2/test/base/manifests/" + f.manifestDigest.String(), nil, nil, token, 409, "DENIED"},
		{"manifest: wrong method", "POST", "/v2/test/base/manifests/latest", nil, nil, token, 405, "UNSUPPORTED"},
		{"upload: monolithic digest mismatch", "POST", "/v2/test/base/blobs/uploads/?digest=" + unknown, nil, []byte("other content"), token, 400, "DIGEST_INVALID"},
		{"upload: malformed digest", "POST", "/v2/test/base/blobs/uploads/?digest=sha256:nothex", nil, []byte("x"), token, 400, "DIGEST_INVALID"},
		{"upload: malformed mount digest", "POST", "/v2/test/base/blobs/uploads/?mount=md5:abc&from=test/other", nil, nil, token, 400, "DIGEST_INVALID"},
		{"upload: unknown upload PATCH", "PATCH", "/v2/test/base/blobs/uploads/00000000-0000-0000-0000-000000000000", nil, []byte("x"), token, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"upload: unknown upload PUT", "PUT", "/v2/test/base/blobs/uploads/00000000-0000-0000-0000-000000000000?digest=" + unknown, nil, nil, token, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"upload: finish without digest", "PUT", f.uploadLocation, nil, nil, token, 400, "DIGEST_INVALID"},
		{"upload: malformed Content-Range", "PATCH", f.uploadLocation, http.Header{"Content-Range": {"five-ten"}}, []byte("world"), token, 416, "RANGE_INVALID"},
		{"upload: out-of-order chunk", "PATCH", f.uploadLocation, http.Header{"Content-Range": {"10-14"}}, []byte("world"), token, 416, "RANGE_INVALID"},
		{"upload: Content-Range and length disagree", "PATCH", f.uploadLocation, http.Header{"Content-Range": {"5-20"}}, []byte("world"), token, 416, "RANGE_INVALID"},
		{"tags: negative n", "GET", "/v2/test/base/tags/list?n=-1", nil, nil, token, 400, "PAGINATION_NUMBER_INVALID"},
		{"tags: non-numeric n", "GET", "/v2/test/base/tags/list?n=abc", nil, nil, token, 400, "PAGINATION_NUMBER_INVALID"},
		{"tags: empty n", "GET", "/v2/test/base/tags/list?n=", nil, nil, token, 400, "PAGINATION_NUMBER_INVALID"},
		{"tags: control character in last", "GET", "/v2/test/base/tags/list?last=%00", nil, nil, token, 400, "PAGINATION_NUMBER_INVALID"},
		{"catalog: exponent n", "GET", "/v2/_catalog?n=1e3", nil, nil, token, 400, "PAGINATION_NUMBER_INVALID"},
		{"tags: unknown repository", "GET", "/v2/test/other/tags/list", nil, nil, token, 404, "NAME_UNKNOWN"},
		{"name: path traversal", "GET", "/v2/test/../etc/manifests/latest", nil, nil, token, 400, "NAME_INVALID"},
		{"name: encoded path traversal", "GET", "/v2/test/%2e%2e/etc/manifests/latest", nil, nil, token, 400, "NAME_INVALID"},
		{"name: empty component", "GET", "/v2/test//base/manifests/latest", nil, nil, token, 400, "NAME_INVALID"},
		{"name: upper case", "GET", "/v2/Test/Base/manifests/latest", nil, nil, token, 400, "NAME_INVALID"},
		{"name: no account", "GET", "/v2/base/manifests/latest", nil, nil, token, 400, "NAME_INVALID"},
		{"name: reserved account", "PUT", "/v2/keppel-x/repo/manifests/latest", ociManifest, validManifest, token, 400, "NAME_INVALID"},
		{"name: unknown account", "PUT", "/v2/nosuch/repo/manifests/latest", ociManifest, validManifest, token, 404, "NAME_UNKNOWN"},
		{"referrers: malformed digest", "GET", "/v2/test/base/referrers/sha256:abc", nil, nil, token, 400, "DIGEST_INVALID"},
		{"auth: forged token", "GET", "/v2/test/base/manifests/latest", nil, nil, token[:len(token)-4] + "AAAA", 401, "UNAUTHORIZED"},
		{"auth: no token", "DELETE", "/v2/test/base/manifests/latest", nil, nil, "", 401, "UNAUTHORIZED"},
	}
	before := s.Snapshot(t)
	for _, c := range cases {
		var body *bytes.Reader
		if c.body != nil {
			body = bytes.NewReader(c.body)
		}
		var resp test.Response
		if body != nil {
			resp = s.Do(t, c.method, c.path, c.token, c.header, body)
		} else {
			resp = s.Do(t, c.method, c.path, c.token, c.header, nil)
		}
		if resp.Status != c.status || resp.ErrorCode() != c.code {
			t.Errorf("%s: got %d %s, want %d %s (body %.200s)", c.name, resp.Status, resp.ErrorCode(), c.status, c.code, resp.Body)
		}
		if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s: error has Content-Type %q", c.name, resp.Header.Get("Content-Type"))
		}
		if after := s.Snapshot(t); after != before {
			t.Fatalf("%s changed the registry's state:\n%s", c.name, test.DiffLines(before, after))
		}
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
}
