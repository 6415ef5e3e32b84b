package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/oci"
)

// GetManifest resolves a tag or digest to a manifest with its content.
func (s *Service) GetManifest(ctx context.Context, repo Repo, reference string) (models.ManifestWithContent, error) {
	var (
		m   models.ManifestWithContent
		err error
	)
	if oci.IsDigest(reference) {
		d, perr := oci.ParseDigest(reference)
		if perr != nil {
			return m, fmt.Errorf("%w: %s", ErrDigestInvalid, perr.Error())
		}
		m, err = s.db.GetManifest(ctx, repo.ID, d.String())
	} else {
		if !oci.ValidTag(reference) {
			return m, fmt.Errorf("%w: %q is neither a valid tag nor a digest", ErrTagInvalid, reference)
		}
		m, err = s.db.GetTaggedManifest(ctx, repo.ID, reference)
	}
	if errors.Is(err, db.ErrNotFound) {
		return m, fmt.Errorf("%w: manifest %s is not known in repository %s", ErrManifestUnknown, reference, repo.FullName())
	}
	if err != nil {
		return m, fmt.Errorf("looking up manifest: %w", err)
	}
	if m.ValidationError != "" {
		return m, fmt.Errorf("%w: the stored content of manifest %s in repository %s is corrupt (%s); push it again",
			ErrManifestUnknown, m.Digest, repo.FullName(), m.ValidationError)
	}
	return m, nil
}

// PushedManifest describes the result of PutManifest.
type PushedManifest struct {
	Digest    digest.Digest
	MediaType string
	// Subject is the digest of the manifest's subject ("" if none).
	Subject string
	// Tags are the tags that now point at the manifest.
	Tags []string
	// New is true when the manifest was not in the repository before.
	New bool
	// TagChanges are the tags that were created or moved by the push.
	TagChanges []TagChange
	// Events are the audit events stored with the push (none without an
	// Actor).
	Events []models.AuditEvent
}

// Actor is who pushes, for the audit events that are stored in the same
// transaction as the push.
type Actor struct {
	// Name is the user (a token's subject); RemoteAddr the client's IP.
	Name, RemoteAddr string
}

// pushEvents returns the audit events of storing the manifest d under tag:
// "manifest.push" if the manifest is new, and "tag.create" or "tag.move" if
// the tag is among the changes.
func (s *Service) pushEvents(actor *Actor, repo Repo, d string, isNew bool, tag string, changes []TagChange) []models.AuditEvent {
	if actor == nil {
		return nil
	}
	base := models.AuditEvent{Time: s.now(), Actor: actor.Name, RemoteAddr: actor.RemoteAddr,
		AuthTenantID: repo.Account.AuthTenantID, AccountName: repo.Account.Name, Outcome: "success"}
	var events []models.AuditEvent
	if isNew {
		e := base
		e.Action, e.Target = "manifest.push", repo.FullName()+"@"+d
		events = append(events, e)
	}
	for _, c := range changes {
		if c.Tag != tag || tag == "" {
			continue
		}
		e := base
		e.Action, e.Target = "tag.create", repo.FullName()+":"+c.Tag
		e.DetailsJSON = `{"digest":"` + d + `"}`
		if c.Previous != "" {
			e.Action = "tag.move"
			e.DetailsJSON = `{"digest":"` + d + `","previous":"` + c.Previous + `"}`
		}
		events = append(events, e)
	}
	return events
}

// TagChange is a tag that a push created (Previous is "") or moved away
// from the manifest Previous.
type TagChange struct {
	Tag      string
	Previous string
}

// PutManifest validates and stores a manifest under a tag or digest
// reference, and points extraTags at it too (the tag query parameters of a
// push by digest). contentType is the request's Content-Type header. Every
// blob and child manifest it references must exist in the repository. With
// an actor, the audit events of the push are stored in the same
// transactions as the push (and returned).
func (s *Service) PutManifest(ctx context.Context, repo Repo, reference, contentType string, content []byte, extraTags []string, actor *Actor) (PushedManifest, error) {
	if len(content) > oci.MaxManifestSize {
		return PushedManifest{}, fmt.Errorf("%w: manifests may be at most %d bytes", ErrManifestTooLarge, oci.MaxManifestSize)
	}
	for _, t := range extraTags {
		if !oci.ValidTag(t) {
			return PushedManifest{}, fmt.Errorf("%w: %q is not a valid tag", ErrTagInvalid, t)
		}
	}
	tag := ""
	d := digest.SHA256.FromBytes(content)
	if oci.IsDigest(reference) {
		want, err := oci.ParseDigest(reference)
		if err != nil {
			return PushedManifest{}, fmt.Errorf("%w: %s", ErrDigestInvalid, err.Error())
		}
		d = want.Algorithm().FromBytes(content)
		if d != want {
			return PushedManifest{}, fmt.Errorf("%w: the manifest has digest %s, not %s", ErrDigestInvalid, d, want)
		}
	} else {
		if !oci.ValidTag(reference) {
			return PushedManifest{}, fmt.Errorf("%w: %q is not a valid tag", ErrTagInvalid, reference)
		}
		tag = reference
	}

	// Unsupported media types (Docker schema1) are MANIFEST_INVALID too.
	parsed, err := oci.ParseManifest(contentType, content)
	if err != nil {
		return PushedManifest{}, fmt.Errorf("%w: %s", ErrManifestInvalid, err.Error())
	}

	blobIDs := make([]int64, 0, len(parsed.Blobs))
	for _, desc := range parsed.Blobs {
		b, err := s.db.GetBlobInRepository(ctx, repo.ID, desc.Digest.String())
		if errors.Is(err, db.ErrNotFound) {
			return PushedManifest{}, fmt.Errorf("%w: blob %s is not known in repository %s", ErrManifestBlobUnknown, desc.Digest, repo.FullName())
		}
		if err != nil {
			return PushedManifest{}, fmt.Errorf("looking up referenced blob: %w", err)
		}
		if b.SizeBytes != desc.Size {
			return PushedManifest{}, fmt.Errorf("%w: blob %s has %d bytes, the manifest says %d", ErrManifestInvalid, desc.Digest, b.SizeBytes, desc.Size)
		}
		blobIDs = append(blobIDs, b.ID)
	}
	children := make([]string, 0, len(parsed.Manifests))
	for _, desc := range parsed.Manifests {
		child, err := s.db.GetManifest(ctx, repo.ID, desc.Digest.String())
		if errors.Is(err, db.ErrNotFound) {
			return PushedManifest{}, fmt.Errorf("%w: manifest %s is not known in repository %s", ErrManifestBlobUnknown, desc.Digest, repo.FullName())
		}
		if err != nil {
			return PushedManifest{}, fmt.Errorf("looking up referenced manifest: %w", err)
		}
		if child.SizeBytes != desc.Size {
			return PushedManifest{}, fmt.Errorf("%w: manifest %s has %d bytes, the index says %d", ErrManifestInvalid, desc.Digest, child.SizeBytes, desc.Size)
		}
		children = append(children, desc.Digest.String())
	}

	isNew := false
	if _, err := s.db.GetManifest(ctx, repo.ID, d.String()); errors.Is(err, db.ErrNotFound) {
		isNew = true
		if err := s.checkManifestQuota(ctx, repo); err != nil {
			return PushedManifest{}, err
		}
	}
	tagChanges, err := s.checkTagPushes(ctx, repo, append([]string{tag}, extraTags...), d.String())
	if err != nil {
		return PushedManifest{}, err
	}
	labelsJSON, err := s.checkValidationRule(ctx, repo, parsed)
	if err != nil {
		return PushedManifest{}, err
	}

	m := models.ManifestWithContent{
		Manifest: models.Manifest{
			RepositoryID: repo.ID,
			Digest:       d.String(),
			MediaType:    parsed.MediaType,
			SizeBytes:    int64(len(content)),
			PushedAt:     s.now(),
			ArtifactType: parsed.ArtifactType,
			LabelsJSON:   labelsJSON,
		},
		Content: content,
	}
	if parsed.Subject != nil {
		m.SubjectDigest = parsed.Subject.Digest.String()
	}
	if len(parsed.Annotations) > 0 {
		buf, err := json.Marshal(parsed.Annotations)
		if err != nil {
			return PushedManifest{}, fmt.Errorf("encoding annotations: %w", err)
		}
		m.AnnotationsJSON = string(buf)
	}

	// The content is committed with the manifest; its copy in the content
	// storage follows in the background (see manifestcopies.go).
	events := s.pushEvents(actor, repo, m.Digest, isNew, tag, tagChanges)
	err = s.db.PutManifest(ctx, m, blobIDs, children, tag, events...)
	if errors.Is(err, db.ErrReferenceMissing) {
		return PushedManifest{}, fmt.Errorf("%w: a referenced manifest or blob is not known in repository %s", ErrManifestBlobUnknown, repo.FullName())
	}
	if err != nil {
		return PushedManifest{}, fmt.Errorf("storing manifest: %w", err)
	}
	if isNew {
		s.queueCopy(repo, m.Digest, content)
	}
	pushed := PushedManifest{Digest: d, MediaType: parsed.MediaType, Subject: m.SubjectDigest, New: isNew,
		TagChanges: tagChanges, Events: events}
	if tag != "" {
		pushed.Tags = append(pushed.Tags, tag)
	}
	for _, t := range extraTags {
		if t == tag {
			continue
		}
		tagEvents := s.pushEvents(actor, repo, m.Digest, false, t, tagChanges)
		if err := s.db.PutManifest(ctx, m, blobIDs, children, t, tagEvents...); err != nil {
			return PushedManifest{}, fmt.Errorf("tagging manifest: %w", err)
		}
		pushed.Tags = append(pushed.Tags, t)
		pushed.Events = append(pushed.Events, tagEvents...)
	}
	return pushed, nil
}

// DeleteManifest deletes a manifest (reference is a digest) with all its
// tags, or only a tag (reference is a tag).
func (s *Service) DeleteManifest(ctx context.Context, repo Repo, reference string) error {
	if !oci.IsDigest(reference) {
		if !oci.ValidTag(reference) {
			return fmt.Errorf("%w: %q is neither a valid tag nor a digest", ErrTagInvalid, reference)
		}
		if err := s.checkTagDelete(ctx, repo, []string{reference}); err != nil {
			return err
		}
		err := s.db.DeleteTag(ctx, repo.ID, reference)
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("%w: tag %s is not known in repository %s", ErrManifestUnknown, reference, repo.FullName())
		}
		if err != nil {
			return fmt.Errorf("deleting tag: %w", err)
		}
		return nil
	}
	d, err := oci.ParseDigest(reference)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrDigestInvalid, err.Error())
	}
	if repo.Account.TagPoliciesJSON != "" {
		tags, err := s.tagsOf(ctx, repo, d.String())
		if err != nil {
			return err
		}
		if err := s.checkTagDelete(ctx, repo, tags); err != nil {
			return err
		}
	}
	err = s.db.DeleteManifest(ctx, repo.ID, d.String())
	switch {
	case errors.Is(err, db.ErrNotFound):
		return fmt.Errorf("%w: manifest %s is not known in repository %s", ErrManifestUnknown, d, repo.FullName())
	case errors.Is(err, db.ErrStillReferenced):
		return fmt.Errorf("%w: manifest %s is referenced by an index in %s; delete the index first", ErrManifestReferenced, d, repo.FullName())
	case err != nil:
		return fmt.Errorf("deleting manifest: %w", err)
	}
	// Metadata first, content second: a crash in between leaves unreferenced
	// content for the storage sweep, never metadata without content.
	if err := s.storage.DeleteManifest(ctx, repo.StorageRef(), repo.Name, d.String()); err != nil {
		s.log.Warn("cannot delete manifest content; the storage sweep will", "digest", d, "error", err)
	}
	return nil
}

// ListTags returns a page of the repository's tags in lexical order.
func (s *Service) ListTags(ctx context.Context, repo Repo, page oci.Pagination) ([]string, error) {
	tags, err := s.db.ListTags(ctx, repo.ID, page.Last, page.Limit)
	if err != nil {
		return nil, fmt.Errorf("listing tags: %w", err)
	}
	return tags, nil
}

// ListRepositories returns a page of repository names (catalog order):
// of all accounts if tenants is nil, else of the accounts of those tenants.
func (s *Service) ListRepositories(ctx context.Context, tenants []string, page oci.Pagination) ([]string, error) {
	var (
		repos []models.Repository
		err   error
	)
	if tenants == nil {
		repos, err = s.db.ListRepositories(ctx, page.Last, page.Limit)
	} else {
		repos, err = s.db.ListRepositoriesOfTenants(ctx, tenants, page.Last, page.Limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	names := make([]string, len(repos))
	for i, r := range repos {
		names[i] = r.FullName()
	}
	return names, nil
}

// Referrers returns descriptors of the manifests whose subject is d,
// optionally only those of one artifact type.
func (s *Service) Referrers(ctx context.Context, repo Repo, d digest.Digest, artifactType string) ([]imagespec.Descriptor, error) {
	ms, err := s.db.ListReferrers(ctx, repo.ID, d.String())
	if err != nil {
		return nil, fmt.Errorf("listing referrers: %w", err)
	}
	out := make([]imagespec.Descriptor, 0, len(ms))
	for _, m := range ms {
		if artifactType != "" && m.ArtifactType != artifactType {
			continue
		}
		desc := imagespec.Descriptor{
			MediaType:    m.MediaType,
			Digest:       digest.Digest(m.Digest),
			Size:         m.SizeBytes,
			ArtifactType: m.ArtifactType,
		}
		if m.AnnotationsJSON != "" {
			if err := json.Unmarshal([]byte(m.AnnotationsJSON), &desc.Annotations); err != nil {
				return nil, fmt.Errorf("decoding annotations of %s: %w", m.Digest, err)
			}
		}
		out = append(out, desc)
	}
	return out, nil
}
