package builtin

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keppel/internal/scan"
)

// BenchmarkScan scans a Debian 12 image with 2,000 installed packages and
// a 64 MiB layer of other files against 20,000 advisories (10 per
// package): one operation is one Scan.
//
//	go test -run '^$' -bench Scan -benchtime 10x ./internal/scan/builtin
func BenchmarkScan(b *testing.B) {
	const packages, perPackage = 2000, 10
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "Debian"), 0o755); err != nil {
		b.Fatal(err)
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for p := range packages {
		for a := range perPackage {
			w, err := zw.Create(fmt.Sprintf("DEB-%d-%d.json", p, a))
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(w, `{"id":"DEB-%d-%d","summary":"flaw %d","affected":[{"package":{"ecosystem":"Debian:12","name":"pkg%d"},
				"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.%d-1"}]}]}],
				"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]}`, p, a, a, p, a+5)
		}
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Debian", "all.zip"), zbuf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	s, err := New(dir, nil)
	if err != nil {
		b.Fatal(err)
	}

	var status strings.Builder
	for p := range packages {
		fmt.Fprintf(&status, "Package: pkg%d\nStatus: install ok installed\nVersion: 1.7-1\n\n", p)
	}
	filler := make([]byte, 64<<20)
	if _, err := rand.Read(filler); err != nil {
		b.Fatal(err)
	}
	base := tarGz(b, map[string][]byte{"etc/os-release": []byte("ID=debian\nVERSION_ID=\"12\"\n"),
		"var/lib/dpkg/status": []byte(status.String())})
	big := tarGz(b, map[string][]byte{"usr/share/data.bin": filler})
	layer := func(content []byte) scan.Layer {
		return scan.Layer{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Size: int64(len(content)),
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }}
	}
	img := scan.Image{Repository: "bench/app", Digest: "sha256:x",
		Manifest: []byte(`{"config":{"mediaType":"application/vnd.oci.image.config.v1+json"}}`),
		Layers:   []scan.Layer{layer(base), layer(big)}}

	b.SetBytes(int64(len(base) + len(big)))
	b.ResetTimer()
	for range b.N {
		res, err := s.Scan(b.Context(), img)
		if err != nil {
			b.Fatal(err)
		}
		// versions 1.7-1: advisories fixed in 1.5-1 … 1.7-1 do not match,
		// those fixed in 1.8-1 … 1.14-1 do
		if len(res.Findings) != packages*7 || res.Status != scan.High {
			b.Fatalf("%d findings, status %s", len(res.Findings), res.Status)
		}
	}
}

func tarGz(b *testing.B, files map[string][]byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}
