// Package bench holds HTTP benchmarks of the registry: blob push and pull
// throughput, manifest GET and PUT rates, and tag listing. They drive the
// real keppel binary (embedded mode) over loopback and, when
// KEPPEL_BENCH_DISTRIBUTION names a CNCF Distribution registry binary, the
// same requests against it, side by side. See docs/benchmarks.md.
package bench

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"keppel/internal/loadgen"
	"keppel/internal/test"
)

// target is a registry under test.
type target struct {
	name   string
	url    string
	token  string
	client *http.Client
}

var (
	targetsOnce sync.Once
	targets     []*target
)

func getTargets(b *testing.B) []*target {
	targetsOnce.Do(func() {
		p := test.StartKeppel(&keepAlive{TB: b})
		p.CreateAccount(b, "bench", "tenant1")
		targets = append(targets, &target{name: "keppel", url: p.URL, client: newClient(),
			token: token(b, p.URL, "repository:bench/repo:pull,push,delete")})
		if bin := os.Getenv("KEPPEL_BENCH_DISTRIBUTION"); bin != "" {
			targets = append(targets, &target{name: "distribution", url: startDistribution(b, bin), client: newClient()})
		}
	})
	return targets
}

// keepAlive lets the servers outlive the first benchmark that starts them:
// they are shared by all benchmarks of the process and end with it.
type keepAlive struct{ testing.TB }

func (keepAlive) Cleanup(func()) {}

func (k keepAlive) TempDir() string {
	dir, err := os.MkdirTemp("", "keppel-bench-")
	if err != nil {
		k.Fatal(err)
	}
	return dir
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

func token(b testing.TB, base, scope string) string {
	req, _ := http.NewRequest("GET", base+"/keppel/v1/auth?scope="+scope, nil)
	req.SetBasicAuth("admin", test.AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	buf, _ := io.ReadAll(resp.Body)
	const prefix = `{"token":"`
	if !bytes.HasPrefix(buf, []byte(prefix)) {
		b.Fatalf("token response: %s", buf)
	}
	rest := buf[len(prefix):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func startDistribution(b testing.TB, bin string) string {
	return startDistributionWith(b, bin, "")
}

// startDistributionWith starts Distribution on the filesystem with more
// configuration (YAML top-level sections) and returns its URL. The process
// ends with b (or with the benchmark process, for shared servers).
func startDistributionWith(b testing.TB, bin, more string) string {
	dir, err := os.MkdirTemp("", "distribution-bench-")
	if err != nil {
		b.Fatal(err)
	}
	addr := test.FreeAddress(b)
	config := loadgen.DistributionConfig(filepath.Join(dir, "data"), addr) + more
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	})
	url := "http://" + addr
	for i := 0; i < 300; i++ {
		if resp, err := http.Get(url + "/v2/"); err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("distribution did not start")
	return ""
}

func (t *target) do(b testing.TB, method, path string, header http.Header, body []byte) *http.Response {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, t.url+path, r)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (t *target) pushBlob(b testing.TB, content []byte) digest.Digest {
	d := digest.FromBytes(content)
	resp := t.do(b, "POST", "/v2/bench/repo/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("%s: start upload: %d", t.name, resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	sep := "?"
	if bytes.ContainsRune([]byte(loc), '?') {
		sep = "&"
	}
	req, _ := http.NewRequest("PUT", resolve(t.url, loc)+sep+"digest="+d.String(), bytes.NewReader(content))
	req.Header.Set("Content-Type", "application/octet-stream")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("%s: finish upload: %d", t.name, resp.StatusCode)
	}
	return d
}

func resolve(base, loc string) string {
	if len(loc) > 0 && loc[0] == '/' {
		return base + loc
	}
	return loc
}

func randomBytes(b testing.TB, n int) []byte {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	return buf
}

func (t *target) pushManifest(b testing.TB, ref string, m []byte) {
	resp := t.do(b, "PUT", "/v2/bench/repo/manifests/"+ref,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, m)
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("%s: manifest push: %d", t.name, resp.StatusCode)
	}
}

// image pushes a config and a layer and returns a manifest for them whose
// annotation makes it unique.
func (t *target) image(b testing.TB, unique string) []byte {
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := randomBytes(b, 1024)
	cd, ld := t.pushBlob(b, config), t.pushBlob(b, layer)
	return manifest(cd, ld, len(config), len(layer), unique)
}

func manifest(cd, ld digest.Digest, cs, ls int, unique string) []byte {
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cd.String() + `","size":` + strconv.Itoa(cs) + `},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + ld.String() + `","size":` + strconv.Itoa(ls) + `}],` +
		`"annotations":{"bench":"` + unique + `"}}`)
}
