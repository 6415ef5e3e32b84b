package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"keppel/internal/test"
)

// federatedPair starts two registries, A on 127.0.0.2 and B on 127.0.0.3,
// that are each other's peers, on one claims database, with further
// settings in extraEnv.
func federatedPair(t *testing.T, extraEnv ...string) (a, b *test.Process) {
	t.Helper()
	claims := test.PostgresDatabase(t)
	addrA, addrB := test.FreeAddressOn(t, "127.0.0.2"), test.FreeAddressOn(t, "127.0.0.3")
	peers := "KEPPEL_PEERS=http://" + addrA + ",http://" + addrB
	start := func(addr string) *test.Process {
		env := []string{"KEPPEL_API_LISTEN_ADDRESS=" + addr, "KEPPEL_API_PUBLIC_URL=http://" + addr,
			"KEPPEL_FEDERATION_DRIVER=postgres", "KEPPEL_FEDERATION_POSTGRES_URL=" + claims, peers,
			"KEPPEL_JANITOR_POLL_INTERVAL=100ms", "KEPPEL_JANITOR_REPLICA_SYNC_INTERVAL=1s",
			// A delivery that fails because the other registry is not up
			// yet is tried again after a tenth of this (6 s).
			"KEPPEL_PEER_PASSWORD_ROTATION=1m"}
		return test.StartKeppel(t, append(env, extraEnv...)...)
	}
	return start(addrA), start(addrB)
}

// adminDo sends a management request as admin and reads the answer.
func adminDo(t *testing.T, p *test.Process, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, p.URL+path, strings.NewReader(body))
	req.SetBasicAuth("admin", test.AdminPassword)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func procRef(t *testing.T, p *test.Process, repoAndRef string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(p.Addr+"/"+repoAndRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// eventuallyTrue polls cond every 100 ms for up to timeout.
func eventuallyTrue(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// manifestsOf lists a repository's manifests through the management API.
func manifestsOf(t *testing.T, p *test.Process, repoPath string) map[string]struct {
	LastPulledAt *int64
	Tags         []string
} {
	t.Helper()
	status, body := adminDo(t, p, "GET", "/keppel/v1/accounts/"+repoPath+"/_manifests", "", nil)
	if status != http.StatusOK {
		t.Fatalf("listing manifests of %s: %d %s", repoPath, status, body)
	}
	var out struct {
		Manifests []struct {
			Digest       string `json:"digest"`
			LastPulledAt *int64 `json:"last_pulled_at"`
			Tags         []struct {
				Name string `json:"name"`
			} `json:"tags"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	res := map[string]struct {
		LastPulledAt *int64
		Tags         []string
	}{}
	for _, m := range out.Manifests {
		var tags []string
		for _, tag := range m.Tags {
			tags = append(tags, tag.Name)
		}
		res[m.Digest] = struct {
			LastPulledAt *int64
			Tags         []string
		}{m.LastPulledAt, tags}
	}
	return res
}

// TestFederationReplicaOnFirstUse: two registries peer with each other
// (B logs in at A with the service password that A issued it). A replica of
// A's account, created at B with a sublease token, replicates an image, a
// multi-arch index and an artifact with its referrers on first pull, and
// `keppel validate` through it replicates a whole index; its
// janitor moves and deletes tags and manifests as A does, and reports B's
// pulls to A; with A stopped, B still serves what it replicated.
func TestFederationReplicaOnFirstUse(t *testing.T) {
	t.Parallel()
	a, b := federatedPair(t)
	if status, body := adminDo(t, a, "PUT", "/keppel/v1/accounts/shared", `{"account":{"auth_tenant_id":"tenant"}}`, nil); status != http.StatusCreated {
		t.Fatalf("creating the primary account: %d %s", status, body)
	}
	img, err := random.Image(128<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	imgDigest, _ := img.Digest()
	if err := remote.Write(procRef(t, a, "shared/app:v1"), img, adminAuth()); err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(64<<10, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	if err := remote.WriteIndex(procRef(t, a, "shared/multi:v1"), idx, adminAuth()); err != nil {
		t.Fatal(err)
	}

	warmIdx, err := random.Index(32<<10, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(procRef(t, a, "shared/warm:v1"), warmIdx, adminAuth()); err != nil {
		t.Fatal(err)
	}

	status, body := adminDo(t, a, "POST", "/keppel/v1/accounts/shared/sublease", "", nil)
	var issued struct {
		Token string `json:"sublease_token"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &issued) != nil {
		t.Fatalf("sublease: %d %s", status, body)
	}
	replica := `{"account":{"auth_tenant_id":"tenant","replication":{"strategy":"on_first_use","upstream":"` + a.Addr + `"}}}`
	if status, body := adminDo(t, b, "PUT", "/keppel/v1/accounts/shared", replica, map[string]string{"X-Keppel-Sublease-Token": issued.Token}); status != http.StatusCreated {
		t.Fatalf("creating the replica: %d %s", status, body)
	}

	// B pulls once A's janitor has issued B its password
	var pulled v1.Image
	eventuallyTrue(t, "first pull through the replica", 90*time.Second, func() bool {
		pulled, err = remote.Image(procRef(t, b, "shared/app:v1"), adminAuth())
		return err == nil
	})
	if err := validate.Image(pulled); err != nil {
		t.Fatalf("replicated image: %v", err)
	}
	if d, _ := pulled.Digest(); d != imgDigest {
		t.Fatalf("replicated image digest %s, want %s", d, imgDigest)
	}
	pulledIdx, err := remote.Index(procRef(t, b, "shared/multi:v1"), adminAuth())
	if err != nil {
		t.Fatalf("pulling the index through the replica: %v", err)
	}
	if err := validate.Index(pulledIdx); err != nil {
		t.Fatalf("replicated index: %v", err)
	}
	if d, _ := pulledIdx.Digest(); d != idxDigest {
		t.Fatalf("replicated index digest %s, want %s", d, idxDigest)
	}

	// `keppel validate` checks an index through the replica, and so
	// replicates all of it
	cmd := exec.Command(test.BuildKeppel(t), "validate", b.Addr+"/shared/warm:v1")
	cmd.Env = append(os.Environ(), "KEPPEL_USERNAME=admin", "KEPPEL_PASSWORD="+test.AdminPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keppel validate through the replica: %v\n%s", err, out)
	}

	// an artifact referring to the image, pushed to A, is listed at B
	aSrv := &test.Server{URL: a.URL, Host: a.Addr}
	bSrv := &test.Server{URL: b.URL, Host: b.Addr}
	artifact := pushArtifactReferring(t, aSrv, "shared/app", imgDigest)
	token := bSrv.Token(t, "repository:shared/app:pull")
	r := bSrv.Do(t, "GET", "/v2/shared/app/referrers/"+imgDigest.String(), token, nil, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), artifact) {
		t.Fatalf("referrers at the replica: %d %s, want %s", r.Status, r.Body, artifact)
	}

	// B's janitor follows A: a tag moves, another is deleted with its
	// manifest
	time.Sleep(1100 * time.Millisecond) // a later second for the pull times below
	if _, err := remote.Image(procRef(t, b, "shared/app:v1"), adminAuth()); err != nil {
		t.Fatal(err)
	}
	pulledAtB := time.Now().Unix()
	img2, err := random.Image(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	img2Digest, _ := img2.Digest()
	if err := remote.Write(procRef(t, a, "shared/app:v1"), img2, adminAuth()); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(procRef(t, a, "shared/multi@"+idxDigest.String()), adminAuth()); err != nil {
		t.Fatalf("deleting the index at A: %v", err)
	}
	eventuallyTrue(t, "the replica follows the tag move and the delete", 30*time.Second, func() bool {
		app, multi := manifestsOf(t, b, "shared/repositories/app"), manifestsOf(t, b, "shared/repositories/multi")
		_, idxThere := multi[idxDigest.String()]
		moved := len(app[img2Digest.String()].Tags) == 1 && len(app[imgDigest.String()].Tags) == 0
		return moved && !idxThere
	})
	// ... and reports its pulls to A
	eventuallyTrue(t, "B's pull time reaches A", 30*time.Second, func() bool {
		m := manifestsOf(t, a, "shared/repositories/app")[imgDigest.String()]
		return m.LastPulledAt != nil && *m.LastPulledAt >= pulledAtB
	})

	// B fetches what the moved tag points at on its next pull
	if got := pullAndValidateProc(t, b, "shared/app:v1"); got != img2Digest {
		t.Fatalf("pull of the moved tag at B: %s, want %s", got, img2Digest)
	}

	// with A stopped, B serves what it has
	a.Stop()
	for _, ref := range []string{"shared/app:v1", "shared/app@" + imgDigest.String()} {
		img, err := remote.Image(procRef(t, b, ref), adminAuth())
		if err != nil {
			t.Fatalf("pulling %s with the primary stopped: %v", ref, err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("pulling %s with the primary stopped: %v", ref, err)
		}
	}
	r = bSrv.Do(t, "GET", "/v2/shared/app/referrers/"+imgDigest.String(), token, nil, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), artifact) {
		t.Fatalf("referrers at the replica with the primary stopped: %d %s", r.Status, r.Body)
	}
	warmed, err := remote.Index(procRef(t, b, "shared/warm:v1"), adminAuth())
	if err != nil {
		t.Fatalf("the index that keppel validate warmed, with the primary stopped: %v", err)
	}
	if err := validate.Index(warmed); err != nil {
		t.Fatalf("the index that keppel validate warmed, with the primary stopped: %v", err)
	}
}

func pullAndValidateProc(t *testing.T, p *test.Process, ref string) v1.Hash {
	t.Helper()
	img, err := remote.Image(procRef(t, p, ref), adminAuth())
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d
}
