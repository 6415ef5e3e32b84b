package inventory

import (
	"slices"
	"strings"
	"testing"
)

// fuzzLimits keep the fuzzed layers small and fast.
var fuzzLimits = Limits{
	MaxLayerSize:    1 << 20,
	MaxUncompressed: 4 << 20,
	MaxRatio:        100,
	MaxFileSize:     256 << 10,
}

// checkInventory checks what every inventory must satisfy.
func checkInventory(t *testing.T, inv Inventory) {
	t.Helper()
	sorted := slices.Clone(inv.Packages)
	if !slices.Equal(sortPackages(sorted), inv.Packages) {
		t.Errorf("packages are not sorted or have duplicates:\n%s", pkgList(inv.Packages))
	}
	for _, p := range inv.Packages {
		switch {
		case !slices.Contains([]string{TypeAPK, TypeDpkg, TypeGoModule, TypeGoStdlib}, p.Type):
			t.Errorf("package of unknown type: %+v", p)
		case p.Name == "" || p.Source == "":
			t.Errorf("package without name or source: %+v", p)
		case (p.Type == TypeAPK || p.Type == TypeDpkg) && p.Version == "":
			t.Errorf("package without version: %+v", p)
		case !strings.HasPrefix(p.Location, "/"):
			t.Errorf("package with a relative location: %+v", p)
		}
	}
}

// FuzzExtract feeds arbitrary bytes to Extract as an uncompressed and as a
// gzip layer, alone and on top of a layer with package databases (so that
// its whiteouts have something to delete). Extract must not panic, must
// return a valid inventory or an error, and must not hold on to files
// beyond its limits.
func FuzzExtract(f *testing.F) {
	base := tarBlob(f,
		reg("etc/os-release", alpineOSRelease),
		reg("lib/apk/db/installed", apkRecord("musl", "1.1.22-r3", "musl")),
		reg("var/lib/dpkg/status", dpkgRecord("openssl", "1.1.1c-1", "", "install ok installed")),
		reg("var/lib/dpkg/status.d/a", dpkgRecord("a", "1", "", "")),
	)
	seeds := [][]byte{
		nil,
		[]byte("not a layer"),
		base,
		tarBlob(f,
			reg("var/lib/dpkg/.wh.status", ""),
			reg("var/lib/dpkg/status.d/.wh..wh..opq", ""),
			reg("var/lib/dpkg/status.d/b", dpkgRecord("b", "2", "src (2)", "")),
			symlink("etc/os-release", "../usr/lib/os-release"),
			reg("usr/lib/os-release", debianOSRelease),
		),
		tarBlob(f,
			reg("../../etc/os-release", debianOSRelease),
			reg("lib/.wh.apk", ""),
			reg("lib/apk/db/installed/x", ""),
			exe("usr/local/bin/app", []byte("\x7fELF\x02\x01\x01\x00")),
			hardlink("var/lib/dpkg/status", "etc/os-release"),
			dir("var/lib/dpkg/status.d"),
		),
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(gzipBlob(f, s))
	}
	f.Add(gzipBlob(f, base)[:100])

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, layers := range [][]Layer{
			{blobLayer(mediaTypeTar, data)},
			{blobLayer(mediaTypeGzip, data)},
			{blobLayer(mediaTypeTar, base), blobLayer(mediaTypeTar, data)},
		} {
			inv, err := Extract(t.Context(), layers, fuzzLimits)
			if err != nil {
				if inv.OS != (OS{}) || inv.Packages != nil {
					t.Errorf("inventory %+v returned together with error %v", inv, err)
				}
				continue
			}
			checkInventory(t, inv)
		}
	})
}

// FuzzDatabases feeds arbitrary bytes to the parsers of package databases
// and os-release.
func FuzzDatabases(f *testing.F) {
	f.Add([]byte(apkRecord("musl", "1.1.22-r3", "musl") + apkRecord("busybox", "1.30.1-r2", "busybox")))
	f.Add([]byte(dpkgRecord("libssl1.1", "1.1.1c-1", "openssl (1.1.1c-1)", "install ok installed") + dpkgRecord("x", "1", "", "")))
	f.Add([]byte(debianOSRelease))
	f.Add([]byte("ID=\"a\\\nVERSION_ID='\nP:\nV:\r\n\r\nPackage:\tx\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		var inv Inventory
		inv.Packages = append(inv.Packages, parseAPKDatabase(data, "/lib/apk/db/installed")...)
		inv.Packages = append(inv.Packages, parseDpkgStatus(data, "/var/lib/dpkg/status", true)...)
		all := parseDpkgStatus(data, "/var/lib/dpkg/status.d/x", false)
		inv.Packages = sortPackages(append(inv.Packages, all...))
		checkInventory(t, inv)
		installed := parseDpkgStatus(data, "/var/lib/dpkg/status.d/x", true)
		if len(installed) > len(all) {
			t.Errorf("%d packages with a Status that says installed, but only %d in all", len(installed), len(all))
		}
		_ = parseOSRelease(data)
	})
}
