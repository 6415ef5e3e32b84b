package memory_test

import (
	"testing"

	"keppel/internal/storage"
	"keppel/internal/storage/memory"
	"keppel/internal/storage/storagetest"
)

func TestSuite(t *testing.T) {
	storagetest.RunSuite(t, func(*testing.T) storage.Driver { return memory.New() })
}
