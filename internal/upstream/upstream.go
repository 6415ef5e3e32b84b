// Package upstream is a client of another OCI registry: a peer Keppel or
// any registry that a pull-through account mirrors. It reads manifests,
// blobs, tag lists and referrers, and does the registry's auth handshake
// (anonymous, basic, or Docker-style bearer tokens) through
// go-containerregistry's transport.
package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ManifestMediaTypes are the manifest media types asked for, in the order
// of preference.
var ManifestMediaTypes = []string{
	imagespec.MediaTypeImageManifest,
	imagespec.MediaTypeImageIndex,
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}

// maxManifestSize bounds what is read of a manifest (as the registry
// accepts it on push).
const maxManifestSize = 4 << 20

// transportTTL is how long the authenticated transport of a repository is
// reused (its bearer tokens refresh themselves meanwhile).
const transportTTL = 10 * time.Minute

// maxTransports bounds the transports kept, one per repository.
const maxTransports = 1024

// Registry is an upstream registry.
type Registry struct {
	reg    name.Registry
	prefix string
	auth   authn.Authenticator
	inner  http.RoundTripper

	mu         sync.Mutex
	transports map[string]cachedTransport
}

type cachedTransport struct {
	rt      http.RoundTripper
	created time.Time
}

// New returns a client of the registry at rawURL: a host with an optional
// port and path ("registry-1.docker.io", "quay.io/prefix"), or the same
// with an http:// or https:// scheme. Without a scheme, https is used
// (http only for localhost). A path is a prefix of every repository name.
// Empty credentials mean anonymous access. inner carries the requests
// (http.DefaultTransport if nil).
func New(rawURL, username, password string, inner http.RoundTripper) (*Registry, error) {
	insecure := false
	host := rawURL
	switch {
	case strings.HasPrefix(rawURL, "http://"):
		insecure, host = true, strings.TrimPrefix(rawURL, "http://")
	case strings.HasPrefix(rawURL, "https://"):
		host = strings.TrimPrefix(rawURL, "https://")
	}
	host, prefix, _ := strings.Cut(strings.TrimSuffix(host, "/"), "/")
	opts := []name.Option{name.StrictValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream registry %q: %w", rawURL, err)
	}
	if prefix != "" {
		prefix += "/"
	}
	var a authn.Authenticator = authn.Anonymous
	if username != "" || password != "" {
		a = authn.FromConfig(authn.AuthConfig{Username: username, Password: password})
	}
	if inner == nil {
		inner = http.DefaultTransport
	}
	return &Registry{reg: reg, prefix: prefix, auth: a, inner: inner, transports: map[string]cachedTransport{}}, nil
}

// Host returns the upstream's host (with port).
func (r *Registry) Host() string { return r.reg.RegistryStr() }

// Manifest is a manifest as the upstream serves it.
type Manifest struct {
	Content   []byte
	MediaType string
	Digest    digest.Digest
}

// GetManifest reads the manifest of repo by tag or digest. A manifest read
// by digest is checked against it.
func (r *Registry) GetManifest(ctx context.Context, repo, reference string) (Manifest, error) {
	resp, err := r.do(ctx, http.MethodGet, repo, "/manifests/"+reference, strings.Join(ManifestMediaTypes, ", "))
	if err != nil {
		return Manifest{}, err
	}
	defer resp.Body.Close()
	content, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("reading manifest %s:%s from %s: %w", repo, reference, r.Host(), err)
	}
	if len(content) > maxManifestSize {
		return Manifest{}, fmt.Errorf("manifest %s:%s from %s is larger than %d bytes", repo, reference, r.Host(), maxManifestSize)
	}
	m := Manifest{Content: content, MediaType: mediaType(resp.Header.Get("Content-Type"))}
	want, err := digest.Parse(reference)
	if err == nil {
		m.Digest = want.Algorithm().FromBytes(content)
		if m.Digest != want {
			return Manifest{}, fmt.Errorf("manifest %s@%s from %s has digest %s", repo, reference, r.Host(), m.Digest)
		}
	} else {
		m.Digest = digest.SHA256.FromBytes(content)
	}
	return m, nil
}

// Descriptor is what a HEAD request says about a manifest.
type Descriptor struct {
	MediaType string
	Digest    digest.Digest
	Size      int64
}

// HeadManifest resolves a tag or digest without reading the manifest.
func (r *Registry) HeadManifest(ctx context.Context, repo, reference string) (Descriptor, error) {
	resp, err := r.do(ctx, http.MethodHead, repo, "/manifests/"+reference, strings.Join(ManifestMediaTypes, ", "))
	if err != nil {
		return Descriptor{}, err
	}
	defer resp.Body.Close()
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return Descriptor{}, fmt.Errorf("HEAD of manifest %s:%s at %s gave no valid Docker-Content-Digest", repo, reference, r.Host())
	}
	return Descriptor{MediaType: mediaType(resp.Header.Get("Content-Type")), Digest: d, Size: resp.ContentLength}, nil
}

// GetBlob opens the blob for reading; the caller checks the digest while
// reading and closes the reader. size is -1 if the upstream did not say.
func (r *Registry) GetBlob(ctx context.Context, repo string, d digest.Digest) (rc io.ReadCloser, size int64, err error) {
	resp, err := r.do(ctx, http.MethodGet, repo, "/blobs/"+d.String(), "")
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// ListTags returns all tags of the repository, following pagination.
func (r *Registry) ListTags(ctx context.Context, repo string) ([]string, error) {
	var tags []string
	path := "/tags/list?n=1000"
	for range 10_000 {
		resp, err := r.do(ctx, http.MethodGet, repo, path, "application/json")
		if err != nil {
			return nil, err
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&page)
		link := resp.Header.Get("Link")
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("decoding tag list of %s at %s: %w", repo, r.Host(), err)
		}
		tags = append(tags, page.Tags...)
		next, ok := nextPage(link, r.prefix+repo)
		if !ok {
			return tags, nil
		}
		path = next
	}
	return nil, fmt.Errorf("tag list of %s at %s has too many pages", repo, r.Host())
}

// Referrers returns the descriptors of the manifests that refer to d. An
// upstream without the referrers API gives an empty list.
func (r *Registry) Referrers(ctx context.Context, repo string, d digest.Digest) ([]imagespec.Descriptor, error) {
	resp, err := r.do(ctx, http.MethodGet, repo, "/referrers/"+d.String(), imagespec.MediaTypeImageIndex)
	var ue *Error
	if errors.As(err, &ue) && ue.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var index imagespec.Index
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxManifestSize)).Decode(&index); err != nil {
		return nil, fmt.Errorf("decoding referrers of %s@%s at %s: %w", repo, d, r.Host(), err)
	}
	return index.Manifests, nil
}

// do sends a request below /v2/<prefix><repo> and returns a successful
// response, or an *Error.
func (r *Registry) do(ctx context.Context, method, repo, path, accept string) (*http.Response, error) {
	rt, err := r.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: r.reg.Scheme(), Host: r.reg.RegistryStr(), Path: "/v2/" + r.prefix + repo}
	full := u.String() + path
	req, err := http.NewRequestWithContext(ctx, method, full, nil)
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %w", r.Host(), err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %s", ErrUnreachable, method, r.Host(), err.Error())
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		r.forget(repo) // a new handshake next time
	}
	return nil, responseError(resp, r.Host())
}

// transport returns the authenticated transport for the repository,
// doing the auth handshake if there is none yet.
func (r *Registry) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	r.mu.Lock()
	c, ok := r.transports[repo]
	r.mu.Unlock()
	if ok && time.Since(c.created) < transportTTL {
		return c.rt, nil
	}
	scope := "repository:" + r.prefix + repo + ":" + transport.PullScope
	rt, err := transport.NewWithContext(ctx, r.reg, r.auth, r.inner, []string{scope})
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) {
			return nil, &Error{Host: r.Host(), Status: te.StatusCode, Message: te.Error()}
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrUnreachable, r.Host(), err.Error())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.transports) >= maxTransports {
		for k, v := range r.transports {
			if time.Since(v.created) >= transportTTL || len(r.transports) >= maxTransports {
				delete(r.transports, k)
			}
		}
	}
	r.transports[repo] = cachedTransport{rt: rt, created: time.Now()}
	return rt, nil
}

func (r *Registry) forget(repo string) {
	r.mu.Lock()
	delete(r.transports, repo)
	r.mu.Unlock()
}

// nextPage returns the path (below the repository) of the next page of a
// Link header, if it stays within the repository's tag list.
func nextPage(link, fullRepo string) (string, bool) {
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start || !strings.Contains(link[end:], `rel="next"`) {
		return "", false
	}
	u, err := url.Parse(link[start+1 : end])
	if err != nil {
		return "", false
	}
	rest, ok := strings.CutPrefix(u.Path, "/v2/"+fullRepo)
	if !ok || rest != "/tags/list" {
		return "", false
	}
	return rest + "?" + u.RawQuery, true
}

func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.TrimSpace(mt)
}

// ErrUnreachable wraps failures to reach the upstream at all.
var ErrUnreachable = errors.New("upstream registry unreachable")

// Error is an error answer of the upstream registry.
type Error struct {
	Host   string
	Status int
	// Code is the first OCI error code of the answer ("" if none).
	Code    string
	Message string
	// RetryAfter is the upstream's Retry-After header of a 429.
	RetryAfter string
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		msg = e.Code + ": " + msg
	}
	return fmt.Sprintf("upstream registry %s answered %d: %s", e.Host, e.Status, msg)
}

// NotFound reports whether the upstream does not have what was asked for.
func (e *Error) NotFound() bool { return e.Status == http.StatusNotFound }

func responseError(resp *http.Response, host string) *Error {
	e := &Error{Host: host, Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body) == nil && len(body.Errors) > 0 {
		e.Code, e.Message = body.Errors[0].Code, body.Errors[0].Message
	}
	if e.RetryAfter != "" {
		if _, err := strconv.Atoi(e.RetryAfter); err != nil {
			if _, err := http.ParseTime(e.RetryAfter); err != nil {
				e.RetryAfter = ""
			}
		}
	}
	return e
}
