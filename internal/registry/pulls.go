package registry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// maxPendingPulls bounds the pulls remembered between two flushes; beyond
// it, further pulls are not recorded until the next flush (last_pulled_at
// is a statistic, not a guarantee).
const maxPendingPulls = 100_000

type pullKey struct {
	repoID      int64
	digest, tag string
}

// pullBatch collects pulls in memory, so that the pull path never writes
// to the database.
type pullBatch struct {
	mu      sync.Mutex
	pending map[pullKey]time.Time
}

// NotePull remembers that a manifest was pulled (by tag, if tag is not "").
func (s *Service) NotePull(repo Repo, m models.Manifest, tag string) {
	b := &s.pulls
	now := s.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[pullKey]time.Time{}
	}
	k := pullKey{repoID: repo.ID, digest: m.Digest, tag: tag}
	if _, ok := b.pending[k]; ok || len(b.pending) < maxPendingPulls {
		b.pending[k] = now
	}
}

// FlushPulls writes the remembered pulls to the metadata store. Pulls that
// cannot be written are kept for the next flush.
func (s *Service) FlushPulls(ctx context.Context) error {
	b := &s.pulls
	b.mu.Lock()
	pending := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	pulls := make([]db.Pull, 0, len(pending))
	for k, at := range pending {
		pulls = append(pulls, db.Pull{RepositoryID: k.repoID, Digest: k.digest, Tag: k.tag, At: at})
	}
	if err := s.db.RecordPulls(ctx, pulls); err != nil {
		b.mu.Lock()
		if b.pending == nil {
			b.pending = map[pullKey]time.Time{}
		}
		for k, at := range pending {
			if cur, ok := b.pending[k]; (!ok && len(b.pending) < maxPendingPulls) || (ok && cur.Before(at)) {
				b.pending[k] = at
			}
		}
		b.mu.Unlock()
		return fmt.Errorf("recording pulls: %w", err)
	}
	return nil
}
