package inventory

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"fmt"
	"io"
	"path"
	"runtime/debug"
	"strings"
)

// elfMagic starts every ELF file.
var elfMagic = []byte("\x7fELF")

// binaryDirs are the directories whose files are looked at as binaries even
// without an executable bit.
var binaryDirs = map[string]bool{
	"bin":            true,
	"sbin":           true,
	"usr/bin":        true,
	"usr/sbin":       true,
	"usr/local/bin":  true,
	"usr/local/sbin": true,
	"ko-app":         true,
}

// mayBeBinary reports whether the regular file at p may be an executable
// worth looking at: it has an executable bit or is in a directory for
// binaries, and is large enough to have the ELF magic.
func mayBeBinary(hdr *tar.Header, p string) bool {
	if hdr.Size < int64(len(elfMagic)) {
		return false
	}
	return hdr.Mode&0o111 != 0 || binaryDirs[path.Dir(p)]
}

// readGoBinary reads a file of the given size, and returns the packages
// compiled into it if it is a Go binary (nil otherwise). location is the
// path of the file in the image.
func (x *extractor) readGoBinary(r io.Reader, size int64, location string) ([]Package, error) {
	magic := make([]byte, len(elfMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if !bytes.Equal(magic, elfMagic) {
		return nil, nil
	}
	if int64(cap(x.buf)) < size {
		x.buf = nil // let the old buffer go before the new one is allocated
		x.buf = make([]byte, size)
	}
	buf := x.buf[:size]
	copy(buf, magic)
	if _, err := io.ReadFull(r, buf[len(magic):]); err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	bi := readBuildInfo(bytes.NewReader(buf))
	if bi == nil {
		return nil, nil
	}
	return buildInfoPackages(bi, location), nil
}

// readBuildInfo returns the build information of a Go binary, or nil if r
// is not one. The file is untrusted: should the ELF parser panic on it, the
// file counts as not a Go binary.
func readBuildInfo(r io.ReaderAt) (bi *debug.BuildInfo) {
	defer func() {
		if recover() != nil {
			bi = nil
		}
	}()
	bi, err := buildinfo.Read(r)
	if err != nil {
		return nil
	}
	return bi
}

// buildInfoPackages returns the standard library, the main module (if it
// has a version) and the dependencies of a Go binary. A replaced dependency
// is reported as its replacement.
func buildInfoPackages(bi *debug.BuildInfo, location string) []Package {
	pkgs := []Package{{
		Type:     TypeGoStdlib,
		Name:     "stdlib",
		Source:   "stdlib",
		Version:  goVersion(bi.GoVersion),
		Location: location,
	}}
	module := func(m debug.Module) {
		if m.Path != "" {
			pkgs = append(pkgs, Package{Type: TypeGoModule, Name: m.Path, Source: m.Path, Version: m.Version, Location: location})
		}
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		module(bi.Main)
	}
	for _, dep := range bi.Deps {
		switch {
		case dep == nil:
		case dep.Replace != nil:
			module(*dep.Replace)
		default:
			module(*dep)
		}
	}
	return pkgs
}

// goVersion turns the Go version of a binary ("go1.21.3", maybe followed by
// experiments like " X:boringcrypto") into a plain version ("1.21.3").
// Versions of development toolchains ("devel ...") are returned unchanged.
func goVersion(v string) string {
	fields := strings.Fields(v)
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "go") {
		return v
	}
	return strings.TrimPrefix(fields[0], "go")
}
