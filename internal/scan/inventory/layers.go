package inventory

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// compression is how a layer's tar stream is compressed.
type compression int

const (
	uncompressed compression = iota
	gzipCompressed
	zstdCompressed
)

// layerCompressions maps the layer media types that can be read to their
// compression. Foreign (non-distributable) layers are missing on purpose:
// their content lives outside the registry.
var layerCompressions = map[string]compression{
	"application/vnd.oci.image.layer.v1.tar":            uncompressed,
	"application/vnd.oci.image.layer.v1.tar+gzip":       gzipCompressed,
	"application/vnd.oci.image.layer.v1.tar+zstd":       zstdCompressed,
	"application/vnd.docker.image.rootfs.diff.tar":      uncompressed,
	"application/vnd.docker.image.rootfs.diff.tar.gzip": gzipCompressed,
}

const (
	// ratioFloor is the number of uncompressed bytes of a layer before its
	// compression ratio is checked, so that small layers, whose ratio says
	// nothing, are not taken for bombs.
	ratioFloor = 1 << 20
	// maxZstdWindow bounds the memory that a zstd decoder may use for its
	// window. Common encoders stay at 8 MiB; only the reference
	// implementation's --long and --ultra modes go beyond.
	maxZstdWindow = 32 << 20
	// maxPathLength is the longest entry path that is looked at (PATH_MAX
	// on Linux); longer entries are ignored.
	maxPathLength = 4096
	// whiteoutPrefix marks a whiteout entry, which deletes the path without
	// the prefix from the lower layers.
	whiteoutPrefix = ".wh."
	// opaqueWhiteout makes its directory opaque: nothing below it from the
	// lower layers remains.
	opaqueWhiteout = whiteoutPrefix + whiteoutPrefix + ".opq"
)

// extractor keeps the state of one Extract call.
type extractor struct {
	limits Limits
	// files are the kept files of the filesystem of the layers read so far.
	files fileTree
	// added are the kept files of the layer being read. They are merged
	// into files at the end of the layer, because whiteouts apply only to
	// lower layers, whatever their position in the layer's tar stream.
	added fileTree
	// layer names the layer being read in error messages.
	layer string
	// buf is reused to read binaries.
	buf []byte
}

func newExtractor(limits Limits) *extractor {
	return &extractor{limits: limits}
}

// readLayer applies the layer with index i on top of the files read so far.
func (x *extractor) readLayer(ctx context.Context, i int, l Layer) error {
	name := fmt.Sprintf("layers[%d] %s", i, l.Digest)
	x.layer = name
	comp, ok := layerCompressions[l.MediaType]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s: unsupported media type %q", ErrUnsupported, name, l.MediaType)
	case l.Size < 0:
		return fmt.Errorf("%w: %s: invalid size %d", ErrUnsupported, name, l.Size)
	case l.Size > x.limits.MaxLayerSize:
		return fmt.Errorf("%w: %s: size %d exceeds the limit of %d bytes", ErrUnsupported, name, l.Size, x.limits.MaxLayerSize)
	case l.Open == nil:
		return fmt.Errorf("%s: no way to open the layer", name)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}

	blob, err := l.Open(ctx)
	if err != nil {
		return fmt.Errorf("%s: opening: %w", name, err)
	}
	defer blob.Close()

	m := &meter{ctx: ctx, limits: x.limits, name: name}
	stream, closeStream, err := decompress(comp, compressedReader{m, blob})
	if err != nil {
		return m.fail(fmt.Errorf("%s: %w", name, err))
	}
	defer closeStream()
	body := uncompressedReader{m, stream}

	x.added = fileTree{}
	tr := tar.NewReader(body)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			// Only with GODEBUG=tarinsecurepath=0. readEntry ignores the
			// entries that leave the root and accepts absolute ones.
			err = nil
		}
		if err != nil {
			return m.fail(fmt.Errorf("%s: reading tar: %w", name, err))
		}
		if err := x.readEntry(tr, hdr); err != nil {
			if !errors.Is(err, ErrUnsupported) {
				err = fmt.Errorf("%s: %q: %w", name, shorten(hdr.Name), err)
			}
			return m.fail(err)
		}
	}
	// Read what follows the end of the archive, so that the decompressor
	// verifies its checksum.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return m.fail(fmt.Errorf("%s: reading after the end of the archive: %w", name, err))
	}

	x.added.walk(x.files.insert)
	x.added = fileTree{}
	return nil
}

// decompress returns the uncompressed stream of a layer and a function that
// releases the decompressor.
func decompress(comp compression, r io.Reader) (io.Reader, func(), error) {
	switch comp {
	case gzipCompressed:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("reading gzip header: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case zstdCompressed:
		zr, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderMaxMemory(maxZstdWindow),
		)
		if err != nil {
			return nil, nil, fmt.Errorf("starting zstd decoder: %w", err)
		}
		return zr, zr.Close, nil
	default:
		return r, func() {}, nil
	}
}

// meter counts the compressed and uncompressed bytes of one layer and
// stops the layer once it exceeds the limits or the context ends. As every
// tar header is read through the meter, the context is checked between
// entries, and within large ones.
type meter struct {
	ctx          context.Context
	limits       Limits
	name         string
	compressed   int64
	uncompressed int64
	// err is set once a limit is exceeded or the context has ended, and
	// from then on returned by every read.
	err error
}

// fail returns the reason why the meter stopped the layer, if it did, and
// err otherwise. The readers above the meter may have turned the meter's
// error into one of their own.
func (m *meter) fail(err error) error {
	switch {
	case m.err != nil:
		return m.err
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%w: %s: zstd window larger than %d bytes", ErrUnsupported, m.name, maxZstdWindow)
	default:
		return err
	}
}

type compressedReader struct {
	m *meter
	r io.Reader
}

func (c compressedReader) Read(p []byte) (int, error) {
	m := c.m
	if m.err != nil {
		return 0, m.err
	}
	n, err := c.r.Read(p)
	m.compressed += int64(n)
	if m.compressed > m.limits.MaxLayerSize {
		m.err = fmt.Errorf("%w: %s: more than %d compressed bytes", ErrUnsupported, m.name, m.limits.MaxLayerSize)
		return n, m.err
	}
	return n, err
}

type uncompressedReader struct {
	m *meter
	r io.Reader
}

func (u uncompressedReader) Read(p []byte) (int, error) {
	m := u.m
	if m.err != nil {
		return 0, m.err
	}
	if err := m.ctx.Err(); err != nil {
		m.err = fmt.Errorf("%s: %w", m.name, err)
		return 0, m.err
	}
	n, err := u.r.Read(p)
	m.uncompressed += int64(n)
	switch {
	case m.uncompressed > m.limits.MaxUncompressed:
		m.err = fmt.Errorf("%w: %s: more than %d uncompressed bytes", ErrUnsupported, m.name, m.limits.MaxUncompressed)
	case m.uncompressed > ratioFloor && m.uncompressed/m.limits.MaxRatio > m.compressed:
		m.err = fmt.Errorf("%w: %s: decompression bomb: %d compressed bytes expand to more than %d bytes (more than %d times)",
			ErrUnsupported, m.name, m.compressed, m.uncompressed, m.limits.MaxRatio)
	}
	if m.err != nil {
		return n, m.err
	}
	return n, err
}

// readEntry records one tar entry of the layer being read.
func (x *extractor) readEntry(r io.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	p, ok := cleanPath(hdr.Name)
	if !ok {
		return nil
	}
	dir, name := splitPath(p)
	if strings.HasPrefix(name, whiteoutPrefix) {
		target := strings.TrimPrefix(name, whiteoutPrefix)
		switch {
		case name == opaqueWhiteout:
			x.files.clear(dir)
		case strings.HasPrefix(target, whiteoutPrefix), target == "", target == ".", target == "..":
			// Other markers of the overlay filesystem, or nonsense.
		default:
			x.files.remove(path.Join(dir, target))
		}
		return nil
	}
	if p == "" {
		return nil // the root directory
	}

	isDir := hdr.Typeflag == tar.TypeDir
	x.files.replace(p, isDir)
	x.added.replace(p, isDir)
	f, err := x.keep(r, hdr, p)
	if err != nil || f == nil {
		return err
	}
	if budget := x.limits.MaxFileSize; x.files.cost+x.added.cost+f.cost() > budget {
		return fmt.Errorf("%w: %s: %q: the package databases and binaries kept from the image take more than %d bytes",
			ErrUnsupported, x.layer, shorten(hdr.Name), budget)
	}
	x.added.insert(p, f)
	return nil
}

// shorten returns the start of a string that may be too long for an error
// message.
func shorten(s string) string {
	const maxLength = 256
	if len(s) <= maxLength {
		return s
	}
	return s[:maxLength] + "..."
}

// cleanPath turns the name of a tar entry into a clean path relative to the
// root, "" for the root itself. It rejects names that leave the root or are
// too long.
func cleanPath(name string) (string, bool) {
	if len(name) > maxPathLength {
		return "", false
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	switch {
	case p == ".":
		return "", true
	case p == "..", strings.HasPrefix(p, "../"):
		return "", false
	}
	return p, true
}

// keep reads the entry at p if the inventory needs it, and returns what is
// kept of it, or nil.
func (x *extractor) keep(r io.Reader, hdr *tar.Header, p string) (*file, error) {
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		if isOSRelease(p) && len(hdr.Linkname) <= maxPathLength {
			return &file{link: hdr.Linkname}, nil
		}
		return nil, nil
	case tar.TypeReg:
	default:
		return nil, nil
	}

	switch {
	case isOSRelease(p) || isAPKDatabase(p) || isDpkgStatus(p) || isDpkgStatusD(p):
		if hdr.Size > x.limits.MaxFileSize {
			return &file{tooLarge: true}, nil
		}
		content := make([]byte, hdr.Size)
		if _, err := io.ReadFull(r, content); err != nil {
			return nil, fmt.Errorf("reading: %w", err)
		}
		return &file{content: content}, nil
	case mayBeBinary(hdr, p) && hdr.Size <= x.limits.MaxFileSize:
		pkgs, err := x.readGoBinary(r, hdr.Size, "/"+p)
		if err != nil || pkgs == nil {
			return nil, err
		}
		return &file{packages: pkgs}, nil
	}
	return nil, nil
}
