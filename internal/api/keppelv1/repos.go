package keppelv1

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/registry"
)

// RepoService is what the repository endpoints need from the registry.
type RepoService interface {
	FindRepository(ctx context.Context, fullName string) (registry.Repo, error)
	ListRepositoryStats(ctx context.Context, account, after string, limit int) ([]models.RepositoryStats, error)
	DeleteRepository(ctx context.Context, repo registry.Repo) error
	ListManifestInfos(ctx context.Context, repo registry.Repo, after string, limit int) ([]models.ManifestInfo, error)
	DeleteManifest(ctx context.Context, repo registry.Repo, reference string) error
}

const (
	defaultPageSize = 1000
	maxPageSize     = 1000
)

// pageParams reads SAP Keppel's marker pagination (?marker=…&limit=…).
func pageParams(r *http.Request) (marker string, limit int, err error) {
	q := r.URL.Query()
	limit = defaultPageSize
	if s := q.Get("limit"); s != "" {
		n, convErr := strconv.Atoi(s)
		if convErr != nil || n < 1 {
			return "", 0, errcode.New(errcode.BadRequest, "limit must be a positive integer")
		}
		limit = min(n, maxPageSize)
	}
	return q.Get("marker"), limit, nil
}

// cutPage cuts items (fetched with limit+1) to the page and reports
// whether more follow.
func cutPage[T any](items []T, limit int) ([]T, bool) {
	if len(items) > limit {
		return items[:limit], true
	}
	return items, false
}

// writePage renders a page as {"<key>": items} with "truncated": true when
// more follow (SAP Keppel's marker pagination).
func writePage(w http.ResponseWriter, key string, items any, truncated bool) {
	body := map[string]any{key: items}
	if truncated {
		body["truncated"] = true
	}
	writeJSON(w, http.StatusOK, body)
}

func unixOrNil(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := t.Unix()
	return &v
}

type repositoryJSON struct {
	Name          string `json:"name"`
	ManifestCount int64  `json:"manifest_count"`
	TagCount      int64  `json:"tag_count"`
	SizeBytes     int64  `json:"size_bytes"`
	PushedAt      *int64 `json:"pushed_at,omitempty"`
}

// findRepo resolves account and repository of a management request for an
// identity that may see the account; it answers 404 otherwise.
func (h *Handler) findRepo(w http.ResponseWriter, r *http.Request, id *auth.Identity) (registry.Repo, bool) {
	a, ok := h.findAccount(w, r, id, r.PathValue("account"))
	if !ok {
		return registry.Repo{}, false
	}
	repo, err := h.repos.FindRepository(r.Context(), a.Name+"/"+r.PathValue("repo"))
	if errors.Is(err, registry.ErrRepositoryUnknown) || errors.Is(err, registry.ErrNameInvalid) {
		notVisible(w, "repository")
		return repo, false
	}
	if err != nil {
		h.internalError(w, "cannot find repository", err)
		return repo, false
	}
	return repo, true
}

func (h *Handler) listRepositories(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	a, ok := h.findAccount(w, r, id, r.PathValue("account"))
	if !ok {
		return
	}
	marker, limit, err := pageParams(r)
	if err != nil {
		errcode.Write(w, err)
		return
	}
	stats, err := h.repos.ListRepositoryStats(r.Context(), a.Name, marker, limit+1)
	if err != nil {
		h.internalError(w, "cannot list repositories", err)
		return
	}
	stats, truncated := cutPage(stats, limit)
	out := make([]repositoryJSON, len(stats))
	for i, s := range stats {
		out[i] = repositoryJSON{Name: s.Name, ManifestCount: s.ManifestCount, TagCount: s.TagCount,
			SizeBytes: s.SizeBytes, PushedAt: unixOrNil(s.PushedAt)}
	}
	writePage(w, "repositories", out, truncated)
}

func (h *Handler) deleteRepository(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	repo, ok := h.findRepo(w, r, id)
	if !ok {
		return
	}
	if !canChange(id, repo.Account.AuthTenantID) {
		forbidden(w, "deleting repositories requires the admin role in auth tenant %s", repo.Account.AuthTenantID)
		return
	}
	err := h.repos.DeleteRepository(r.Context(), repo)
	if errors.Is(err, registry.ErrAccountNotEmpty) {
		errcode.Write(w, errcode.New(errcode.Conflict, "%s", err.Error()))
		return
	}
	if err != nil {
		h.internalError(w, "cannot delete repository", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "repository.delete", AuthTenantID: repo.Account.AuthTenantID,
		AccountName: repo.Account.Name, Target: repo.FullName()})
	w.WriteHeader(http.StatusNoContent)
}

type tagJSON struct {
	Name         string `json:"name"`
	PushedAt     int64  `json:"pushed_at"`
	LastPulledAt *int64 `json:"last_pulled_at"`
}

type manifestJSON struct {
	Digest              string    `json:"digest"`
	MediaType           string    `json:"media_type"`
	SizeBytes           int64     `json:"size_bytes"`
	PushedAt            int64     `json:"pushed_at"`
	LastPulledAt        *int64    `json:"last_pulled_at"`
	Tags                []tagJSON `json:"tags,omitempty"`
	Labels              any       `json:"labels,omitempty"`
	ArtifactType        string    `json:"artifact_type,omitempty"`
	SubjectDigest       string    `json:"subject_digest,omitempty"`
	GCStatus            any       `json:"gc_status,omitempty"`
	ValidationError     string    `json:"validation_error_message,omitempty"`
	VulnerabilityStatus string    `json:"vulnerability_status"`
}

func (h *Handler) listManifests(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	repo, ok := h.findRepo(w, r, id)
	if !ok {
		return
	}
	marker, limit, err := pageParams(r)
	if err != nil {
		errcode.Write(w, err)
		return
	}
	infos, err := h.repos.ListManifestInfos(r.Context(), repo, marker, limit+1)
	if err != nil {
		h.internalError(w, "cannot list manifests", err)
		return
	}
	infos, truncated := cutPage(infos, limit)
	out := make([]manifestJSON, len(infos))
	for i, m := range infos {
		mj := manifestJSON{
			Digest: m.Digest, MediaType: m.MediaType, SizeBytes: m.SizeBytes,
			PushedAt: m.PushedAt.Unix(), LastPulledAt: unixOrNil(m.LastPulledAt),
			ArtifactType: m.ArtifactType, SubjectDigest: m.SubjectDigest,
			VulnerabilityStatus: h.vulnerabilityStatus(m.VulnerabilityStatus),
		}
		if m.LabelsJSON != "" {
			mj.Labels = rawOrNil(m.LabelsJSON)
		}
		if m.GCStatusJSON != "" {
			mj.GCStatus = rawOrNil(m.GCStatusJSON)
		}
		switch {
		case m.ValidationError != "":
			mj.ValidationError = "the stored content of the manifest: " + m.ValidationError
		case m.CorruptBlob != "":
			mj.ValidationError = "the stored content of blob " + m.CorruptBlob
		}
		for _, t := range m.Tags {
			mj.Tags = append(mj.Tags, tagJSON{Name: t.Name, PushedAt: t.PushedAt.Unix(), LastPulledAt: unixOrNil(t.LastPulledAt)})
		}
		out[i] = mj
	}
	writePage(w, "manifests", out, truncated)
}

// deleteContent deletes a manifest (by digest) or a tag.
func (h *Handler) deleteContent(w http.ResponseWriter, r *http.Request, ref, action string) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	repo, ok := h.findRepo(w, r, id)
	if !ok {
		return
	}
	if !canDelete(id, repo.Account.AuthTenantID) {
		forbidden(w, "deleting requires the admin role in auth tenant %s", repo.Account.AuthTenantID)
		return
	}
	err := h.repos.DeleteManifest(r.Context(), repo, ref)
	event := models.AuditEvent{Action: action, AuthTenantID: repo.Account.AuthTenantID,
		AccountName: repo.Account.Name, Target: repo.FullName() + refSeparator(ref) + ref}
	switch {
	case err == nil:
		h.record(r, id, event)
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, registry.ErrManifestUnknown):
		notVisible(w, "manifest or tag")
	case errors.Is(err, registry.ErrDigestInvalid), errors.Is(err, registry.ErrTagInvalid):
		errcode.Write(w, errcode.New(errcode.BadRequest, "%s", err.Error()))
	case errors.Is(err, registry.ErrPolicyViolation):
		event.Outcome, event.Reason = "failure", err.Error()
		h.record(r, id, event)
		errcode.Write(w, errcode.New(errcode.PolicyViolation, "%s", err.Error()))
	case errors.Is(err, registry.ErrManifestReferenced):
		errcode.Write(w, errcode.New(errcode.ManifestReferenced, "%s", err.Error()))
	default:
		h.internalError(w, "cannot delete", err)
	}
}

func canDelete(id *auth.Identity, tenant string) bool { return canChange(id, tenant) }

func refSeparator(ref string) string {
	for i := 0; i < len(ref); i++ {
		if ref[i] == ':' {
			return "@"
		}
	}
	return ":"
}

func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request) {
	if _, err := registry.ParseDigestRef(r.PathValue("digest")); err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "%s", err.Error()))
		return
	}
	h.deleteContent(w, r, r.PathValue("digest"), "manifest.delete")
}

func (h *Handler) deleteTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	if refSeparator(tag) == "@" {
		errcode.Write(w, errcode.New(errcode.BadRequest, "%q is not a tag", tag))
		return
	}
	h.deleteContent(w, r, tag, "tag.delete")
}
