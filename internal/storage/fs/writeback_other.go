//go:build !linux

package fs

import "os"

// startWriteback does nothing where sync_file_range is not available.
func startWriteback(*os.File, int64, int64) {}

// dropWritten does nothing where sync_file_range is not available.
func dropWritten(*os.File, int64, int64) {}
