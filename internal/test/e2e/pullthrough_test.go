package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"keppel/internal/test"
)

// createReplica creates an account with the replication settings (JSON)
// as admin.
func createReplica(t *testing.T, s *test.Server, account, replication string) {
	t.Helper()
	r := s.Do(t, "PUT", "/keppel/v1/accounts/"+account, s.Token(t), nil,
		strings.NewReader(`{"account":{"auth_tenant_id":"tenant1","replication":`+replication+`}}`))
	if r.Status != http.StatusCreated {
		t.Fatalf("creating account %s: %d %s", account, r.Status, r.Body)
	}
}

// pushTo pushes an image or index to a registry at host (anonymous unless
// opts say otherwise).
func pushTo(t *testing.T, host, repoAndTag string, img v1.Image, opts ...remote.Option) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(host+"/"+repoAndTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("pushing %s: %v", repoAndTag, err)
	}
	d, _ := img.Digest()
	return d
}

// pullAndValidate pulls an image through keppel and checks every digest.
func pullAndValidate(t *testing.T, s *test.Server, repoAndTag string) v1.Hash {
	t.Helper()
	img, err := remote.Image(ref(t, s, repoAndTag), adminAuth())
	if err != nil {
		t.Fatalf("pulling %s: %v", repoAndTag, err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validating %s: %v", repoAndTag, err)
	}
	d, _ := img.Digest()
	return d
}

// TestPullThroughDistribution: an account in front of a real CNCF
// Distribution registry (anonymous access, a repository prefix in the
// upstream URL) serves its images, serves tags from its cache until their
// lifetime is over, then follows tag moves, and keeps serving what it has
// while the upstream is down.
func TestPullThroughDistribution(t *testing.T) {
	t.Parallel()
	dist := test.StartDistribution(t)
	proxy := test.StartCountingProxy(t, dist)
	s := test.NewServer(t, test.Options{Accounts: map[string]string{},
		Env: map[string]string{"KEPPEL_REPLICATION_TAG_LIFETIME": "4s"}})
	createReplica(t, s, "mirror", `{"strategy":"from_external_on_first_use","upstream":{"url":"http://`+proxy.Host+`/library"}}`)

	v1img, err := random.Image(256<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	want1 := pushTo(t, dist, "library/app:latest", v1img)

	if got := pullAndValidate(t, s, "mirror/app:latest"); got != want1 {
		t.Fatalf("first pull: %s, want %s", got, want1)
	}
	manifestGETs := proxy.Count("GET /v2/library/app/manifests/latest")
	if manifestGETs != 1 {
		t.Fatalf("upstream manifest GETs after the first pull: %d, want 1", manifestGETs)
	}
	layers, _ := v1img.Layers()
	d0, _ := layers[0].Digest()
	if n := proxy.Count("GET /v2/library/app/blobs/" + d0.String()); n != 1 {
		t.Fatalf("upstream GETs of a layer: %d, want 1", n)
	}

	// the tag moves upstream; within the lifetime, the cached tag is served
	v2img, err := random.Image(256<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	want2 := pushTo(t, dist, "library/app:latest", v2img)
	if got := pullAndValidate(t, s, "mirror/app:latest"); got != want1 {
		t.Fatalf("pull within the tag lifetime: %s, want the cached %s", got, want1)
	}
	// ... and after it, the new one; the old one is still there by digest
	time.Sleep(4200 * time.Millisecond)
	if got := pullAndValidate(t, s, "mirror/app:latest"); got != want2 {
		t.Fatalf("pull after the tag lifetime: %s, want %s", got, want2)
	}
	if got := pullAndValidate(t, s, "mirror/app@"+want1.String()); got != want1 {
		t.Fatalf("pull of the old manifest by digest: %s", got)
	}
	// a second pull of the layers is served from the account
	if n := proxy.Count("GET /v2/library/app/blobs/" + d0.String()); n != 1 {
		t.Fatalf("upstream GETs of a layer after several pulls: %d, want 1", n)
	}

	// the upstream goes down: what was replicated is still served, after
	// the tag lifetime too
	proxy.SetDown(true)
	time.Sleep(4200 * time.Millisecond)
	if got := pullAndValidate(t, s, "mirror/app:latest"); got != want2 {
		t.Fatalf("pull with the upstream down: %s, want %s", got, want2)
	}
	token := s.Token(t, "repository:mirror/app:pull")
	r := s.Do(t, "GET", "/v2/mirror/app/manifests/unknown", token, nil, nil)
	if r.Status != http.StatusBadGateway || r.ErrorCode() != "UNAVAILABLE" {
		t.Fatalf("pull of an unknown tag with the upstream down: %d %s, want 502 UNAVAILABLE", r.Status, r.Body)
	}
	proxy.SetDown(false)
	r = s.Do(t, "GET", "/v2/mirror/app/manifests/unknown", token, nil, nil)
	if r.Status != http.StatusNotFound || r.ErrorCode() != "MANIFEST_UNKNOWN" {
		t.Fatalf("pull of a tag the upstream does not have: %d %s, want 404 MANIFEST_UNKNOWN", r.Status, r.Body)
	}
	r = s.Do(t, "GET", "/v2/mirror/nothing/manifests/latest", s.Token(t, "repository:mirror/nothing:pull"), nil, nil)
	if r.Status != http.StatusNotFound || r.ErrorCode() != "MANIFEST_UNKNOWN" {
		t.Fatalf("pull of a repository the upstream does not have: %d %s, want 404 MANIFEST_UNKNOWN", r.Status, r.Body)
	}
}

// TestPullThroughKeppel: an account in front of another Keppel, which
// needs credentials (its token flow, as Docker Hub's): the password is
// stored encrypted, tags follow the upstream after their lifetime, a
// multi-arch index is replicated with only the
// children that the platform filter lets through, and an artifact that
// refers to an image shows in the referrers API.
func TestPullThroughKeppel(t *testing.T) {
	t.Parallel()
	up := test.NewServer(t, test.Options{Accounts: map[string]string{"private": "upstream-tenant"}})
	proxy := test.StartCountingProxy(t, up.Host)
	s := test.NewServer(t, test.Options{Accounts: map[string]string{},
		Env: map[string]string{"KEPPEL_REPLICATION_TAG_LIFETIME": "1s"}})
	createReplica(t, s, "mirror", `{"strategy":"from_external_on_first_use","upstream":{"url":"http://`+up.Host+`","username":"admin","password":"`+test.AdminPassword+`"}}`)
	r := s.Do(t, "PUT", "/keppel/v1/accounts/filtered", s.Token(t), nil, strings.NewReader(
		`{"account":{"auth_tenant_id":"tenant1","platform_filter":[{"os":"linux","architecture":"amd64"}],`+
			`"replication":{"strategy":"from_external_on_first_use","upstream":{"url":"http://`+proxy.Host+`","username":"admin","password":"`+test.AdminPassword+`"}}}}`))
	if r.Status != http.StatusCreated {
		t.Fatalf("creating account filtered: %d %s", r.Status, r.Body)
	}

	// the password is stored sealed and never shown
	a, err := s.Store().GetAccount(t.Context(), "mirror")
	if err != nil || strings.Contains(a.ReplicationJSON, test.AdminPassword) {
		t.Fatalf("stored replication settings: %q, %v", a.ReplicationJSON, err)
	}
	if r := s.Do(t, "GET", "/keppel/v1/accounts/mirror", s.Token(t), nil, nil); strings.Contains(string(r.Body), test.AdminPassword) {
		t.Fatalf("account shows the upstream password: %s", r.Body)
	}

	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := pushTo(t, up.Host, "private/app:v1", img, adminAuth())
	if got := pullAndValidate(t, s, "mirror/private/app:v1"); got != want {
		t.Fatalf("pull: %s, want %s", got, want)
	}
	// the tag moves at the upstream Keppel; after the lifetime, here too
	moved, err := random.Image(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantMoved := pushTo(t, up.Host, "private/app:v2", moved, adminAuth())
	pushTo(t, up.Host, "private/app:v2", img, adminAuth())
	if got := pullAndValidate(t, s, "mirror/private/app:v2"); got != want {
		t.Fatalf("pull of v2: %s, want %s", got, want)
	}
	pushTo(t, up.Host, "private/app:v2", moved, adminAuth())
	time.Sleep(1100 * time.Millisecond)
	if got := pullAndValidate(t, s, "mirror/private/app:v2"); got != wantMoved {
		t.Fatalf("pull of v2 after it moved upstream: %s, want %s", got, wantMoved)
	}

	idx := platformIndex(t, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}, {OS: "windows", Architecture: "amd64"}})
	upRef, _ := name.ParseReference(up.Host+"/private/multi:v1", name.Insecure)
	if err := remote.WriteIndex(upRef, idx, adminAuth()); err != nil {
		t.Fatal(err)
	}
	wantIdx, _ := idx.Digest()
	pulledIdx, err := remote.Index(ref(t, s, "filtered/private/multi:v1"), adminAuth())
	if err != nil {
		t.Fatalf("pull of the index: %v", err)
	}
	if got, _ := pulledIdx.Digest(); got != wantIdx {
		t.Fatalf("index digest: %s, want %s", got, wantIdx)
	}
	im, _ := idx.IndexManifest()
	for _, desc := range im.Manifests {
		n := proxy.Count("GET /v2/private/multi/manifests/" + desc.Digest.String())
		wanted := desc.Platform.OS == "linux" && desc.Platform.Architecture == "amd64"
		if (n == 1) != wanted {
			t.Errorf("child %s (%s/%s) fetched from the upstream %d times", desc.Digest, desc.Platform.OS, desc.Platform.Architecture, n)
		}
		if wanted {
			child, err := remote.Image(ref(t, s, "filtered/private/multi@"+desc.Digest.String()), adminAuth())
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(child); err != nil {
				t.Fatalf("replicated child: %v", err)
			}
		}
	}

	// an artifact that refers to the image is listed by the referrers API
	// of the replica once it is asked for
	subject := pushArtifactReferring(t, up, "private/app", want)
	token := s.Token(t, "repository:mirror/private/app:pull")
	r = s.Do(t, "GET", "/v2/mirror/private/app/referrers/"+want.String(), token, nil, nil)
	var list struct {
		Manifests []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil || r.Status != http.StatusOK || len(list.Manifests) != 1 || list.Manifests[0].Digest != subject {
		t.Fatalf("referrers at the replica: %d %s, want the artifact %s", r.Status, r.Body, subject)
	}
	if r := s.Do(t, "GET", "/v2/mirror/private/app/manifests/"+subject, token, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("artifact at the replica: %d %s", r.Status, r.Body)
	}
}

// platformIndex builds an index of random images, one per platform.
func platformIndex(t *testing.T, ps []v1.Platform) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range ps {
		img, err := random.Image(32<<10, 1)
		if err != nil {
			t.Fatal(err)
		}
		p := p
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

// pushArtifactReferring pushes an artifact manifest with subject d into
// the repository and returns its digest.
func pushArtifactReferring(t *testing.T, s *test.Server, repo string, d v1.Hash) string {
	t.Helper()
	token := s.Token(t, "repository:"+repo+":pull,push")
	empty := `{}`
	emptyDigest := "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	r := s.Do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+emptyDigest, token,
		http.Header{"Content-Type": {"application/octet-stream"}}, strings.NewReader(empty))
	if r.Status != http.StatusCreated {
		t.Fatalf("pushing the empty blob: %d %s", r.Status, r.Body)
	}
	subjectManifest := s.Do(t, "HEAD", "/v2/"+repo+"/manifests/"+d.String(), token, nil, nil)
	artifact := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2}],"subject":{"mediaType":%q,"digest":%q,"size":%s}}`,
		emptyDigest, emptyDigest, subjectManifest.Header.Get("Content-Type"), d.String(), subjectManifest.Header.Get("Content-Length"))
	sum := sha256.Sum256([]byte(artifact))
	ad := "sha256:" + hex.EncodeToString(sum[:])
	r = s.Do(t, "PUT", "/v2/"+repo+"/manifests/"+ad, token,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, strings.NewReader(artifact))
	if r.Status != http.StatusCreated {
		t.Fatalf("pushing the artifact: %d %s", r.Status, r.Body)
	}
	return ad
}

// TestConcurrentFirstPullsFetchOnce: 20 clients pulling a large layer of a
// pull-through account at once cause exactly one fetch from the upstream,
// and every client gets the right bytes (one of them a range).
func TestConcurrentFirstPullsFetchOnce(t *testing.T) {
	t.Parallel()
	dist := test.StartDistribution(t)
	proxy := test.StartCountingProxy(t, dist)
	s := test.NewServer(t, test.Options{Accounts: map[string]string{}})
	createReplica(t, s, "mirror", `{"strategy":"from_external_on_first_use","upstream":{"url":"http://`+proxy.Host+`"}}`)

	img, err := random.Image(48<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	pushTo(t, dist, "big/image:v1", img)
	layers, _ := img.Layers()
	layer := layers[0]
	ld, _ := layer.Digest()
	size, _ := layer.Size()
	rc, _ := layer.Compressed()
	content, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}

	token := s.Token(t, "repository:mirror/big/image:pull")
	if r := s.Do(t, "GET", "/v2/mirror/big/image/manifests/v1", token, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("manifest pull: %d %s", r.Status, r.Body)
	}
	const clients = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", s.URL+"/v2/mirror/big/image/blobs/"+ld.String(), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			from := int64(0)
			if i == 7 {
				from = size / 3
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
			}
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			if resp.StatusCode/100 != 2 || string(got) != string(content[from:]) {
				errs <- fmt.Errorf("client %d: %d, %d bytes, content differs", i, resp.StatusCode, len(got))
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := proxy.Count("GET /v2/big/image/blobs/" + ld.String()); n != 1 {
		t.Fatalf("upstream fetches of the layer: %d, want exactly 1", n)
	}
	// later pulls come from the account's storage
	if got := pullAndValidate(t, s, "mirror/big/image:v1"); got.String() == "" {
		t.Fatal("no digest")
	}
	if n := proxy.Count("GET /v2/big/image/blobs/" + ld.String()); n != 1 {
		t.Fatalf("upstream fetches of the layer after another pull: %d, want 1", n)
	}
}

// TestPullThroughUpstreamErrors: a 429 of the upstream reaches the client
// as TOOMANYREQUESTS with the upstream's Retry-After; an unreachable
// upstream is 502 UNAVAILABLE; neither leaves anything behind.
func TestPullThroughUpstreamErrors(t *testing.T) {
	t.Parallel()
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Retry-After", "17")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}`))
	}))
	t.Cleanup(limited.Close)
	s := test.NewServer(t, test.Options{Accounts: map[string]string{}})
	createReplica(t, s, "limited", `{"strategy":"from_external_on_first_use","upstream":{"url":"`+limited.URL+`"}}`)
	createReplica(t, s, "gone", `{"strategy":"from_external_on_first_use","upstream":{"url":"http://`+test.FreeAddress(t)+`"}}`)

	r := s.Do(t, "GET", "/v2/limited/app/manifests/v1", s.Token(t, "repository:limited/app:pull"), nil, nil)
	if r.Status != http.StatusTooManyRequests || r.ErrorCode() != "TOOMANYREQUESTS" || r.Header.Get("Retry-After") != "17" {
		t.Fatalf("upstream 429: %d %v %s", r.Status, r.Header, r.Body)
	}
	r = s.Do(t, "GET", "/v2/gone/app/manifests/v1", s.Token(t, "repository:gone/app:pull"), nil, nil)
	if r.Status != http.StatusBadGateway || r.ErrorCode() != "UNAVAILABLE" {
		t.Fatalf("unreachable upstream: %d %s", r.Status, r.Body)
	}
	// nothing was created by the failed pulls
	if r := s.Do(t, "GET", "/v2/gone/app/tags/list", s.Token(t, "repository:gone/app:pull"), nil, nil); r.Status != http.StatusNotFound {
		t.Fatalf("tag list after failed pulls: %d %s", r.Status, r.Body)
	}
}
