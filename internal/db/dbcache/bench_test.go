package dbcache_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"keppel/internal/db"
	"keppel/internal/db/dbcache"
)

// benchmarkTagLookup resolves a tag to its manifest, with content, as every
// manifest GET by tag does.
func benchmarkTagLookup(b *testing.B, s db.Store) {
	repo, _ := fixture(b, s, `{"schemaVersion":2}`)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetTaggedManifest(ctx, repo.ID, "latest"); err != nil {
				panic(fmt.Sprintf("GetTaggedManifest: %v", err))
			}
		}
	})
}

// BenchmarkTagLookupUncached asks SQLite directly.
func BenchmarkTagLookupUncached(b *testing.B) {
	benchmarkTagLookup(b, openFile(b, filepath.Join(b.TempDir(), "keppel.db")))
}

// BenchmarkCacheHit is the same lookup served from the cache, including the
// data_version check that the server does on every lookup.
func BenchmarkCacheHit(b *testing.B) {
	benchmarkTagLookup(b, cachedFile(b, filepath.Join(b.TempDir(), "keppel.db"), 0))
}

// BenchmarkCacheHitNoVersionCheck is a cache hit without the data_version
// check, as with PostgreSQL, where notifications replace it.
func BenchmarkCacheHitNoVersionCheck(b *testing.B) {
	benchmarkTagLookup(b, dbcache.New(openFile(b, filepath.Join(b.TempDir(), "keppel.db")), dbcache.Options{}))
}
