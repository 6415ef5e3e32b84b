package fs

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing the range to disk,
// without waiting.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE) // advisory
}

// dropWritten waits until the range is on disk and drops it from the page
// cache.
func dropWritten(f *os.File, off, n int64) {
	fd := int(f.Fd())
	flags := unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if unix.SyncFileRange(fd, off, n, flags) == nil {
		_ = unix.Fadvise(fd, off, n, unix.FADV_DONTNEED) // advisory
	}
}
