package oci

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/opencontainers/image-spec/specs-go"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"

	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/registry"
)

func parsePage(r *http.Request) (oci.Pagination, error) {
	q := r.URL.Query()
	_, hasN := q["n"]
	p, err := oci.ParsePagination(q.Get("n"), hasN, q.Get("last"))
	if err != nil {
		return p, errcode.New(errcode.PaginationNumberInvalid, "%s", err.Error())
	}
	return p, nil
}

// nextLink returns the Link header for the page after items, or "" if items
// is the last page. items holds up to Limit+1 entries: one more than the
// page shows, to learn whether another page follows.
func nextLink(path string, page oci.Pagination, items []string) ([]string, string) {
	if len(items) <= page.Limit {
		return items, ""
	}
	items = items[:page.Limit]
	q := url.Values{}
	q.Set("n", strconv.Itoa(page.Limit))
	q.Set("last", items[len(items)-1])
	return items, "<" + path + "?" + q.Encode() + `>; rel="next"`
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		errcode.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (h *Handler) serveTags(w http.ResponseWriter, r *http.Request, rt route) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	if _, ok := h.authorize(w, r, auth.RepositoryScope(rt.repo, auth.ActionPull)); !ok {
		return
	}
	page, err := parsePage(r)
	if err != nil {
		errcode.Write(w, err)
		return
	}
	repo, err := h.svc.FindRepository(r.Context(), rt.repo)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	tags := []string{}
	if page.Limit > 0 {
		fetch := page
		fetch.Limit++
		tags, err = h.svc.ListTags(r.Context(), repo, fetch)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
	}
	tags, link := nextLink("/v2/"+rt.repo+"/tags/list", page, tags)
	if link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, "application/json", map[string]any{"name": rt.repo, "tags": tags})
}

func (h *Handler) serveCatalog(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	claims, ok := h.authorize(w, r, auth.CatalogScope)
	if !ok {
		return
	}
	page, err := parsePage(r)
	if err != nil {
		errcode.Write(w, err)
		return
	}
	// Server administrators see every repository; everybody else those of
	// the tenants they have a role in.
	var tenants []string
	if id := claims.Identity(); id == nil || !id.IsAdmin {
		tenants = []string{}
		if id != nil {
			for tenant, role := range id.Roles {
				if role.Includes(models.RoleViewer) {
					tenants = append(tenants, tenant)
				}
			}
		}
	}
	names := []string{}
	if page.Limit > 0 {
		fetch := page
		fetch.Limit++
		names, err = h.svc.ListRepositories(r.Context(), tenants, fetch)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
	}
	names, link := nextLink("/v2/_catalog", page, names)
	if link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, "application/json", map[string]any{"repositories": names})
}

func (h *Handler) serveReferrers(w http.ResponseWriter, r *http.Request, rt route) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	if _, ok := h.authorize(w, r, auth.RepositoryScope(rt.repo, auth.ActionPull)); !ok {
		return
	}
	d, err := oci.ParseDigest(rt.ref)
	if err != nil {
		errcode.Write(w, errcode.New(errcode.DigestInvalid, "%s", err.Error()))
		return
	}
	page, err := parsePage(r)
	if err != nil {
		errcode.Write(w, err)
		return
	}
	artifactType := r.URL.Query().Get("artifactType")
	descs := []imagespec.Descriptor{}
	repo, err := h.svc.FindRepository(r.Context(), rt.repo)
	switch {
	case errors.Is(err, registry.ErrRepositoryUnknown):
		// nothing refers to anything in a repository that does not exist
	case err != nil:
		writeError(w, r, h.log, err)
		return
	default:
		if page.Last == "" {
			h.svc.ReplicateReferrers(r.Context(), repo, d.String())
		}
		descs, err = h.svc.Referrers(r.Context(), repo, d, artifactType)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
	}
	// Referrers come ordered by digest; a page starts after the digest "last".
	if page.Last != "" {
		i := 0
		for i < len(descs) && descs[i].Digest.String() <= page.Last {
			i++
		}
		descs = descs[i:]
	}
	if len(descs) > page.Limit {
		descs = descs[:page.Limit]
		q := url.Values{}
		q.Set("n", strconv.Itoa(page.Limit))
		q.Set("last", descs[len(descs)-1].Digest.String())
		if artifactType != "" {
			q.Set("artifactType", artifactType)
		}
		w.Header().Set("Link", "</v2/"+rt.repo+"/referrers/"+d.String()+"?"+q.Encode()+`>; rel="next"`)
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, oci.MediaTypeOCIIndex, imagespec.Index{
		Versioned: imagespecVersioned,
		MediaType: oci.MediaTypeOCIIndex,
		Manifests: descs,
	})
}

var imagespecVersioned = specs.Versioned{SchemaVersion: 2}
