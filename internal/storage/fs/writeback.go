package fs

import "os"

// writebackWindow is the amount of freshly written blob data after which
// the kernel is asked to start writing it to disk.
const writebackWindow = 8 << 20

// streamWriter writes a stream into a file from an offset on. As soon as a
// window of data is written, it asks the kernel to start writing it back;
// once a window is on disk, it drops it from the page cache. A large upload
// thus keeps at most a few windows of dirty data in memory, recycles the
// same pages instead of growing the page cache by the blob's size, and
// leaves little for the final fsync to wait for. (PostgreSQL does the same
// for its WAL and checkpoints.) The writeback hints are advisory: the
// caller's fsync is what makes the data durable and reports I/O errors.
type streamWriter struct {
	f       *os.File
	off     int64 // where the next write goes
	flushed int64 // writeback was started for the data before this offset
	dropped int64 // the data before this offset was written back and dropped
}

func newStreamWriter(f *os.File, offset int64) *streamWriter {
	return &streamWriter{f: f, off: offset, flushed: offset, dropped: offset}
}

// Write implements io.Writer.
func (w *streamWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	for w.off-w.flushed >= writebackWindow {
		startWriteback(w.f, w.flushed, writebackWindow)
		w.flushed += writebackWindow
		if w.flushed-w.dropped > 2*writebackWindow {
			dropWritten(w.f, w.dropped, writebackWindow)
			w.dropped += writebackWindow
		}
	}
	return n, err
}

// synced drops the rest of the written data from the page cache; call it
// after the file was synced.
func (w *streamWriter) synced() {
	if w.off > w.dropped {
		dropWritten(w.f, w.dropped, w.off-w.dropped)
	}
}
