package fs_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentBytes counts the bytes of the file that are in the page cache.
func residentBytes(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	page := os.Getpagesize()
	vec := make([]byte, (len(mem)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)),
		uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatal(errno)
	}
	var n int64
	for _, v := range vec {
		if v&1 != 0 {
			n += int64(page)
		}
	}
	return n
}

// TestLargeChunkLeavesPageCache appends a 48 MiB chunk: its content must be
// intact, and written back and dropped from the page cache, not left
// there in full (the upload recycles a few windows of pages instead).
func TestLargeChunkLeavesPageCache(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	const size = 48 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	n, err := d.AppendToBlob(t.Context(), ref, "big", 1, 0, bytes.NewReader(content))
	if err != nil || n != size {
		t.Fatalf("AppendToBlob = %d, %v", n, err)
	}
	path := filepath.Join(root, "tenant-1", "alpha", "u", "big")
	if resident := residentBytes(t, path); resident > size/2 {
		t.Errorf("%d of %d bytes stayed in the page cache", resident, size)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(content); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the content read back differs")
	}
}
