package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Sizes are the content sizes of the scenarios. The CLI uses
// DefaultSizes; tests use small ones.
type Sizes struct {
	BigBlob  int64 // blob push and pull
	Chunk    int64 // PATCH size of the chunked push
	Layer    int   // each of the three pull storm layers
	Tags     int   // tags in the tag list repository
	Repos    int   // repositories for the catalog
	PageSize int   // n of the paged tag list
}

// DefaultSizes are the sizes of issue 4.
func DefaultSizes() Sizes {
	return Sizes{BigBlob: 64 << 20, Chunk: 8 << 20, Layer: 1 << 20, Tags: 2000, Repos: 500, PageSize: 100}
}

// op is one timed operation; it returns the bytes it moved.
type op func(ctx context.Context, i uint64) (int64, error)

// env is what a scenario's setup gets.
type env struct {
	c       *Client
	cfg     Config
	repo    string
	nonce   uint64
	clients int
}

// scenario is one benchmark: setup (untimed) returns the timed operation.
type scenario struct {
	name     string
	desc     string
	parallel bool // runs with Config.Clients workers, else one
	bulk     bool // report MB/s
	setup    func(ctx context.Context, e env) (op, error)
}

// Scenarios lists the names of all scenarios, in the order "all" runs them.
func Scenarios() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// Describe returns the one-line description of a scenario.
func Describe(name string) string {
	for _, s := range scenarios {
		if s.name == name {
			return s.desc
		}
	}
	return ""
}

var scenarios = []scenario{
	{name: "blob-push-monolithic", desc: "push a new big blob: POST, then PUT ?digest= with the content", bulk: true, setup: setupPushMonolithic},
	{name: "blob-push-chunked", desc: "push a new big blob: POST, PATCHes of the chunk size, PUT ?digest=", bulk: true, setup: setupPushChunked},
	{name: "blob-pull", desc: "GET a big blob (hashing it unless --no-verify)", bulk: true, setup: setupPull},
	{name: "manifest-put", desc: "PUT a new small manifest under a new tag, one client", setup: setupManifestPut},
	{name: "manifest-put-parallel", desc: "PUT a new small manifest under a new tag, N clients", parallel: true, setup: setupManifestPut},
	{name: "manifest-get", desc: "GET a manifest by tag, N clients", parallel: true, setup: setupManifestGet},
	{name: "blob-head", desc: "HEAD a blob, N clients", parallel: true, setup: setupBlobHead},
	{name: "tag-list", desc: "GET the whole tag list of a repository with many tags", setup: setupTagList(false)},
	{name: "tag-list-paged", desc: "walk the tag list of a repository with many tags in pages of n", setup: setupTagList(true)},
	{name: "catalog", desc: "walk /v2/_catalog with many repositories (n=1000 per page)", setup: setupCatalog},
	{name: "pull-storm", desc: "pull an image (manifest by tag, config, three layers), N clients", parallel: true, bulk: true, setup: setupPullStorm},
}

func setupPushMonolithic(_ context.Context, e env) (op, error) {
	src, err := newBlobSource(e.cfg.Sizes.BigBlob, e.nonce)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, i uint64) (int64, error) {
		return src.size, e.c.pushMonolithic(ctx, e.repo, src.Digest(i), src.size, func() io.Reader { return src.Reader(i) })
	}, nil
}

func setupPushChunked(_ context.Context, e env) (op, error) {
	src, err := newBlobSource(e.cfg.Sizes.BigBlob, e.nonce)
	if err != nil {
		return nil, err
	}
	chunk := e.cfg.Sizes.Chunk
	if chunk <= 0 {
		return nil, fmt.Errorf("chunk size must be positive")
	}
	return func(ctx context.Context, i uint64) (int64, error) {
		// The chunks read one stream in order; only a repeated request
		// (after a token fetch) regenerates its section from the start.
		stream := src.Reader(i)
		section := func(off, n int64) func() io.Reader {
			first := true
			return func() io.Reader {
				if first {
					first = false
					return io.LimitReader(stream, n)
				}
				return src.Section(i, off, n)
			}
		}
		return src.size, e.c.pushChunked(ctx, e.repo, src.Digest(i), src.size, chunk, section)
	}, nil
}

func setupPull(ctx context.Context, e env) (op, error) {
	src, err := newBlobSource(e.cfg.Sizes.BigBlob, e.nonce)
	if err != nil {
		return nil, err
	}
	d := src.Digest(0)
	if err := e.c.pushMonolithic(ctx, e.repo, d, src.size, func() io.Reader { return src.Reader(0) }); err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ uint64) (int64, error) {
		n, err := e.c.getBlob(ctx, e.repo, d, e.cfg.NoVerify)
		if err == nil && n != src.size {
			err = fmt.Errorf("blob pull: got %d bytes, want %d", n, src.size)
		}
		return n, err
	}, nil
}

func setupManifestPut(ctx context.Context, e env) (op, error) {
	img, err := e.c.pushImage(ctx, e.repo, e.nonce, 1024)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, i uint64) (int64, error) {
		m := img.manifest(fmt.Sprintf("%d-%d", e.nonce, i))
		return int64(len(m)), e.c.putManifest(ctx, e.repo, fmt.Sprintf("put-%x-%d", e.nonce, i), m)
	}, nil
}

func setupManifestGet(ctx context.Context, e env) (op, error) {
	img, err := e.c.pushImage(ctx, e.repo, e.nonce, 1024)
	if err != nil {
		return nil, err
	}
	if err := e.c.putManifest(ctx, e.repo, "get", img.manifest("get")); err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ uint64) (int64, error) {
		_, n, err := e.c.call(ctx, request{
			Method: http.MethodGet, Path: "/v2/" + e.repo + "/manifests/get", Scope: pushScope(e.repo),
			Header: http.Header{"Accept": {mediaManifest}},
		})
		return n, err
	}, nil
}

func setupBlobHead(ctx context.Context, e env) (op, error) {
	img, err := e.c.pushImage(ctx, e.repo, e.nonce)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ uint64) (int64, error) {
		_, _, err := e.c.call(ctx, request{Method: http.MethodHead, Path: "/v2/" + e.repo + "/blobs/" + img.config.Digest, Scope: pushScope(e.repo)})
		return 0, err
	}, nil
}

// parallelFor runs f(0..n-1) on up to workers goroutines and returns the
// first error.
func parallelFor(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan int)
	for w := 0; w < max(1, workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func setupTagList(paged bool) func(ctx context.Context, e env) (op, error) {
	return func(ctx context.Context, e env) (op, error) {
		repo := e.repo + "-tags"
		img, err := e.c.pushImage(ctx, repo, 1, 1024)
		if err != nil {
			return nil, err
		}
		m := img.manifest("tags")
		want := e.cfg.Sizes.Tags
		err = parallelFor(ctx, want, e.clients, func(ctx context.Context, i int) error {
			return e.c.putManifest(ctx, repo, fmt.Sprintf("t%05d", i), m)
		})
		if err != nil {
			return nil, err
		}
		path := "/v2/" + repo + "/tags/list"
		if paged {
			path += fmt.Sprintf("?n=%d", max(1, e.cfg.Sizes.PageSize))
		}
		return func(ctx context.Context, _ uint64) (int64, error) {
			n, b, err := e.c.listAll(ctx, path, pushScope(repo), "tags")
			if err == nil && n < want {
				err = fmt.Errorf("tag list: %d tags, want at least %d", n, want)
			}
			return b, err
		}, nil
	}
}

func setupCatalog(ctx context.Context, e env) (op, error) {
	want := e.cfg.Sizes.Repos
	err := parallelFor(ctx, want, e.clients, func(ctx context.Context, i int) error {
		repo := fmt.Sprintf("%s-cat-%04d", e.repo, i)
		img, err := e.c.pushImage(ctx, repo, 2)
		if err != nil {
			return err
		}
		return e.c.putManifest(ctx, repo, "latest", img.manifest("catalog"))
	})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ uint64) (int64, error) {
		n, b, err := e.c.listAll(ctx, "/v2/_catalog?n=1000", catalogScope, "repositories")
		if err == nil && n < want {
			err = fmt.Errorf("catalog: %d repositories, want at least %d", n, want)
		}
		return b, err
	}, nil
}

func setupPullStorm(ctx context.Context, e env) (op, error) {
	n := e.cfg.Sizes.Layer
	img, err := e.c.pushImage(ctx, e.repo, e.nonce, n, n, n)
	if err != nil {
		return nil, err
	}
	if err := e.c.putManifest(ctx, e.repo, "storm", img.manifest("storm")); err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ uint64) (int64, error) {
		_, total, err := e.c.call(ctx, request{
			Method: http.MethodGet, Path: "/v2/" + e.repo + "/manifests/storm", Scope: pushScope(e.repo),
			Header: http.Header{"Accept": {mediaManifest}},
		})
		if err != nil {
			return total, err
		}
		for _, d := range append([]descriptor{img.config}, img.layers...) {
			got, err := e.c.getBlob(ctx, e.repo, d.Digest, e.cfg.NoVerify)
			total += got
			if err != nil {
				return total, err
			}
		}
		return total, nil
	}, nil
}
