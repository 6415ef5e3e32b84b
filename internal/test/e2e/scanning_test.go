package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"keppel/internal/test"
)

// osvFixtures are advisories made from public facts, in the layout that
// osv.dev publishes (<Ecosystem>/all.zip).
var osvFixtures = map[string][]string{
	"Alpine": {
		// musl's CVE-2020-28928, fixed in Alpine 3.10 by musl 1.1.22-r4
		`{"id":"ALPINE-CVE-2020-28928","aliases":["CVE-2020-28928"],"summary":"wcsnrtombs buffer overflow in musl",
		  "affected":[{"package":{"ecosystem":"Alpine:v3.10","name":"musl"},
		    "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.1.22-r4"}]}]}],
		  "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H"}]}`,
		// an advisory of a current release, rated by its database
		`{"id":"ALPINE-TEST-0001","summary":"busybox flaw","affected":[{"package":{"ecosystem":"Alpine:v3.22","name":"busybox"},
		    "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.37.0-r19"}]}]}],
		  "database_specific":{"severity":"HIGH"}}`,
	},
	"Go": {
		// an advisory of the Go standard library that every Go release up
		// to 1.99 has (made up for the test, in the shape of the real ones)
		`{"id":"GO-TEST-0001","summary":"a flaw in net/http","affected":[{"package":{"ecosystem":"Go","name":"stdlib"},
		    "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.99.0"}]}]}],
		  "database_specific":{"severity":"MODERATE"}}`,
	},
	"Debian": {
		// openssl 1.1.1c in Debian 10 (CVE-2019-1547), fixed in 1.1.1d-0+deb10u1
		`{"id":"DSA-4539-1","aliases":["CVE-2019-1547"],"summary":"openssl security update",
		  "affected":[{"package":{"ecosystem":"Debian:10","name":"openssl"},
		    "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.1.1d-0+deb10u1"}]}]}]}`,
		`{"id":"DEBIAN-TEST-0002","summary":"a critical flaw in a current release","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
		    "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.15-1~deb12u1"}]}]}],
		  "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}`,
	},
}

// writeOSVFixtures writes the advisories as <dir>/<Ecosystem>/all.zip.
func writeOSVFixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for eco, docs := range osvFixtures {
		if err := os.MkdirAll(filepath.Join(dir, eco), 0o755); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for i, doc := range docs {
			w, err := zw.Create(eco + "-" + string(rune('a'+i)) + ".json")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(doc)); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, eco, "all.zip"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// layerOf is a tar+gzip layer with the files.
func layerOf(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	return gzipTarLayer(t, func(tw *tar.Writer) error {
		for name, content := range files {
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := tw.Write([]byte(content)); err != nil {
				return err
			}
		}
		return nil
	})
}

// gzipTarLayer is a tar+gzip layer with what write puts into the tar.
func gzipTarLayer(t *testing.T, write func(tw *tar.Writer) error) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	if err := write(tw); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return static.NewLayer(buf.Bytes(), types.OCILayer)
}

// imageOf is an OCI image of the layers.
func imageOf(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

func alpineImage(t *testing.T, release, musl, busybox string) v1.Image {
	return imageOf(t, layerOf(t, map[string]string{
		"etc/os-release":       "ID=alpine\nVERSION_ID=" + release + "\nPRETTY_NAME=\"Alpine Linux v" + release + "\"\n",
		"lib/apk/db/installed": "P:musl\nV:" + musl + "\no:musl\n\nP:busybox\nV:" + busybox + "\no:busybox\n\n",
	}))
}

func debianImage(t *testing.T, release, openssl string) v1.Image {
	return imageOf(t, layerOf(t, map[string]string{
		"etc/os-release": "ID=debian\nVERSION_ID=\"" + release + "\"\n",
		"var/lib/dpkg/status": "Package: openssl\nStatus: install ok installed\nVersion: " + openssl + "\n\n" +
			"Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: " + openssl + "\n\n",
	}))
}

// goBinaryImage is an image with a small Go program, built here with the
// Go toolchain that runs the test.
func goBinaryImage(t *testing.T) v1.Image {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/scanme\n\ngo 1.24\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", "app", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0", "GOWORK=off", "GOTOOLCHAIN=local", "GOPROXY=off", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the Go program: %v\n%s", err, out)
	}
	binary, err := os.ReadFile(filepath.Join(dir, "app"))
	if err != nil {
		t.Fatal(err)
	}
	return imageOf(t, gzipTarLayer(t, func(tw *tar.Writer) error {
		if err := tw.WriteHeader(&tar.Header{Name: "usr/local/bin/app", Mode: 0o755, Size: int64(len(binary)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(binary)
		return err
	}))
}

// bombImage has a layer of a few hundred KiB that inflates to 512 MiB of
// zeros.
func bombImage(t *testing.T) v1.Image {
	t.Helper()
	return imageOf(t, gzipTarLayer(t, func(tw *tar.Writer) error {
		const size = 512 << 20
		if err := tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		zeros := make([]byte, 1<<20)
		for range size / len(zeros) {
			if _, err := tw.Write(zeros); err != nil {
				return err
			}
		}
		return nil
	}))
}

// scanResult waits for a manifest's scan and returns its status and report.
func scanResult(t *testing.T, s *test.Server, repo string, d v1.Hash) (string, map[string]any) {
	t.Helper()
	token := s.Token(t)
	account, name, _ := strings.Cut(repo, "/")
	status := ""
	for range 300 {
		if status = manifestStatus(t, s, repo, d); status != "Pending" && status != "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := s.Do(t, "GET", "/keppel/v1/accounts/"+account+"/repositories/"+name+"/_manifests/"+d.String()+"/vulnerability_report", token, nil, nil)
	var report map[string]any
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &report); err != nil {
			t.Fatal(err)
		}
	}
	return status, report
}

// waitStatus waits up to 30 s for a manifest's status to become want.
func waitStatus(t *testing.T, s *test.Server, repo string, d v1.Hash, want string) {
	t.Helper()
	got := ""
	for range 300 {
		if got = manifestStatus(t, s, repo, d); got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s: status %s, want %s", repo, got, want)
}

// manifestStatus returns a manifest's vulnerability status as the
// management API lists it ("" if it is not listed).
func manifestStatus(t *testing.T, s *test.Server, repo string, d v1.Hash) string {
	t.Helper()
	account, name, _ := strings.Cut(repo, "/")
	r := s.Do(t, "GET", "/keppel/v1/accounts/"+account+"/repositories/"+name+"/_manifests", s.Token(t), nil, nil)
	var list struct {
		Manifests []struct {
			Digest string `json:"digest"`
			Status string `json:"vulnerability_status"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("listing manifests of %s: %d %s", repo, r.Status, r.Body)
	}
	for _, m := range list.Manifests {
		if m.Digest == d.String() {
			return m.Status
		}
	}
	return ""
}

// vulnIDs lists the IDs of the vulnerabilities in a builtin report.
func vulnIDs(report map[string]any) []string {
	var ids []string
	vulns, _ := report["vulnerabilities"].([]any)
	for _, v := range vulns {
		ids = append(ids, v.(map[string]any)["id"].(string))
	}
	return ids
}

// TestBuiltinScanner: images pushed through the API are scanned by the
// janitor with the builtin scanner against OSV advisories in a local
// directory: each gets exactly the expected vulnerabilities and status, a
// patched image is clean, an end-of-life release is Rotten, an index gets
// the worst status of its children, an artifact is Unsupported; the
// status shows in the management API and on manifest GETs. A Go binary is
// matched by its Go version; a decompression bomb is Unsupported.
func TestBuiltinScanner(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{Env: map[string]string{
		"KEPPEL_SCAN_SCANNER": "builtin", "KEPPEL_SCAN_OSV_DIR": writeOSVFixtures(t),
		"KEPPEL_JANITOR_POLL_INTERVAL": "100ms",
	}})
	s.RunJanitor(t)

	cases := []struct {
		name, repo string
		img        v1.Image
		status     string
		ids        []string
	}{
		{"alpine 3.10 with the vulnerable musl", "test/alpine310", alpineImage(t, "3.10.9", "1.1.22-r3", "1.30.1-r5"), "Rotten", []string{"ALPINE-CVE-2020-28928"}},
		{"alpine 3.10 patched", "test/alpine310fixed", alpineImage(t, "3.10.9", "1.1.22-r4", "1.30.1-r5"), "Rotten", nil},
		{"alpine 3.22 with a high busybox flaw", "test/alpine322", alpineImage(t, "3.22.1", "1.2.5-r10", "1.37.0-r18"), "High", []string{"ALPINE-TEST-0001"}},
		{"alpine 3.22 patched", "test/alpine322fixed", alpineImage(t, "3.22.1", "1.2.5-r10", "1.37.0-r19"), "Clean", nil},
		{"debian 12 with a critical openssl flaw", "test/debian12", debianImage(t, "12", "3.0.14-1~deb12u2"), "Critical", []string{"DEBIAN-TEST-0002"}},
		{"debian 12 patched", "test/debian12fixed", debianImage(t, "12", "3.0.15-1~deb12u1"), "Clean", nil},
		{"a Go binary", "test/gobinary", goBinaryImage(t), "Medium", []string{"GO-TEST-0001"}},
		{"a decompression bomb", "test/bomb", bombImage(t), "Unsupported", nil},
	}
	digests := map[string]v1.Hash{}
	for _, c := range cases {
		if err := remote.Write(ref(t, s, c.repo+":v1"), c.img, adminAuth()); err != nil {
			t.Fatal(err)
		}
		digests[c.repo], _ = c.img.Digest()
	}
	for _, c := range cases {
		status, report := scanResult(t, s, c.repo, digests[c.repo])
		ids := vulnIDs(report)
		if status != c.status || strings.Join(ids, ",") != strings.Join(c.ids, ",") {
			t.Errorf("%s: %s with %v, want %s with %v (report %v)", c.name, status, ids, c.status, c.ids, report)
		}
	}

	// the status on manifest GETs
	r := s.Do(t, "GET", "/v2/test/debian12/manifests/v1", s.Token(t, "repository:test/debian12:pull"),
		http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}, nil)
	if got := r.Header.Get("X-Keppel-Vulnerability-Status"); got != "Critical" {
		t.Errorf("X-Keppel-Vulnerability-Status: %q, want Critical", got)
	}
	// SAP Keppel's path of the report
	r = s.Do(t, "GET", "/keppel/v1/accounts/test/repositories/debian12/_manifests/"+digests["test/debian12"].String()+"/trivy_report", s.Token(t), nil, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "DEBIAN-TEST-0002") {
		t.Errorf("trivy_report: %d %s", r.Status, r.Body)
	}

	// an index gets the worst status of its children
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: cases[3].img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: cases[4].img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := remote.WriteIndex(ref(t, s, "test/multi:v1"), idx, adminAuth()); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	if status, _ := scanResult(t, s, "test/multi", idxDigest); status != "Critical" {
		r := s.Do(t, "GET", "/keppel/v1/accounts/test/repositories/multi/_manifests", s.Token(t), nil, nil)
		t.Errorf("index: %s, want Critical (manifests: %s)", status, r.Body)
	}

	// security scan policies: one ignores the critical openssl flaw, one
	// re-rates the busybox flaw; statuses follow after the rescan
	policies := `{"policies":[
		{"match_repository":"debian12","match_vulnerability_id":"DEBIAN-TEST-.*","action":{"assessment":"not reachable in this image","ignore":true}},
		{"match_repository":"alpine.*","match_vulnerability_id":"ALPINE-TEST-0001","managed_by_user":"$REQUESTER","action":{"assessment":"busybox is not used","severity":"Low"}}]}`
	if r := s.Do(t, "PUT", "/keppel/v1/accounts/test/security_scan_policies", s.Token(t), nil, strings.NewReader(policies)); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"managed_by_user":"admin"`) {
		t.Fatalf("PUT security_scan_policies: %d %s", r.Status, r.Body)
	}
	for repo, want := range map[string]string{"test/debian12": "Clean", "test/alpine322": "Low", "test/alpine310": "Rotten"} {
		waitStatus(t, s, repo, digests[repo], want)
	}
	if r := s.Do(t, "PUT", "/keppel/v1/accounts/test/security_scan_policies", s.Token(t), nil, strings.NewReader(`{"policies":[{"match_repository":".*"}]}`)); r.Status != http.StatusBadRequest {
		t.Errorf("invalid policy: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "GET", "/keppel/v1/accounts/test/security_scan_policies", s.Token(t), nil, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "busybox is not used") {
		t.Errorf("GET security_scan_policies: %d %s", r.Status, r.Body)
	}
	// another admin of the tenant cannot change the policy that admin
	// manages, but may add their own
	if r := s.Do(t, "PUT", "/keppel/v1/users/bob", s.Token(t), nil, strings.NewReader(`{"user":{"password":"bob-password-1"}}`)); r.Status != http.StatusCreated {
		t.Fatalf("creating bob: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "PUT", "/keppel/v1/users/bob/roles/tenant1", s.Token(t), nil, strings.NewReader(`{"role":"admin"}`)); r.Status != http.StatusOK {
		t.Fatalf("making bob an admin: %d %s", r.Status, r.Body)
	}
	bob := s.TokenAs(t, "bob", "bob-password-1")
	r = s.Do(t, "PUT", "/keppel/v1/accounts/test/security_scan_policies", bob, nil, strings.NewReader(`{"policies":[]}`))
	if r.Status != http.StatusForbidden {
		t.Errorf("bob removing admin's policy: %d %s, want 403", r.Status, r.Body)
	}
	var current struct {
		Policies []json.RawMessage `json:"policies"`
	}
	_ = json.Unmarshal(s.Do(t, "GET", "/keppel/v1/accounts/test/security_scan_policies", bob, nil, nil).Body, &current)
	mine := `{"match_repository":"gobinary","match_vulnerability_id":"GO-.*","managed_by_user":"$REQUESTER","action":{"assessment":"bob's","severity":"High"}}`
	body := `{"policies":[` + string(current.Policies[0]) + "," + string(current.Policies[1]) + "," + mine + `]}`
	if r := s.Do(t, "PUT", "/keppel/v1/accounts/test/security_scan_policies", bob, nil, strings.NewReader(body)); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"managed_by_user":"bob"`) {
		t.Errorf("bob adding his own policy: %d %s", r.Status, r.Body)
	}
	waitStatus(t, s, "test/gobinary", digests["test/gobinary"], "High")

	// an artifact is not an image
	artifact := pushArtifactReferring(t, s, "test/debian12", digests["test/debian12"])
	if status, report := scanResult(t, s, "test/debian12", v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(artifact, "sha256:")}); status != "Unsupported" || report["unsupported"] == nil {
		t.Errorf("artifact: %s %v, want Unsupported with a reason", status, report)
	}
}
