// Package inventory lists the packages that an image installs, read from
// the layers that the registry stores: the distribution (from os-release),
// Alpine and Debian/Ubuntu package databases, and the modules compiled into
// Go binaries.
//
// Layers are untrusted input. Each layer is streamed once through its
// decompressor and a tar reader; only the few small files that the
// inventory needs are kept, so memory use does not grow with the size of a
// layer. Limits bound the compressed and uncompressed bytes and the
// compression ratio of every layer; an image beyond them is reported with
// ErrUnsupported rather than read.
package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Package types.
const (
	// TypeAPK is a package of Alpine's apk package manager.
	TypeAPK = "apk"
	// TypeDpkg is a package of Debian's dpkg package manager.
	TypeDpkg = "dpkg"
	// TypeGoModule is a Go module compiled into a binary.
	TypeGoModule = "go-module"
	// TypeGoStdlib is the Go standard library compiled into a binary; its
	// version is the Go version.
	TypeGoStdlib = "go-stdlib"
)

// Layer is one layer of an image, in manifest order (base first).
type Layer struct {
	// MediaType is the OCI or Docker layer media type, which decides the
	// compression: tar, tar+gzip or tar+zstd.
	MediaType string
	// Digest names the layer in error messages.
	Digest string
	// Size is the compressed size from the manifest.
	Size int64
	// Open returns the layer's blob as stored (compressed). Extract calls
	// it at most once and closes what it returns.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Limits bound the work on one image. A field that is zero or negative
// takes its value from DefaultLimits.
type Limits struct {
	// MaxLayerSize is the compressed size from the manifest above which a
	// layer is not read. No more compressed bytes are read from a layer
	// either, whatever its manifest says.
	MaxLayerSize int64
	// MaxUncompressed is the total of uncompressed bytes read per layer.
	MaxUncompressed int64
	// MaxRatio is the ratio of uncompressed to compressed bytes above which
	// a layer counts as a decompression bomb. It is checked continuously
	// once a layer has produced more than 1 MiB.
	MaxRatio int64
	// MaxFileSize is the size of the largest package database or binary
	// that is read into memory. Larger binaries are skipped; a larger
	// package database makes the image unsupported. It also bounds the
	// total size of the package databases and parsed binaries kept while
	// the layers are read, so that memory use stays around twice this size.
	MaxFileSize int64
}

// DefaultLimits returns the limits for images of ordinary size: layers of
// up to 2 GiB compressed and 8 GiB uncompressed, a compression ratio of up
// to 100, and files of up to 64 MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxLayerSize:    2 << 30,
		MaxUncompressed: 8 << 30,
		MaxRatio:        100,
		MaxFileSize:     64 << 20,
	}
}

// withDefaults replaces unset fields with the default limits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxLayerSize <= 0 {
		l.MaxLayerSize = d.MaxLayerSize
	}
	if l.MaxUncompressed <= 0 {
		l.MaxUncompressed = d.MaxUncompressed
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	return l
}

// ErrUnsupported (errors.Is) marks images that cannot be inventoried: an
// unknown layer media type or compression, a layer over the limits, a
// decompression bomb, or a package database larger than MaxFileSize. The
// error message says which layer or file, and why.
var ErrUnsupported = errors.New("image not supported for scanning")

// OS is the distribution, from /etc/os-release (or /usr/lib/os-release) of
// the final filesystem. It is empty if the image has neither.
type OS struct {
	// ID is the lower-case distribution name, like "alpine" or "debian".
	ID string
	// VersionID is the distribution version, like "3.10.9" or "10".
	VersionID string
	// PrettyName is the name for display, like "Debian GNU/Linux 10 (buster)".
	PrettyName string
}

// Package is an installed package.
type Package struct {
	// Type is one of TypeAPK, TypeDpkg, TypeGoModule and TypeGoStdlib.
	Type string
	// Name is the binary package name (apk P:, dpkg Package:), the module
	// path, or "stdlib".
	Name string
	// Source is the source package (apk o:, dpkg Source: without its
	// version; Name if there is none), the module path, or "stdlib".
	Source string
	// Version is the package version (apk V:, dpkg Version: with epoch),
	// the module version ("v1.2.3"), or the Go version ("1.21.3").
	Version string
	// Location is the absolute path of the file that the package was read
	// from.
	Location string
}

// Inventory is what an image installs.
type Inventory struct {
	OS OS
	// Packages are sorted by Type, Name, Version and Location, without
	// duplicates.
	Packages []Package
}

// Extract reads the layers of an image, base first, and returns the
// distribution and the packages of the final filesystem. It fails with
// ErrUnsupported if the image is beyond the limits or uses a layer format
// that it cannot read, and with an ordinary error that names the layer if a
// layer cannot be opened or is corrupt, or if ctx ends. It may be called
// concurrently.
func Extract(ctx context.Context, layers []Layer, limits Limits) (Inventory, error) {
	x := newExtractor(limits.withDefaults())
	for i, l := range layers {
		if err := x.readLayer(ctx, i, l); err != nil {
			return Inventory{}, err
		}
	}
	return x.inventory()
}

// inventory parses the files kept from the final filesystem.
func (x *extractor) inventory() (Inventory, error) {
	var inv Inventory
	var tooLarge []string
	x.files.walk(func(p string, f *file) {
		location := "/" + p
		if f.tooLarge {
			tooLarge = append(tooLarge, location)
			return
		}
		switch {
		case f.packages != nil:
			inv.Packages = append(inv.Packages, f.packages...)
		case f.content == nil:
			// A symbolic link, resolved below if it is os-release.
		case isAPKDatabase(p):
			inv.Packages = append(inv.Packages, parseAPKDatabase(f.content, location)...)
		case isDpkgStatus(p):
			inv.Packages = append(inv.Packages, parseDpkgStatus(f.content, location, true)...)
		case isDpkgStatusD(p):
			inv.Packages = append(inv.Packages, parseDpkgStatus(f.content, location, false)...)
		}
	})
	if len(tooLarge) > 0 {
		slices.Sort(tooLarge)
		return Inventory{}, fmt.Errorf("%w: %s: larger than %d bytes", ErrUnsupported, strings.Join(tooLarge, ", "), x.limits.MaxFileSize)
	}
	for _, p := range osReleasePaths {
		if content, ok := x.files.resolve(p); ok {
			inv.OS = parseOSRelease(content)
			break
		}
	}
	inv.Packages = sortPackages(inv.Packages)
	return inv, nil
}

// sortPackages sorts packages by Type, Name, Version and Location (and
// Source, so that the order is total) and removes duplicates.
func sortPackages(pkgs []Package) []Package {
	slices.SortFunc(pkgs, func(a, b Package) int {
		return cmp.Or(
			cmp.Compare(a.Type, b.Type),
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.Location, b.Location),
			cmp.Compare(a.Source, b.Source),
		)
	})
	return slices.Compact(pkgs)
}
