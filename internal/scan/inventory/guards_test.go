package inventory

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zeroLayer returns a tar+gzip layer with one file of size zero bytes (a
// multiple of 1 MiB) at name. The layer is a series of gzip members that
// are compressed once and then repeated, so that neither building nor
// holding it takes time or memory proportional to size. Its compressed
// size is about size/1000.
func zeroLayer(t testing.TB, name string, mode, size int64) Layer {
	t.Helper()
	const chunk = 1 << 20
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: size}); err != nil {
		t.Fatal(err)
	}
	head := gzipBlob(t, hdr.Bytes())
	zeros := gzipBlob(t, make([]byte, chunk))
	end := gzipBlob(t, make([]byte, 1024)) // the two zero blocks that end an archive
	chunks := size / chunk
	return Layer{
		MediaType: mediaTypeGzip,
		Digest:    fmt.Sprintf("sha256:zeros-%d", size),
		Size:      int64(len(head)+len(end)) + chunks*int64(len(zeros)),
		Open: func(context.Context) (io.ReadCloser, error) {
			parts := []io.Reader{bytes.NewReader(head)}
			for range chunks {
				parts = append(parts, bytes.NewReader(zeros))
			}
			parts = append(parts, bytes.NewReader(end))
			return io.NopCloser(io.MultiReader(parts...)), nil
		},
	}
}

// allocatedDuring returns the bytes that the process allocates while fn
// runs. Tests that call it must not run in parallel with others.
func allocatedDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxAllocated bounds the memory that reading a huge layer may take.
const maxAllocated = 64 << 20

// TestDecompressionBomb reads a layer of about 1 MiB that expands to 1 GiB.
// (Not parallel: it measures allocations.)
func TestDecompressionBomb(t *testing.T) {
	bomb := zeroLayer(t, "zeros", 0o644, 1<<30)
	var err error
	allocated := allocatedDuring(func() {
		_, err = Extract(t.Context(), []Layer{gzipLayer(t, reg("etc/os-release", alpineOSRelease)), bomb}, DefaultLimits())
	})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "bomb") || !strings.Contains(err.Error(), "layers[1] "+bomb.Digest) {
		t.Errorf("got error %v, want ErrUnsupported for a bomb in layers[1]", err)
	}
	t.Logf("allocated %d KiB while reading the bomb", allocated>>10)
	if allocated > maxAllocated {
		t.Errorf("allocated %d MiB while reading the bomb", allocated>>20)
	}
}

// TestStreaming checks that a huge layer is streamed without a ratio limit
// as well: a 1 GiB binary (too large to be looked at) is read up to the
// limit of uncompressed bytes with little memory.
// (Not parallel: it measures allocations.)
func TestStreaming(t *testing.T) {
	huge := zeroLayer(t, "usr/local/bin/huge", 0o755, 1<<30)
	limits := DefaultLimits()
	limits.MaxRatio = 1 << 40
	limits.MaxUncompressed = 96 << 20
	var err error
	allocated := allocatedDuring(func() {
		_, err = Extract(t.Context(), []Layer{huge}, limits)
	})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "more than 100663296 uncompressed bytes") {
		t.Errorf("got error %v, want ErrUnsupported for too many uncompressed bytes", err)
	}
	t.Logf("allocated %d KiB while reading the layer", allocated>>10)
	if allocated > maxAllocated {
		t.Errorf("allocated %d MiB while reading the layer", allocated>>20)
	}

	// Within the limits, the layer is read to its end.
	limits.MaxUncompressed = 64 << 20
	inv, err := Extract(t.Context(), []Layer{zeroLayer(t, "usr/local/bin/huge", 0o755, 32<<20)}, limits)
	if err != nil || len(inv.Packages) != 0 {
		t.Errorf("got %+v, %v for a layer within the limits", inv, err)
	}
}

// randomBytes returns n bytes that do not compress.
func randomBytes(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestLimits(t *testing.T) {
	t.Parallel()
	osRelease := reg("etc/os-release", alpineOSRelease)
	small := func(max int64) Limits {
		l := DefaultLimits()
		l.MaxFileSize = max
		return l
	}
	tests := []struct {
		name   string
		layers func(t *testing.T) []Layer
		limits Limits
		want   string // in the error, which must be ErrUnsupported
	}{
		{
			name: "declared size over the limit",
			layers: func(t *testing.T) []Layer {
				l := gzipLayer(t, osRelease)
				l.Size = 10 << 30
				l.Open = func(context.Context) (io.ReadCloser, error) {
					t.Error("a layer over the size limit was opened")
					return nil, errors.New("must not be opened")
				}
				return []Layer{l}
			},
			limits: DefaultLimits(),
			want:   "size 10737418240 exceeds the limit of 2147483648 bytes",
		},
		{
			name: "negative size",
			layers: func(t *testing.T) []Layer {
				l := gzipLayer(t, osRelease)
				l.Size = -1
				return []Layer{l}
			},
			limits: DefaultLimits(),
			want:   "invalid size -1",
		},
		{
			name: "more compressed bytes than declared",
			layers: func(t *testing.T) []Layer {
				l := blobLayer(mediaTypeGzip, gzipBlob(t, tarBlob(t, reg("data", string(randomBytes(64<<10))))))
				l.Size = 100
				return []Layer{l}
			},
			limits: Limits{MaxLayerSize: 32 << 10},
			want:   "more than 32768 compressed bytes",
		},
		{
			name: "too many uncompressed bytes",
			layers: func(t *testing.T) []Layer {
				return []Layer{blobLayer(mediaTypeTar, tarBlob(t, osRelease, reg("data", string(randomBytes(64<<10)))))}
			},
			limits: Limits{MaxUncompressed: 32 << 10},
			want:   "more than 32768 uncompressed bytes",
		},
		{
			name: "ratio",
			layers: func(t *testing.T) []Layer {
				return []Layer{gzipLayer(t, reg("data", strings.Repeat("a", 4<<20)))}
			},
			limits: Limits{MaxRatio: 50},
			want:   "decompression bomb",
		},
		{
			name: "zstd window",
			layers: func(t *testing.T) []Layer {
				raw := tarBlob(t, osRelease, reg("data", string(randomBytes(1<<20))))
				return []Layer{blobLayer(mediaTypeZstd, zstdBlob(t, raw, zstd.WithWindowSize(64<<20)))}
			},
			limits: DefaultLimits(),
			want:   "zstd window larger than 33554432 bytes",
		},
		{
			name: "package database over the file size",
			layers: func(t *testing.T) []Layer {
				return []Layer{gzipLayer(t, reg("var/lib/dpkg/status", dpkgRecord("openssl", "1", "", "install ok installed")+strings.Repeat("#", 4096)))}
			},
			limits: small(4096),
			want:   "/var/lib/dpkg/status: larger than 4096 bytes",
		},
		{
			name: "package databases over the budget",
			layers: func(t *testing.T) []Layer {
				var entries []entry
				for i := range 20 {
					entries = append(entries, reg(fmt.Sprintf("var/lib/dpkg/status.d/p%d", i), dpkgRecord(fmt.Sprintf("p%d", i), "1", "", "")))
				}
				return []Layer{gzipLayer(t, entries...)}
			},
			limits: small(4096),
			want:   "take more than 4096 bytes",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Extract(t.Context(), tc.layers(t), tc.limits)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want ErrUnsupported with %q", err, tc.want)
			}
		})
	}

	// A database over the file size limit counts only if it is part of the
	// final filesystem.
	t.Run("large database deleted", func(t *testing.T) {
		t.Parallel()
		large := dpkgRecord("openssl", "1", "", "install ok installed") + strings.Repeat("#", 4096)
		inv, err := Extract(t.Context(), []Layer{
			gzipLayer(t, reg("var/lib/dpkg/status", large)),
			gzipLayer(t, reg("var/lib/dpkg/.wh.status", ""), reg("var/lib/dpkg/status.d/a", dpkgRecord("a", "1", "", ""))),
		}, small(4096))
		if err != nil {
			t.Fatal(err)
		}
		checkPackages(t, inv.Packages, []Package{dpkgPackage("a", "1", "a", "/var/lib/dpkg/status.d/a")})
	})
}

// TestCorruptLayers checks that layers that cannot be read give ordinary
// errors that name the layer.
func TestCorruptLayers(t *testing.T) {
	t.Parallel()
	raw := tarBlob(t, reg("etc/os-release", alpineOSRelease), reg("lib/apk/db/installed", apkRecord("musl", "1.1.22-r3", "musl")))
	gz := gzipBlob(t, raw)
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-6] ^= 0xff
	zst := zstdBlob(t, raw)
	tests := []struct {
		name  string
		layer Layer
	}{
		{"truncated gzip", blobLayer(mediaTypeGzip, gz[:len(gz)/2])},
		{"gzip without its trailer", blobLayer(mediaTypeGzip, gz[:len(gz)-8])},
		{"gzip with a wrong checksum", blobLayer(mediaTypeGzip, badCRC)},
		{"not gzip", blobLayer(mediaTypeGzip, raw)},
		{"empty gzip", blobLayer(mediaTypeGzip, nil)},
		{"truncated zstd", blobLayer(mediaTypeZstd, zst[:len(zst)/2])},
		{"not zstd", blobLayer(mediaTypeZstd, raw)},
		{"truncated tar", blobLayer(mediaTypeTar, raw[:512+50])},
		{"not tar", blobLayer(mediaTypeTar, bytes.Repeat([]byte("garbage "), 200))},
		{"open fails", Layer{MediaType: mediaTypeGzip, Digest: "sha256:x", Open: func(context.Context) (io.ReadCloser, error) {
			return nil, errors.New("blob is gone")
		}}},
		{"no open", Layer{MediaType: mediaTypeGzip, Digest: "sha256:x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Extract(t.Context(), []Layer{gzipLayer(t), tc.layer}, DefaultLimits())
			switch {
			case err == nil:
				t.Fatal("no error")
			case errors.Is(err, ErrUnsupported):
				t.Errorf("got ErrUnsupported for a corrupt layer: %v", err)
			case !strings.Contains(err.Error(), "layers[1] "+tc.layer.Digest+":"):
				t.Errorf("error %q does not name the layer", err)
			}
		})
	}
}

// cancelingReader cancels a context on the first read after the first
// n bytes.
type cancelingReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p[:min(len(p), 512)])
	c.n -= n
	return n, err
}

func TestCancel(t *testing.T) {
	t.Parallel()
	var entries []entry
	for i := range 100 {
		entries = append(entries, reg(fmt.Sprintf("file%d", i), "content"))
	}
	blob := tarBlob(t, entries...)

	ctx, cancel := context.WithCancel(t.Context())
	opened := false
	l := blobLayer(mediaTypeTar, blob)
	l.Open = func(context.Context) (io.ReadCloser, error) {
		opened = true
		return io.NopCloser(&cancelingReader{r: bytes.NewReader(blob), n: 4096, cancel: cancel}), nil
	}
	_, err := Extract(ctx, []Layer{l}, DefaultLimits())
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "layers[0]") {
		t.Errorf("got error %v, want context.Canceled", err)
	}
	if !opened {
		t.Error("the layer was not opened")
	}

	opened = false
	_, err = Extract(ctx, []Layer{l}, DefaultLimits())
	if !errors.Is(err, context.Canceled) || opened {
		t.Errorf("with a canceled context: got error %v, opened=%v", err, opened)
	}
}

// closeRecorder records whether a layer was closed.
type closeRecorder struct {
	io.Reader
	closed *bool
}

func (c closeRecorder) Close() error {
	*c.closed = true
	return nil
}

func TestLayersAreClosed(t *testing.T) {
	t.Parallel()
	for _, blob := range [][]byte{gzipBlob(t, tarBlob(t, reg("a", "b"))), []byte("corrupt")} {
		closed := false
		l := blobLayer(mediaTypeGzip, blob)
		l.Open = func(context.Context) (io.ReadCloser, error) {
			return closeRecorder{bytes.NewReader(blob), &closed}, nil
		}
		_, _ = Extract(t.Context(), []Layer{l}, DefaultLimits())
		if !closed {
			t.Errorf("layer %q was not closed", blob)
		}
	}
}
