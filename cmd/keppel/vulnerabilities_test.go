package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"gopkg.in/yaml.v3"

	"keppel/internal/test"
)

// TestVulnerabilitiesCommand: `keppel vulnerabilities` shows the status and
// the vulnerabilities of a scanned image as a table (and as JSON).
func TestVulnerabilitiesCommand(t *testing.T) {
	isolateClient(t)
	osv := t.TempDir()
	if err := os.MkdirAll(filepath.Join(osv, "Alpine"), 0o755); err != nil {
		t.Fatal(err)
	}
	advisory := `{"id":"ALPINE-TEST-0002","summary":"a flaw in busybox","affected":[{"package":{"ecosystem":"Alpine:v3.22","name":"busybox"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.37.0-r19"}]}]}],"database_specific":{"severity":"HIGH"}}`
	if err := os.WriteFile(filepath.Join(osv, "Alpine", "ALPINE-TEST-0002.json"), []byte(advisory), 0o644); err != nil {
		t.Fatal(err)
	}
	s := test.NewServer(t, test.Options{Env: map[string]string{
		"KEPPEL_SCAN_SCANNER": "builtin", "KEPPEL_SCAN_OSV_DIR": osv, "KEPPEL_JANITOR_POLL_INTERVAL": "100ms",
	}})
	s.RunJanitor(t)

	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range map[string]string{
		"etc/os-release":       "ID=alpine\nVERSION_ID=3.22.1\nPRETTY_NAME=\"Alpine Linux v3.22\"\n",
		"lib/apk/db/installed": "P:busybox\nV:1.37.0-r18\no:busybox\n\n",
	} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(content))
	}
	_ = tw.Close()
	_ = gz.Close()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(buf.Bytes(), types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	ref, _ := name.ParseReference(s.Host+"/test/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword})); err != nil {
		t.Fatal(err)
	}

	t.Setenv("KEPPEL_REGISTRY_URL", s.URL)
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	out := ""
	for range 300 {
		out, err = run(t, "", "vulnerabilities", "test/app:v1")
		if err == nil && strings.Contains(out, ": High") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{": High", "Alpine Linux v3.22, 1 packages, 1 vulnerabilities", "ALPINE-TEST-0002", "busybox", "1.37.0-r18", "1.37.0-r19", "a flaw in busybox"} {
		if !strings.Contains(out, want) {
			t.Errorf("vulnerabilities printed %q, without %q (error %v)", out, want, err)
		}
	}
	for _, format := range []string{"json", "yaml"} {
		var got struct {
			Digest string `json:"digest" yaml:"digest"`
			Status string `json:"vulnerability_status" yaml:"vulnerability_status"`
			Report struct {
				Vulnerabilities []struct {
					ID string `json:"id" yaml:"id"`
				} `json:"vulnerabilities" yaml:"vulnerabilities"`
			} `json:"report" yaml:"report"`
		}
		out := mustRun(t, "", "vulnerabilities", "test/app:v1", "-o", format)
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(out), &got)
		} else {
			err = yaml.Unmarshal([]byte(out), &got)
		}
		if err != nil || got.Status != "High" || !strings.HasPrefix(got.Digest, "sha256:") ||
			len(got.Report.Vulnerabilities) != 1 || got.Report.Vulnerabilities[0].ID != "ALPINE-TEST-0002" {
			t.Errorf("vulnerabilities -o %s printed %q (%v)", format, out, err)
		}
	}
	wantRunError(t, "has no manifest v2", "", "vulnerabilities", "test/app:v2")
	wantRunError(t, "is not an image", "", "vulnerabilities", "app")
}
