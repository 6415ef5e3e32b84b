package registry

import (
	"context"
	"errors"
	"fmt"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/storage"
)

// deletionBatch is how many manifests one deletion step removes.
const deletionBatch = 500

// DeleteAccountStep does one bounded step of deleting an account that is
// marked for deletion: it deletes up to a batch of manifests (indexes
// before their children), then empty repositories, and once nothing is
// left, the account's stored content and the account itself. It returns
// done=true when the account is gone, and progressed=true when it deleted
// something (so that another step should follow right away). Every step is
// safe to repeat after a crash, by this process or another janitor.
func (s *Service) DeleteAccountStep(ctx context.Context, name string) (done, progressed bool, err error) {
	a, err := s.db.GetAccount(ctx, name)
	if errors.Is(err, db.ErrNotFound) {
		return true, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("looking up account: %w", err)
	}
	if !a.IsDeleting {
		return false, progressed, fmt.Errorf("account %s is not marked for deletion", name)
	}
	repos, err := s.db.ListRepositoryStats(ctx, name, "", db.NoLimit)
	if err != nil {
		return false, progressed, fmt.Errorf("listing repositories: %w", err)
	}
	budget := deletionBatch
	for _, rs := range repos {
		repo := Repo{Account: a, Repository: rs.Repository}
		n, err := s.deleteManifestsOf(ctx, repo, budget)
		if err != nil {
			return false, progressed, err
		}
		budget -= n
		progressed = progressed || n > 0
		if budget <= 0 {
			return false, progressed, nil
		}
		err = s.db.DeleteRepository(ctx, repo.ID)
		if err != nil && !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrStillReferenced) {
			return false, progressed, fmt.Errorf("deleting repository %s: %w", repo.FullName(), err)
		}
	}
	remaining, err := s.db.ListRepositoryStats(ctx, name, "", 1)
	if err != nil {
		return false, progressed, fmt.Errorf("listing repositories: %w", err)
	}
	if len(remaining) > 0 {
		return false, progressed, nil
	}

	// No metadata refers to content any more: remove the content first,
	// then the account (a crash in between leaves a deleting account
	// without content, which the next step finishes).
	ref := a.StorageRef()
	blobs, manifests, err := s.storage.ListStorageContents(ctx, ref)
	if err != nil {
		return false, progressed, fmt.Errorf("listing storage of account %s: %w", name, err)
	}
	for _, b := range blobs {
		if err := s.storage.DeleteBlob(ctx, ref, b.StorageID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return false, progressed, fmt.Errorf("deleting blob content: %w", err)
		}
	}
	for _, m := range manifests {
		if err := s.storage.DeleteManifest(ctx, ref, m.RepoName, m.Digest); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return false, progressed, fmt.Errorf("deleting manifest content: %w", err)
		}
	}
	if err := s.storage.CleanupAccount(ctx, ref); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, progressed, fmt.Errorf("cleaning up storage of account %s: %w", name, err)
	}
	if err := s.forfeitAccountName(ctx, name); err != nil {
		return false, progressed, err
	}
	if err := s.db.DeleteAccount(ctx, name); err != nil && !errors.Is(err, db.ErrNotFound) {
		return false, progressed, fmt.Errorf("deleting account %s: %w", name, err)
	}
	return true, true, nil
}

// deleteManifestsOf deletes up to budget manifests of a repository,
// parents before children, and returns how many it deleted.
func (s *Service) deleteManifestsOf(ctx context.Context, repo Repo, budget int) (int, error) {
	deleted := 0
	for deleted < budget {
		infos, err := s.db.ListManifestInfos(ctx, repo.ID, "", budget-deleted)
		if err != nil {
			return deleted, fmt.Errorf("listing manifests: %w", err)
		}
		if len(infos) == 0 {
			return deleted, nil
		}
		progress := false
		for _, m := range infos {
			err := s.db.DeleteManifest(ctx, repo.ID, m.Digest)
			switch {
			case err == nil:
				deleted++
				progress = true
				if err := s.storage.DeleteManifest(ctx, repo.StorageRef(), repo.Name, m.Digest); err != nil && !errors.Is(err, storage.ErrNotFound) {
					s.log.Warn("cannot delete manifest content", "digest", m.Digest, "error", err)
				}
			case errors.Is(err, db.ErrStillReferenced), errors.Is(err, db.ErrNotFound):
				// a child whose index comes later in this page, or gone already
			default:
				return deleted, fmt.Errorf("deleting manifest %s: %w", m.Digest, err)
			}
		}
		if !progress {
			return deleted, fmt.Errorf("no manifest of %s can be deleted: every one is referenced", repo.FullName())
		}
	}
	return deleted, nil
}

// AccountsToDelete lists the accounts that are marked for deletion.
func (s *Service) AccountsToDelete(ctx context.Context) ([]models.Account, error) {
	all, err := s.db.ListAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	var out []models.Account
	for _, a := range all {
		if a.IsDeleting {
			out = append(out, a)
		}
	}
	return out, nil
}
