package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"keppel/internal/test"
)

// pullThroughSetup is an upstream Distribution registry with caches in
// front of it: a keppel pull-through account and, with
// KEPPEL_BENCH_DISTRIBUTION, a Distribution registry in proxy mode.
type pullThroughSetup struct {
	upstream *target
	caches   []*target
	// prefix is what each cache puts before the upstream's repository name.
	prefix map[string]string
}

func newPullThroughSetup(b *testing.B) *pullThroughSetup {
	up := test.StartDistribution(b)
	s := &pullThroughSetup{upstream: &target{name: "upstream", url: "http://" + up, client: newClient()},
		prefix: map[string]string{}}

	p := test.StartKeppel(b)
	req, _ := http.NewRequest("PUT", p.URL+"/keppel/v1/accounts/mirror", strings.NewReader(
		`{"account":{"auth_tenant_id":"tenant1","replication":{"strategy":"from_external_on_first_use","upstream":{"url":"http://`+up+`"}}}}`))
	req.SetBasicAuth("admin", test.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("creating the pull-through account: %d", resp.StatusCode)
	}
	s.caches = append(s.caches, &target{name: "keppel", url: p.URL, client: newClient(),
		token: token(b, p.URL, "repository:mirror/library/cold:pull")})
	s.prefix["keppel"] = "mirror/"

	if bin := os.Getenv("KEPPEL_BENCH_DISTRIBUTION"); bin != "" {
		s.caches = append(s.caches, &target{name: "distribution", url: startDistributionWith(b, bin, "proxy:\n  remoteurl: http://"+up+"\n"), client: newClient()})
	}
	return s
}

// pushUpstream pushes an image with one new layer of size bytes to the
// upstream as library/cold:<tag> and returns the layer's digest.
func (s *pullThroughSetup) pushUpstream(b *testing.B, tag string, size int) digest.Digest {
	up := *s.upstream
	push := func(content []byte) digest.Digest {
		d := digest.FromBytes(content)
		resp := up.do(b, "POST", "/v2/library/cold/blobs/uploads/", nil, nil)
		loc := resp.Header.Get("Location")
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		req, _ := http.NewRequest("PUT", resolve(up.url, loc)+sep+"digest="+d.String(), strings.NewReader(string(content)))
		r, err := up.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusCreated {
			b.Fatalf("upstream push: %d", r.StatusCode)
		}
		return d
	}
	config := []byte(`{"architecture":"amd64","os":"linux","bench":"` + tag + `"}`)
	layer := randomBytes(b, size)
	cd, ld := push(config), push(layer)
	m := manifest(cd, ld, len(config), len(layer), tag)
	resp := up.do(b, "PUT", "/v2/library/cold/manifests/"+tag,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, m)
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("upstream manifest push: %d", resp.StatusCode)
	}
	return ld
}

// pull pulls the manifest and then the layer through the cache with
// clients concurrent clients, and checks that each got size bytes.
func (s *pullThroughSetup) pull(b *testing.B, t *target, tag string, layer digest.Digest, size, clients int) {
	repo := "/v2/" + s.prefix[t.name] + "library/cold"
	if resp := t.do(b, "GET", repo+"/manifests/"+tag, http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}, nil); resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: manifest pull: %d", t.name, resp.StatusCode)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", t.url+repo+"/blobs/"+layer.String(), nil)
			if t.token != "" {
				req.Header.Set("Authorization", "Bearer "+t.token)
			}
			resp, err := t.client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				errs <- fmt.Errorf("%s: blob pull of %s: %d %s", t.name, layer, resp.StatusCode, msg)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || n != int64(size) {
				errs <- fmt.Errorf("%s: blob pull of %s: %d bytes, %v", t.name, layer, n, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// tagCounter makes every tag pushed to the upstream new (the benchmark
// functions run several times, and the caches keep tags for a while).
var tagCounter atomic.Int64

// BenchmarkPullThroughCold: the first pull of an image with a 16 MiB layer
// through a pull-through cache (manifest and layer fetched from the
// upstream while the client waits), by one client and by 8 clients at once.
func BenchmarkPullThroughCold(b *testing.B) {
	s := newPullThroughSetup(b)
	for _, clients := range []int{1, 8} {
		for _, t := range s.caches {
			b.Run(fmt.Sprintf("%s/clients=%d", t.name, clients), func(b *testing.B) {
				b.SetBytes(blobSize)
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					tag := t.name + "-" + strconv.Itoa(clients) + "-" + strconv.FormatInt(tagCounter.Add(1), 10)
					layer := s.pushUpstream(b, tag, blobSize)
					b.StartTimer()
					s.pull(b, t, tag, layer, blobSize, clients)
				}
			})
		}
	}
}

// BenchmarkPullThroughWarm: a pull of an image through a pull-through
// cache that has it already.
func BenchmarkPullThroughWarm(b *testing.B) {
	s := newPullThroughSetup(b)
	for _, t := range s.caches {
		b.Run(t.name, func(b *testing.B) {
			tag := t.name + "-warm-" + strconv.FormatInt(tagCounter.Add(1), 10)
			layer := s.pushUpstream(b, tag, blobSize)
			s.pull(b, t, tag, layer, blobSize, 1)
			b.SetBytes(blobSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.pull(b, t, tag, layer, blobSize, 1)
			}
		})
	}
}
