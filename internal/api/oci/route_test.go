package oci

import (
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	cases := []struct {
		path string
		want route
		ok   bool
	}{
		{"/v2/", route{kind: routeBase}, true},
		{"/v2", route{kind: routeBase}, true},
		{"/v2/_catalog", route{kind: routeCatalog}, true},
		{"/v2/a/b/tags/list", route{kind: routeTags, repo: "a/b"}, true},
		{"/v2/a/b/manifests/latest", route{kind: routeManifest, repo: "a/b", ref: "latest"}, true},
		{"/v2/a/b/c/manifests/sha256:abc", route{kind: routeManifest, repo: "a/b/c", ref: "sha256:abc"}, true},
		{"/v2/a/b/blobs/sha256:abc", route{kind: routeBlob, repo: "a/b", ref: "sha256:abc"}, true},
		{"/v2/a/b/blobs/uploads/", route{kind: routeUploadStart, repo: "a/b"}, true},
		{"/v2/a/b/blobs/uploads", route{kind: routeUploadStart, repo: "a/b"}, true},
		{"/v2/a/b/blobs/uploads/1234", route{kind: routeUpload, repo: "a/b", ref: "1234"}, true},
		{"/v2/a/b/referrers/sha256:abc", route{kind: routeReferrers, repo: "a/b", ref: "sha256:abc"}, true},
		// a repository may be called "manifests" or "blobs"
		{"/v2/a/manifests/manifests/x", route{kind: routeManifest, repo: "a/manifests", ref: "x"}, true},
		{"/v2/a/blobs/blobs/sha256:abc", route{kind: routeBlob, repo: "a/blobs", ref: "sha256:abc"}, true},
		{"/v2/a/b/manifests/", route{}, false},
		{"/v2/manifests/x", route{}, false},
		{"/v2/a/b/unknown/x", route{}, false},
		{"/v3/a/b/manifests/x", route{}, false},
		{"/v2/a/b/tags/list/", route{}, false},
	}
	for _, c := range cases {
		got, ok := parseRoute(c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("parseRoute(%q) = %+v, %v; want %+v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, seed := range []string{"/v2/", "/v2/_catalog", "/v2/a/b/tags/list", "/v2/a/b/manifests/x",
		"/v2/a/b/blobs/uploads/", "/v2/a/b/blobs/uploads/u", "/v2/a/b/referrers/sha256:0", "/v2/a//b/../c/blobs/x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, ok := parseRoute(path)
		if !ok {
			return
		}
		if r.kind < routeBase || r.kind > routeReferrers {
			t.Fatalf("unknown kind %d", r.kind)
		}
		if r.kind == routeBase || r.kind == routeCatalog {
			if r.repo != "" || r.ref != "" {
				t.Fatalf("%q: base route with repo %q ref %q", path, r.repo, r.ref)
			}
			return
		}
		// The repository is a prefix of the path after /v2/, and the
		// reference (if any) is its last element, without slashes.
		if r.repo == "" || !strings.HasPrefix(path, "/v2/"+r.repo+"/") {
			t.Fatalf("%q: repo %q is not a prefix", path, r.repo)
		}
		if strings.Contains(r.ref, "/") || (r.ref != "" && !strings.HasSuffix(path, "/"+r.ref)) {
			t.Fatalf("%q: ref %q is not the last element", path, r.ref)
		}
	})
}
