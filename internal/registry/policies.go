package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"keppel/internal/db"
	"keppel/internal/oci"
	"keppel/internal/policy"
)

// maxConfigSize bounds how much of an image configuration is read to find
// its labels for validation rules.
const maxConfigSize = 4 << 20

// checkTagPushes enforces the account's tag policies for pointing tags at
// the manifest d, and returns the tags that the push creates or moves.
func (s *Service) checkTagPushes(ctx context.Context, repo Repo, tags []string, d string) ([]TagChange, error) {
	var policies []policy.TagPolicy
	if repo.Account.TagPoliciesJSON != "" {
		var err error
		policies, err = policy.ParseTagPolicies(repo.Account.TagPoliciesJSON)
		if err != nil {
			return nil, fmt.Errorf("tag policies of account %s: %w", repo.Account.Name, err)
		}
	}
	var changes []TagChange
	seen := map[string]bool{}
	for _, tag := range tags {
		if tag == "" || seen[tag] {
			continue
		}
		seen[tag] = true
		current, err := s.db.GetTag(ctx, repo.ID, tag)
		exists := err == nil
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return nil, fmt.Errorf("looking up tag: %w", err)
		}
		if v := policy.CheckTagPush(policies, repo.Name, tag, exists, current.Digest, d); v != nil {
			return nil, fmt.Errorf("%w: %s", ErrPolicyViolation, v.Error())
		}
		if current.Digest != d {
			changes = append(changes, TagChange{Tag: tag, Previous: current.Digest})
		}
	}
	return changes, nil
}

// checkTagDelete enforces the account's tag policies for deleting tags,
// directly or with the manifest they point at.
func (s *Service) checkTagDelete(ctx context.Context, repo Repo, tags []string) error {
	if repo.Account.TagPoliciesJSON == "" || len(tags) == 0 {
		return nil
	}
	policies, err := policy.ParseTagPolicies(repo.Account.TagPoliciesJSON)
	if err != nil {
		return fmt.Errorf("tag policies of account %s: %w", repo.Account.Name, err)
	}
	if v := policy.CheckManifestDelete(policies, repo.Name, tags); v != nil {
		return fmt.Errorf("%w: %s", ErrPolicyViolation, v.Error())
	}
	return nil
}

// checkValidationRule evaluates the account's manifest validation rule.
func (s *Service) checkValidationRule(ctx context.Context, repo Repo, parsed *oci.ParsedManifest) (labelsJSON string, err error) {
	if repo.Account.ValidationRule == "" {
		return "", nil
	}
	rule, err := policy.CompileRule(repo.Account.ValidationRule)
	if err != nil {
		return "", fmt.Errorf("validation rule of account %s: %w", repo.Account.Name, err)
	}
	in := policy.ManifestInput{
		RepoName:     repo.Name,
		MediaType:    parsed.MediaType,
		Annotations:  parsed.Annotations,
		ArtifactType: parsed.ArtifactType,
	}
	if !oci.IsIndexMediaType(parsed.MediaType) {
		for _, l := range parsed.Blobs[1:] {
			in.Layers = append(in.Layers, policy.Layer{MediaType: l.MediaType, Digest: l.Digest.String(), Size: l.Size})
		}
		in.Labels, err = s.configLabels(ctx, repo, parsed)
		if err != nil {
			return "", err
		}
	}
	if err := rule.Check(in); err != nil {
		return "", fmt.Errorf("%w: %s", ErrManifestInvalid, err.Error())
	}
	if len(in.Labels) == 0 {
		return "", nil
	}
	buf, err := json.Marshal(in.Labels)
	if err != nil {
		return "", fmt.Errorf("encoding labels: %w", err)
	}
	return string(buf), nil
}

// configLabels reads the labels from an image's configuration blob (which
// the manifest push has checked to exist in the repository).
func (s *Service) configLabels(ctx context.Context, repo Repo, parsed *oci.ParsedManifest) (map[string]string, error) {
	if parsed.Config == nil || parsed.Config.Size > maxConfigSize {
		return nil, nil
	}
	b, err := s.db.GetBlobInRepository(ctx, repo.ID, parsed.Config.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("looking up config blob: %w", err)
	}
	rc, err := s.storage.ReadBlob(ctx, repo.StorageRef(), b.StorageID, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("reading config blob: %w", err)
	}
	defer rc.Close()
	buf, err := io.ReadAll(io.LimitReader(rc, maxConfigSize))
	if err != nil {
		return nil, fmt.Errorf("reading config blob: %w", err)
	}
	var cfg struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	// Configs that are not image configurations (artifacts) have no labels.
	if json.Unmarshal(buf, &cfg) != nil {
		return nil, nil
	}
	return cfg.Config.Labels, nil
}

// tagsOf returns the names of the tags that point at a manifest.
func (s *Service) tagsOf(ctx context.Context, repo Repo, d string) ([]string, error) {
	tags, err := s.db.ListTagsOfManifest(ctx, repo.ID, d)
	if err != nil {
		return nil, fmt.Errorf("listing tags of manifest: %w", err)
	}
	return tags, nil
}
