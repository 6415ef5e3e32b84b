// Package oci serves the OCI Distribution API under /v2/. Handlers are thin:
// they authorize the request, call the registry service, and render the
// result; errors are mapped to OCI error codes in one place (errors.go).
package oci

import "strings"

// Route kinds of the /v2/ API.
const (
	routeBase = iota + 1
	routeCatalog
	routeManifest
	routeBlob
	routeUploadStart
	routeUpload
	routeTags
	routeReferrers
)

// route is a parsed /v2/ request path.
type route struct {
	kind int
	// repo is the full repository name (empty for base and catalog).
	repo string
	// ref is the manifest reference, blob digest, upload UUID or subject digest.
	ref string
}

// parseRoute splits a /v2/ path into the repository name and the resource.
// Repository names contain slashes, so the resource is found by its suffix.
// It returns ok=false for paths that are not part of the API.
func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{kind: routeBase}, true
		}
		return route{}, false
	}
	switch rest {
	case "":
		return route{kind: routeBase}, true
	case "_catalog":
		return route{kind: routeCatalog}, true
	}
	if repo, ok := strings.CutSuffix(rest, "/tags/list"); ok && repo != "" {
		return route{kind: routeTags, repo: repo}, true
	}
	if repo, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok && repo != "" {
		return route{kind: routeUploadStart, repo: repo}, true
	}
	if repo, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok && repo != "" {
		return route{kind: routeUploadStart, repo: repo}, true
	}
	// The last path element is the reference; what precedes it names the resource.
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return route{}, false
	}
	prefix, ref := rest[:i], rest[i+1:]
	for _, r := range []struct {
		suffix string
		kind   int
	}{
		{"/blobs/uploads", routeUpload},
		{"/manifests", routeManifest},
		{"/blobs", routeBlob},
		{"/referrers", routeReferrers},
	} {
		if repo, ok := strings.CutSuffix(prefix, r.suffix); ok && repo != "" {
			return route{kind: r.kind, repo: repo, ref: ref}, true
		}
	}
	return route{}, false
}
