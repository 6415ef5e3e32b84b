package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/upstream"
)

// DefaultReplicaSyncInterval is how often each repository of a replica
// account is compared with its upstream.
const DefaultReplicaSyncInterval = time.Hour

// ReplicaSync is what one sync of a replica repository did.
type ReplicaSync struct {
	Repository string
	// TagsMoved and TagsDeleted count the tags that followed the upstream.
	TagsMoved, TagsDeleted int
	// ManifestsDeleted counts the manifests deleted because the upstream
	// deleted them.
	ManifestsDeleted int
	// PullsReported counts the manifests whose last pull time was sent to
	// the primary account (on_first_use replicas only).
	PullsReported int
}

// SyncNextReplica compares the next repository of a replica account whose
// sync is due with its upstream: tags that moved there move here, tags and
// manifests deleted there are deleted here, and (for replicas of a peer)
// the times of the pulls made here are reported to the primary account, so
// that its GC policies see them. Nothing is deleted unless the upstream
// said "not found". claimed is false if no repository was due.
func (s *Service) SyncNextReplica(ctx context.Context, interval time.Duration) (res ReplicaSync, claimed bool, err error) {
	now := s.now()
	a, r, claimed, err := s.db.ClaimReplicaSync(ctx, now, now.Add(spread(interval)))
	if err != nil || !claimed {
		return res, claimed, err
	}
	repo := Repo{Account: a, Repository: r}
	res.Repository = repo.FullName()
	up, upName, err := s.upstreamOf(ctx, a, r.Name)
	if err != nil {
		return res, true, err
	}
	if err := s.syncTags(ctx, repo, up, upName, &res); err != nil {
		return res, true, fmt.Errorf("syncing tags of %s: %w", repo.FullName(), err)
	}
	infos, err := s.syncManifests(ctx, repo, up, upName, &res)
	if err != nil {
		return res, true, fmt.Errorf("syncing manifests of %s: %w", repo.FullName(), err)
	}
	if peer := upstreamPeer(a); peer != "" {
		res.PullsReported, err = s.reportPulls(ctx, peer, repo, infos)
		if err != nil {
			return res, true, fmt.Errorf("reporting pulls of %s to %s: %w", repo.FullName(), peer, err)
		}
	}
	return res, true, nil
}

// syncTags moves each tag to where the upstream's tag points, and deletes
// tags that the upstream does not have any more.
func (s *Service) syncTags(ctx context.Context, repo Repo, up *upstream.Registry, upName string, res *ReplicaSync) error {
	tags, err := s.db.ListTags(ctx, repo.ID, "", db.NoLimit)
	if err != nil {
		return fmt.Errorf("listing tags: %w", err)
	}
	for _, tag := range tags {
		local, err := s.db.GetTaggedManifest(ctx, repo.ID, tag)
		if errors.Is(err, db.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("looking up tag %s: %w", tag, err)
		}
		desc, err := up.HeadManifest(ctx, upName, tag)
		var ue *upstream.Error
		if errors.As(err, &ue) && ue.NotFound() {
			if err := s.db.DeleteTag(ctx, repo.ID, tag); err != nil && !errors.Is(err, db.ErrNotFound) {
				return fmt.Errorf("deleting tag %s: %w", tag, err)
			}
			res.TagsDeleted++
			continue
		}
		if err != nil {
			return err
		}
		if desc.Digest.String() == local.Digest {
			continue
		}
		m, err := up.GetManifest(ctx, upName, desc.Digest.String())
		if err != nil {
			return err
		}
		if err := s.storeReplicated(ctx, repo, up, upName, m, tag, 0); err != nil {
			return err
		}
		res.TagsMoved++
	}
	return nil
}

// syncManifests deletes the manifests that the upstream does not have any
// more (indexes before their children) and returns the remaining ones.
func (s *Service) syncManifests(ctx context.Context, repo Repo, up *upstream.Registry, upName string, res *ReplicaSync) ([]models.ManifestInfo, error) {
	infos, err := s.db.ListManifestInfos(ctx, repo.ID, "", db.NoLimit)
	if err != nil {
		return nil, fmt.Errorf("listing manifests: %w", err)
	}
	var gone, kept []models.ManifestInfo
	for _, m := range infos {
		_, err := up.HeadManifest(ctx, upName, m.Digest)
		var ue *upstream.Error
		switch {
		case errors.As(err, &ue) && ue.NotFound():
			gone = append(gone, m)
		case err != nil:
			return nil, err
		default:
			kept = append(kept, m)
		}
	}
	// An index must go before its children: retry those still referenced
	// while there is progress.
	for len(gone) > 0 {
		var referenced []models.ManifestInfo
		for _, m := range gone {
			err := s.db.DeleteManifest(ctx, repo.ID, m.Digest)
			switch {
			case errors.Is(err, db.ErrStillReferenced):
				referenced = append(referenced, m)
				continue
			case errors.Is(err, db.ErrNotFound):
				continue
			case err != nil:
				return nil, fmt.Errorf("deleting manifest %s: %w", m.Digest, err)
			}
			res.ManifestsDeleted++
			if err := s.storage.DeleteManifest(ctx, repo.StorageRef(), repo.Name, m.Digest); err != nil {
				s.log.Warn("cannot delete manifest content; the storage sweep will", "digest", m.Digest, "error", err)
			}
		}
		if len(referenced) == len(gone) {
			// referenced by manifests that the upstream still has
			kept = append(kept, referenced...)
			break
		}
		gone = referenced
	}
	return kept, nil
}

// ReplicaPull is the time of the last pull of a manifest in a replica, as
// the replica's registry reports it to the primary's.
type ReplicaPull struct {
	Digest string `json:"digest"`
	// LastPulledAt is a Unix timestamp.
	LastPulledAt int64 `json:"last_pulled_at"`
}

// ReplicaPulls is the body of POST /keppel/v1/replication/pulls.
type ReplicaPulls struct {
	// Repository is the full name of the repository.
	Repository string        `json:"repository"`
	Pulls      []ReplicaPull `json:"pulls"`
}

// reportPulls sends the last pull times of the manifests to the primary
// account's registry.
func (s *Service) reportPulls(ctx context.Context, peer string, repo Repo, infos []models.ManifestInfo) (int, error) {
	body := ReplicaPulls{Repository: repo.FullName()}
	for _, m := range infos {
		if m.LastPulledAt != nil {
			body.Pulls = append(body.Pulls, ReplicaPull{Digest: m.Digest, LastPulledAt: m.LastPulledAt.Unix()})
		}
	}
	if len(body.Pulls) == 0 {
		return 0, nil
	}
	if s.replication.Peers == nil {
		return 0, fmt.Errorf("%s is not a configured peer", peer)
	}
	base, ok := s.replication.Peers.PeerURL(peer)
	if !ok {
		return 0, fmt.Errorf("%s is not a configured peer", peer)
	}
	user, password, err := s.replication.Peers.Credentials(ctx, peer)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", ErrNoPeerCredentials, err.Error())
	}
	buf, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("encoding pulls: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/keppel/v1/replication/pulls", bytes.NewReader(buf))
	if err != nil {
		return 0, fmt.Errorf("building request: %w", err)
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/json")
	transport := s.replication.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	resp, err := (&http.Client{Transport: transport, Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", upstream.ErrUnreachable, err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("%s answered %d: %s", peer, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return len(body.Pulls), nil
}

// RecordReplicaPulls records pulls that a peer's replica of one of this
// registry's accounts reports: last pull times only move forward, and
// manifests not known here are skipped.
func (s *Service) RecordReplicaPulls(ctx context.Context, report ReplicaPulls) error {
	repo, err := s.FindRepository(ctx, report.Repository)
	if err != nil {
		return err
	}
	if isReplica(repo.Account) {
		return fmt.Errorf("%w: account %s is a replica here", ErrReplicaAccount, repo.Account.Name)
	}
	pulls := make([]db.Pull, 0, len(report.Pulls))
	for _, p := range report.Pulls {
		at := time.Unix(p.LastPulledAt, 0)
		if at.After(s.now().Add(time.Hour)) {
			continue // from the future: a broken clock
		}
		pulls = append(pulls, db.Pull{RepositoryID: repo.ID, Digest: p.Digest, At: at})
	}
	if err := s.db.RecordPulls(ctx, pulls); err != nil {
		return fmt.Errorf("recording replica pulls: %w", err)
	}
	return nil
}
