package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

func pushScope(repo string) string { return "repository:" + repo + ":pull,push" }

const catalogScope = "registry:catalog:*"

// resolve makes an upload Location absolute against the registry base URL.
func (c *Client) resolve(loc string) (string, error) {
	base, err := url.Parse(c.base + "/")
	if err != nil {
		return "", err
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("bad upload location %q: %w", loc, err)
	}
	return u.String(), nil
}

func withQuery(u, key, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + url.QueryEscape(key) + "=" + url.QueryEscape(value)
}

// startUpload opens an upload session and returns its absolute location.
func (c *Client) startUpload(ctx context.Context, repo string) (string, error) {
	h, _, err := c.call(ctx, request{
		Method: http.MethodPost, Path: "/v2/" + repo + "/blobs/uploads/",
		Scope: pushScope(repo), Expect: []int{http.StatusAccepted},
	})
	if err != nil {
		return "", err
	}
	loc := h.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("POST /v2/%s/blobs/uploads/: no Location", repo)
	}
	return c.resolve(loc)
}

// pushMonolithic uploads a blob with POST + PUT ?digest=, streaming body().
func (c *Client) pushMonolithic(ctx context.Context, repo, digest string, size int64, body func() io.Reader) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	_, _, err = c.call(ctx, request{
		Method: http.MethodPut, Path: withQuery(loc, "digest", digest), Scope: pushScope(repo),
		Header: http.Header{"Content-Type": {"application/octet-stream"}},
		Body:   body, Length: size, Expect: []int{http.StatusCreated},
	})
	return err
}

func (c *Client) pushBytes(ctx context.Context, repo string, b []byte) (string, error) {
	d := digestOf(b)
	return d, c.pushMonolithic(ctx, repo, d, int64(len(b)), func() io.Reader { return bytes.NewReader(b) })
}

// pushChunked uploads a blob with POST, PATCHes of chunk bytes and a final
// PUT ?digest=. next returns the reader for each chunk in order.
func (c *Client) pushChunked(ctx context.Context, repo, digest string, size, chunk int64, section func(off, n int64) func() io.Reader) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	const maxChunks = 1 << 16
	var off int64
	for i := 0; off < size && i < maxChunks; i++ {
		n := min(chunk, size-off)
		h, _, err := c.call(ctx, request{
			Method: http.MethodPatch, Path: loc, Scope: pushScope(repo),
			Header: http.Header{
				"Content-Type":  {"application/octet-stream"},
				"Content-Range": {fmt.Sprintf("%d-%d", off, off+n-1)},
			},
			Body: section(off, n), Length: n, Expect: []int{http.StatusAccepted},
		})
		if err != nil {
			return err
		}
		if l := h.Get("Location"); l != "" {
			if loc, err = c.resolve(l); err != nil {
				return err
			}
		}
		off += n
	}
	_, _, err = c.call(ctx, request{
		Method: http.MethodPut, Path: withQuery(loc, "digest", digest), Scope: pushScope(repo),
		Body: func() io.Reader { return http.NoBody }, Length: 0, Expect: []int{http.StatusCreated},
	})
	return err
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

func manifestJSON(config descriptor, layers []descriptor, unique string) []byte {
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        config,
		"layers":        layers,
		"annotations":   map[string]string{"org.example.bench": unique},
	}
	b, _ := json.Marshal(m)
	return b
}

func (c *Client) putManifest(ctx context.Context, repo, ref string, m []byte) error {
	_, _, err := c.call(ctx, request{
		Method: http.MethodPut, Path: "/v2/" + repo + "/manifests/" + ref, Scope: pushScope(repo),
		Header: http.Header{"Content-Type": {mediaManifest}},
		Body:   func() io.Reader { return bytes.NewReader(m) }, Length: int64(len(m)),
		Expect: []int{http.StatusCreated},
	})
	return err
}

// image is a pushed image: its config and layers, in memory (small).
type image struct {
	config descriptor
	layers []descriptor
	blobs  map[string][]byte
}

// pushImage pushes a config and layers of the given sizes into repo.
func (c *Client) pushImage(ctx context.Context, repo string, seed uint64, layerSizes ...int) (*image, error) {
	img := &image{blobs: map[string][]byte{}}
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]},"bench":"` + strconv.FormatUint(seed, 10) + `"}`)
	d, err := c.pushBytes(ctx, repo, cfg)
	if err != nil {
		return nil, err
	}
	img.config = descriptor{mediaConfig, d, int64(len(cfg))}
	img.blobs[d] = cfg
	for i, n := range layerSizes {
		b := smallBlob(n, seed*16+uint64(i)+1)
		d, err := c.pushBytes(ctx, repo, b)
		if err != nil {
			return nil, err
		}
		img.layers = append(img.layers, descriptor{mediaLayer, d, int64(n)})
		img.blobs[d] = b
	}
	return img, nil
}

func (img *image) manifest(unique string) []byte {
	return manifestJSON(img.config, img.layers, unique)
}

// getBlob downloads a blob, verifying its digest unless noVerify.
func (c *Client) getBlob(ctx context.Context, repo, digest string, noVerify bool) (int64, error) {
	resp, err := c.do(ctx, request{Method: http.MethodGet, Path: "/v2/" + repo + "/blobs/" + digest, Scope: pushScope(repo)})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	bufp := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(bufp)
	if noVerify {
		return io.CopyBuffer(discard{}, resp.Body, *bufp)
	}
	v := newVerifier(digest)
	n, err := io.CopyBuffer(v, resp.Body, *bufp)
	if err != nil {
		return n, err
	}
	return n, v.Check()
}

// readBuffers hold blob downloads: large reads keep the client's share of
// the work (and its system calls) small next to the server's.
var readBuffers = sync.Pool{New: func() any {
	buf := make([]byte, 1<<20)
	return &buf
}}

// discard is io.Discard without ReadFrom, whose small buffer io.CopyBuffer
// would use instead of ours.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// listAll walks a paginated listing (tags or catalog) from path, following
// Link headers, and returns the number of entries seen.
func (c *Client) listAll(ctx context.Context, path, scope, field string) (entries int, bytesRead int64, err error) {
	const maxPages = 10000
	for page := 0; path != "" && page < maxPages; page++ {
		resp, err := c.do(ctx, request{Method: http.MethodGet, Path: path, Scope: scope})
		if err != nil {
			return entries, bytesRead, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		bytesRead += int64(len(body))
		if err != nil {
			return entries, bytesRead, err
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(body, &out); err != nil {
			return entries, bytesRead, fmt.Errorf("GET %s: %w", path, err)
		}
		var list []string
		if raw, ok := out[field]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &list); err != nil {
				return entries, bytesRead, fmt.Errorf("GET %s: %w", path, err)
			}
		}
		entries += len(list)
		path = nextPage(resp.Header.Get("Link"))
	}
	return entries, bytesRead, nil
}

// nextPage extracts the target of a `<url>; rel="next"` Link header.
func nextPage(link string) string {
	if link == "" || !strings.Contains(link, `rel="next"`) {
		return ""
	}
	start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
	if start < 0 || end <= start {
		return ""
	}
	return link[start+1 : end]
}
