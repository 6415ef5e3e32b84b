package inventory

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// This file builds images for the tests in memory.

const (
	mediaTypeTar     = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeGzip    = "application/vnd.oci.image.layer.v1.tar+gzip"
	mediaTypeZstd    = "application/vnd.oci.image.layer.v1.tar+zstd"
	mediaTypeDocker  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// entry is one entry of a test layer.
type entry struct {
	name string
	typ  byte // tar.TypeReg if zero
	body []byte
	mode int64 // 0o644 (files) or 0o755 (directories) if zero
	link string
}

func reg(name, body string) entry { return entry{name: name, body: []byte(body)} }

func exe(name string, body []byte) entry { return entry{name: name, body: body, mode: 0o755} }

func dir(name string) entry { return entry{name: name, typ: tar.TypeDir} }

func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target}
}

func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, link: target}
}

// tarBlob returns an uncompressed layer with the entries.
func tarBlob(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Format: tar.FormatPAX}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("writing tar header for %s: %v", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatalf("writing %s: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBlob(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBlob(t testing.TB, b []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// blobLayer returns a layer that reads blob.
func blobLayer(mediaType string, blob []byte) Layer {
	return Layer{
		MediaType: mediaType,
		Digest:    fmt.Sprintf("sha256:%x", sha256.Sum256(blob)),
		Size:      int64(len(blob)),
		Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(blob)), nil
		},
	}
}

// gzipLayer returns a tar+gzip layer with the entries.
func gzipLayer(t testing.TB, entries ...entry) Layer {
	t.Helper()
	return blobLayer(mediaTypeGzip, gzipBlob(t, tarBlob(t, entries...)))
}

// extract runs Extract with the default limits and fails the test on error.
func extract(t *testing.T, layers ...Layer) Inventory {
	t.Helper()
	inv, err := Extract(t.Context(), layers, DefaultLimits())
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return inv
}

// pkgList renders packages one per line, for comparisons with readable
// differences.
func pkgList(pkgs []Package) string {
	var b strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&b, "%s %s %s (source %s) at %s\n", p.Type, p.Name, p.Version, p.Source, p.Location)
	}
	return b.String()
}

func checkPackages(t *testing.T, got, want []Package) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got packages:\n%swant:\n%s", pkgList(got), pkgList(want))
	}
}

// Fixtures of the distributions.

const alpineOSRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.10.9
PRETTY_NAME="Alpine Linux v3.10"
HOME_URL="https://alpinelinux.org/"
`

const debianOSRelease = `PRETTY_NAME="Debian GNU/Linux 10 (buster)"
NAME="Debian GNU/Linux"
VERSION_ID="10"
VERSION="10 (buster)"
VERSION_CODENAME=buster
ID=debian
`

var (
	alpineOS = OS{ID: "alpine", VersionID: "3.10.9", PrettyName: "Alpine Linux v3.10"}
	debianOS = OS{ID: "debian", VersionID: "10", PrettyName: "Debian GNU/Linux 10 (buster)"}
)

// apkRecord is one package of an apk database, with the fields that apk
// writes around the ones that are read.
func apkRecord(name, version, origin string) string {
	return fmt.Sprintf(`C:Q1abcdefghijklmnopqrstuvwxyz0=
P:%s
V:%s
A:x86_64
S:12345
I:67890
T:the %s package
U:https://example.org/
L:MIT
o:%s
m:Someone <someone@example.org>
t:1565000000
c:0123456789abcdef
D:so:libc.musl-x86_64.so.1
F:lib
R:lib%s.so
a:0:0:755
Z:Q1ZYXWVUTSRQPONMLKJIHGFEDCBA0=

`, name, version, name, origin, name)
}

func apkPackage(name, version, origin string) Package {
	return Package{Type: TypeAPK, Name: name, Source: origin, Version: version, Location: "/lib/apk/db/installed"}
}

// dpkgRecord is one paragraph of a dpkg status file; status is left out if
// empty, and so is source.
func dpkgRecord(name, version, source, status string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\n", name)
	if status != "" {
		fmt.Fprintf(&b, "Status: %s\n", status)
	}
	b.WriteString("Priority: optional\nSection: libs\nInstalled-Size: 1234\nMaintainer: Someone <someone@example.org>\nArchitecture: amd64\n")
	if source != "" {
		fmt.Fprintf(&b, "Source: %s\n", source)
	}
	fmt.Fprintf(&b, "Version: %s\nDepends: libc6 (>= 2.14)\n", version)
	fmt.Fprintf(&b, "Description: the %s package\n This is the long description.\n Package: not-a-package\n .\n Version: 0\n\n", name)
	return b.String()
}

func dpkgPackage(name, version, source, location string) Package {
	return Package{Type: TypeDpkg, Name: name, Source: source, Version: version, Location: location}
}
