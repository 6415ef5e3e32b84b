package inventory

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func alpineBase(t *testing.T) Layer {
	return gzipLayer(t,
		dir("etc/"),
		reg("etc/os-release", alpineOSRelease),
		dir("lib/"), dir("lib/apk/"), dir("lib/apk/db/"),
		reg("lib/apk/db/installed",
			apkRecord("musl", "1.1.22-r3", "musl")+
				apkRecord("libcrypto1.1", "1.1.1c-r0", "openssl")+
				apkRecord("busybox", "1.30.1-r2", "busybox")+
				apkRecord("musl", "1.1.22-r3", "musl")), // listed twice, counted once
		exe("bin/busybox", []byte("\x7fELF not really")),
	)
}

func TestAlpine(t *testing.T) {
	t.Parallel()
	base := alpineBase(t)
	upgrade := gzipLayer(t,
		reg("lib/apk/db/installed",
			apkRecord("musl", "1.1.22-r4", "musl")+
				apkRecord("libcrypto1.1", "1.1.1c-r0", "openssl")+
				apkRecord("busybox", "1.30.1-r2", "busybox")),
		reg("lib/ld-musl-x86_64.so.1", "new musl"),
	)

	inv := extract(t, base)
	if inv.OS != alpineOS {
		t.Errorf("OS = %+v, want %+v", inv.OS, alpineOS)
	}
	checkPackages(t, inv.Packages, []Package{
		apkPackage("busybox", "1.30.1-r2", "busybox"),
		apkPackage("libcrypto1.1", "1.1.1c-r0", "openssl"),
		apkPackage("musl", "1.1.22-r3", "musl"),
	})

	inv = extract(t, base, upgrade)
	if inv.OS != alpineOS {
		t.Errorf("OS after the upgrade = %+v, want %+v", inv.OS, alpineOS)
	}
	checkPackages(t, inv.Packages, []Package{
		apkPackage("busybox", "1.30.1-r2", "busybox"),
		apkPackage("libcrypto1.1", "1.1.1c-r0", "openssl"),
		apkPackage("musl", "1.1.22-r4", "musl"),
	})
}

func TestDebian(t *testing.T) {
	t.Parallel()
	const status = "/var/lib/dpkg/status"
	layer := gzipLayer(t,
		dir("./"),
		dir("./usr/"), dir("./usr/lib/"),
		reg("./usr/lib/os-release", debianOSRelease),
		dir("./etc/"),
		symlink("./etc/os-release", "../usr/lib/os-release"),
		dir("./var/lib/dpkg/"),
		reg("./var/lib/dpkg/status",
			dpkgRecord("openssl", "1.1.1c-1", "openssl", "install ok installed")+
				dpkgRecord("libssl1.1", "1.1.1c-1", "openssl (1.1.1c-1)", "install ok installed")+
				dpkgRecord("passwd", "1:4.5-1.1", "shadow", "install ok installed")+
				dpkgRecord("tzdata", "2019c-0+deb10u1", "", "install ok installed")+
				dpkgRecord("removed-pkg", "1.0-1", "", "deinstall ok config-files")+
				dpkgRecord("half-pkg", "1.0-1", "", "install reinstreq half-installed")+
				dpkgRecord("no-status", "1.0-1", "", "")),
	)
	inv := extract(t, layer)
	if inv.OS != debianOS {
		t.Errorf("OS = %+v, want %+v", inv.OS, debianOS)
	}
	checkPackages(t, inv.Packages, []Package{
		dpkgPackage("libssl1.1", "1.1.1c-1", "openssl", status),
		dpkgPackage("openssl", "1.1.1c-1", "openssl", status),
		dpkgPackage("passwd", "1:4.5-1.1", "shadow", status),
		dpkgPackage("tzdata", "2019c-0+deb10u1", "tzdata", status),
	})
}

func TestDistroless(t *testing.T) {
	t.Parallel()
	const statusD = "/var/lib/dpkg/status.d/"
	layer := gzipLayer(t,
		reg("etc/os-release", debianOSRelease),
		dir("var/lib/dpkg/status.d/"),
		reg("var/lib/dpkg/status.d/openssl", dpkgRecord("openssl", "1.1.1c-1", "", "")),
		reg("var/lib/dpkg/status.d/openssl.md5sums", "0123456789abcdef  usr/bin/openssl\n"),
		reg("var/lib/dpkg/status.d/libssl1.1", dpkgRecord("libssl1.1", "1.1.1c-1", "openssl", "")),
		reg("var/lib/dpkg/status.d/old", dpkgRecord("old", "1.0", "", "deinstall ok config-files")),
		reg("var/lib/dpkg/status.d/nested/notme", dpkgRecord("notme", "1.0", "", "")),
	)
	inv := extract(t, layer)
	if inv.OS != debianOS {
		t.Errorf("OS = %+v, want %+v", inv.OS, debianOS)
	}
	checkPackages(t, inv.Packages, []Package{
		dpkgPackage("libssl1.1", "1.1.1c-1", "openssl", statusD+"libssl1.1"),
		dpkgPackage("openssl", "1.1.1c-1", "openssl", statusD+"openssl"),
	})
}

func TestOSRelease(t *testing.T) {
	t.Parallel()
	usrLib := reg("usr/lib/os-release", debianOSRelease)
	etc := reg("etc/os-release", alpineOSRelease)
	tests := []struct {
		name   string
		layers [][]entry
		want   OS
	}{
		{"none", [][]entry{{reg("etc/hostname", "x")}}, OS{}},
		{"etc wins", [][]entry{{usrLib, etc}}, alpineOS},
		{"usr/lib as fallback", [][]entry{{usrLib}}, debianOS},
		{"relative link", [][]entry{{usrLib, symlink("etc/os-release", "../usr/lib/os-release")}}, debianOS},
		{"absolute link", [][]entry{{usrLib, symlink("etc/os-release", "/usr/lib/os-release")}}, debianOS},
		{"link leaving the root stays inside", [][]entry{{usrLib, symlink("etc/os-release", "../../../../usr/lib/os-release")}}, debianOS},
		{"link from a lower layer", [][]entry{{symlink("etc/os-release", "../usr/lib/os-release")}, {usrLib}}, debianOS},
		{"dangling link falls back", [][]entry{{usrLib, symlink("etc/os-release", "/nowhere")}}, debianOS},
		{"link loop", [][]entry{{symlink("etc/os-release", "/usr/lib/os-release"), symlink("usr/lib/os-release", "/etc/os-release")}}, OS{}},
		{"hard link is not followed", [][]entry{{usrLib, hardlink("etc/os-release", "usr/lib/os-release")}}, debianOS},
		{"upper layer replaces", [][]entry{{etc}, {reg("etc/os-release", debianOSRelease)}}, debianOS},
		{"quoting", [][]entry{{reg("etc/os-release", "# comment\nID='my os'\nVERSION_ID=\"1.0\"\nPRETTY_NAME=\"My \\\"OS\\\" \\\\ 1\"\n")}}, OS{ID: "my os", VersionID: "1.0", PrettyName: `My "OS" \ 1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var layers []Layer
			for _, entries := range tc.layers {
				layers = append(layers, gzipLayer(t, entries...))
			}
			if got := extract(t, layers...).OS; got != tc.want {
				t.Errorf("OS = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestWhiteouts checks that only the files of the final filesystem count.
func TestWhiteouts(t *testing.T) {
	t.Parallel()
	const (
		status  = "/var/lib/dpkg/status"
		statusD = "/var/lib/dpkg/status.d/"
	)
	base := []entry{
		dir("var/"), dir("var/lib/"), dir("var/lib/dpkg/"),
		reg("var/lib/dpkg/status", dpkgRecord("openssl", "1.1.1c-1", "", "install ok installed")),
		dir("var/lib/dpkg/status.d/"),
		reg("var/lib/dpkg/status.d/a", dpkgRecord("a", "1", "", "")),
		reg("var/lib/dpkg/status.d/b", dpkgRecord("b", "1", "", "")),
	}
	openssl := dpkgPackage("openssl", "1.1.1c-1", "openssl", status)
	a := dpkgPackage("a", "1", "a", statusD+"a")
	b := dpkgPackage("b", "1", "b", statusD+"b")
	c := dpkgPackage("c", "1", "c", statusD+"c")
	tests := []struct {
		name  string
		upper []entry
		want  []Package
	}{
		{"nothing changed", []entry{reg("etc/motd", "hi")}, []Package{a, b, openssl}},
		{"file deleted", []entry{reg("var/lib/dpkg/.wh.status", "")}, []Package{a, b}},
		{"file deleted, absolute name", []entry{reg("/var/lib/dpkg/status.d/.wh.a", "")}, []Package{b, openssl}},
		{"directory deleted", []entry{reg("var/lib/.wh.dpkg", "")}, nil},
		{"directory deleted and recreated", []entry{reg("var/lib/.wh.dpkg", ""), reg("var/lib/dpkg/status.d/c", dpkgRecord("c", "1", "", ""))}, []Package{c}},
		{"opaque directory", []entry{
			dir("var/lib/dpkg/status.d/"),
			reg("var/lib/dpkg/status.d/c", dpkgRecord("c", "1", "", "")),
			reg("var/lib/dpkg/status.d/.wh..wh..opq", ""),
		}, []Package{c, openssl}},
		{"opaque directory before its files", []entry{
			reg("var/lib/dpkg/status.d/.wh..wh..opq", ""),
			reg("var/lib/dpkg/status.d/c", dpkgRecord("c", "1", "", "")),
		}, []Package{c, openssl}},
		{"opaque parent", []entry{reg("var/lib/.wh..wh..opq", "")}, nil},
		{"opaque root", []entry{reg(".wh..wh..opq", ""), reg("etc/motd", "hi")}, nil},
		{"directory replaced by a file", []entry{reg("var/lib/dpkg", "a file now")}, nil},
		{"directory replaced by a symlink", []entry{symlink("var/lib/dpkg/status.d", "/elsewhere")}, []Package{openssl}},
		{"file replaced by a directory", []entry{dir("var/lib/dpkg/status")}, []Package{a, b}},
		{"file replaced by a directory implicitly", []entry{reg("var/lib/dpkg/status/x", "")}, []Package{a, b}},
		{"file replaced by a symlink", []entry{
			reg("tmp/status", dpkgRecord("evil", "1", "", "install ok installed")),
			symlink("var/lib/dpkg/status", "/tmp/status"),
		}, []Package{a, b}},
		{"file replaced by a hard link", []entry{hardlink("var/lib/dpkg/status", "tmp/status")}, []Package{a, b}},
		{"directory entries merge", []entry{dir("var/"), dir("var/lib/dpkg/"), dir("var/lib/dpkg/status.d/")}, []Package{a, b, openssl}},
		{"replaced later in the same layer", []entry{
			reg("var/lib/dpkg/status.d/c", dpkgRecord("c", "1", "", "")),
			reg("var/lib/dpkg/status", dpkgRecord("new", "1", "", "install ok installed")),
			symlink("var/lib/dpkg/status", "/tmp/status"),
			reg("var/lib/dpkg/status.d", "not a directory after all"),
		}, nil},
		{"replaced twice in the same layer", []entry{
			reg("var/lib/dpkg/status", dpkgRecord("first", "1", "", "install ok installed")),
			reg("var/lib/dpkg/status", dpkgRecord("second", "1", "", "install ok installed")),
		}, []Package{a, b, dpkgPackage("second", "1", "second", status)}},
		{"other overlay markers are ignored", []entry{reg("var/lib/dpkg/.wh..wh.plnk", ""), reg("var/lib/dpkg/.wh..wh.aufs", "")}, []Package{a, b, openssl}},
		{"whiteouts without a name are ignored", []entry{
			reg("var/lib/dpkg/status.d/.wh.", ""),
			reg("var/lib/dpkg/status.d/.wh..", ""),
			reg("var/lib/dpkg/status.d/.wh...", ""),
		}, []Package{a, b, openssl}},
		{"whiteout of a missing file", []entry{reg("var/lib/dpkg/status.d/.wh.zzz", "")}, []Package{a, b, openssl}},
		{"whiteout leaving the root", []entry{reg("../var/lib/dpkg/.wh.status", "")}, []Package{a, b, openssl}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inv := extract(t, gzipLayer(t, base...), gzipLayer(t, tc.upper...))
			checkPackages(t, inv.Packages, tc.want)
		})
	}

	// A whiteout only applies to lower layers, and a file deleted by one
	// layer can be added again by a higher one.
	t.Run("deleted and added again", func(t *testing.T) {
		t.Parallel()
		inv := extract(t,
			gzipLayer(t, base...),
			gzipLayer(t, reg("var/lib/dpkg/status.d/.wh.a", "")),
			gzipLayer(t, reg("var/lib/dpkg/status.d/a", dpkgRecord("a", "2", "", ""))),
		)
		checkPackages(t, inv.Packages, []Package{dpkgPackage("a", "2", "a", statusD+"a"), b, openssl})
	})
}

// TestPaths checks that entry names are normalized and that entries that
// leave the root are ignored.
func TestPaths(t *testing.T) {
	t.Parallel()
	inv := extract(t, gzipLayer(t,
		reg("../../etc/os-release", debianOSRelease),
		reg("./etc/../../usr/lib/os-release", debianOSRelease),
		reg("/../var/lib/dpkg/status", dpkgRecord("escaped", "1", "", "install ok installed")),
		reg("./etc/os-release", alpineOSRelease),
		reg("//lib/apk/db/./installed", apkRecord("musl", "1.1.22-r3", "musl")),
		reg("usr/../var/lib/dpkg/status", dpkgRecord("inside", "1", "", "install ok installed")),
		reg("var/lib/dpkg/status.d/"+strings.Repeat("x", maxPathLength), dpkgRecord("long", "1", "", "")),
	))
	if inv.OS != alpineOS {
		t.Errorf("OS = %+v, want %+v", inv.OS, alpineOS)
	}
	checkPackages(t, inv.Packages, []Package{
		apkPackage("musl", "1.1.22-r3", "musl"),
		dpkgPackage("inside", "1", "inside", "/var/lib/dpkg/status"),
	})
}

// TestMediaTypes checks that every supported compression reads the same
// layer, and that the others are unsupported.
func TestMediaTypes(t *testing.T) {
	t.Parallel()
	raw := tarBlob(t, reg("etc/os-release", alpineOSRelease), reg("lib/apk/db/installed", apkRecord("musl", "1.1.22-r3", "musl")))
	gz := gzipBlob(t, raw)
	tests := []struct {
		mediaType string
		blob      []byte
	}{
		{mediaTypeTar, raw},
		{"application/vnd.docker.image.rootfs.diff.tar", raw},
		{mediaTypeGzip, gz},
		{mediaTypeDocker, gz},
		{mediaTypeZstd, zstdBlob(t, raw)},
		// Several gzip members and zstd frames make one stream.
		{mediaTypeGzip, append(gzipBlob(t, raw[:700]), gzipBlob(t, raw[700:])...)},
		{mediaTypeZstd, append(zstdBlob(t, raw[:700]), zstdBlob(t, raw[700:])...)},
	}
	for _, tc := range tests {
		t.Run(tc.mediaType, func(t *testing.T) {
			t.Parallel()
			inv := extract(t, blobLayer(tc.mediaType, tc.blob))
			if inv.OS != alpineOS {
				t.Errorf("OS = %+v, want %+v", inv.OS, alpineOS)
			}
			checkPackages(t, inv.Packages, []Package{apkPackage("musl", "1.1.22-r3", "musl")})
		})
	}

	for _, mediaType := range []string{
		mediaTypeForeign,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+bzip2",
		"application/vnd.oci.image.config.v1+json",
		"",
	} {
		t.Run("unsupported "+mediaType, func(t *testing.T) {
			t.Parallel()
			l := blobLayer(mediaType, gz)
			l.Open = func(ctx context.Context) (io.ReadCloser, error) {
				t.Error("a layer of an unsupported media type was opened")
				return nil, errors.New("must not be opened")
			}
			_, err := Extract(t.Context(), []Layer{gzipLayer(t), l}, DefaultLimits())
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("got error %v, want ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), "layers[1] "+l.Digest) || !strings.Contains(err.Error(), "media type") {
				t.Errorf("error %q does not name the layer and the reason", err)
			}
		})
	}
}

func TestEmptyImage(t *testing.T) {
	t.Parallel()
	inv := extract(t)
	if inv.OS != (OS{}) || len(inv.Packages) != 0 {
		t.Errorf("empty image has inventory %+v", inv)
	}
	// An empty tar stream is a valid, empty layer.
	inv = extract(t, blobLayer(mediaTypeTar, nil), blobLayer(mediaTypeTar, tarBlob(t)))
	if inv.OS != (OS{}) || len(inv.Packages) != 0 {
		t.Errorf("image of empty layers has inventory %+v", inv)
	}
}

// TestGlobalHeader checks that a PAX global header is not taken for a file.
func TestGlobalHeader(t *testing.T) {
	t.Parallel()
	raw := tarBlob(t, reg("etc/os-release", alpineOSRelease))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	inv := extract(t, blobLayer(mediaTypeTar, append(buf.Bytes(), raw...)))
	if inv.OS != alpineOS {
		t.Errorf("OS = %+v, want %+v", inv.OS, alpineOS)
	}
}

func TestFilesOfInterest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		is   func(string) bool
		want bool
	}{
		{"etc/os-release", isOSRelease, true},
		{"usr/lib/os-release", isOSRelease, true},
		{"usr/local/lib/os-release", isOSRelease, false},
		{"lib/apk/db/installed", isAPKDatabase, true},
		{"usr/lib/apk/db/installed", isAPKDatabase, true},
		{"lib/apk/db/installed.new", isAPKDatabase, false},
		{"var/lib/dpkg/status", isDpkgStatus, true},
		{"var/lib/dpkg/status-old", isDpkgStatus, false},
		{"var/lib/dpkg/status.d/openssl", isDpkgStatusD, true},
		{"var/lib/dpkg/status.d/openssl.md5sums", isDpkgStatusD, false},
		{"var/lib/dpkg/status.d/a/b", isDpkgStatusD, false},
		{"var/lib/dpkg/status.d", isDpkgStatusD, false},
	}
	for _, tc := range tests {
		if got := tc.is(tc.path); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.path, got, tc.want)
		}
	}
}
