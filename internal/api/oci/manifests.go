package oci

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"keppel/internal/audit"
	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/registry"
)

// refSeparator is "@" before a digest and ":" before a tag.
func refSeparator(ref string) string {
	if oci.IsDigest(ref) {
		return "@"
	}
	return ":"
}

func (h *Handler) serveManifest(w http.ResponseWriter, r *http.Request, rt route) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if claims, ok := h.authorize(w, r, auth.RepositoryScope(rt.repo, auth.ActionPull)); ok {
			if r.Method == http.MethodGet && !h.allow(w, r, rt.repo, "manifest_pull", h.limits.ManifestPull, 1) {
				return
			}
			h.getManifest(w, r, rt, claims)
		}
	case http.MethodPut:
		if claims, ok := h.authorize(w, r, auth.RepositoryScope(rt.repo, auth.ActionPull, auth.ActionPush)); ok {
			if !h.allow(w, r, rt.repo, "manifest_push", h.limits.ManifestPush, 1) {
				return
			}
			h.putManifest(w, r, rt, claims)
		}
	case http.MethodDelete:
		if claims, ok := h.authorize(w, r, auth.RepositoryScope(rt.repo, auth.ActionDelete)); ok {
			h.deleteManifest(w, r, rt, claims)
		}
	default:
		methodNotAllowed(w, "GET, HEAD, PUT, DELETE")
	}
}

func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, rt route, claims *auth.Claims) {
	repo, m, err := h.svc.PullManifest(r.Context(), rt.repo, rt.ref)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", m.MediaType)
	hdr.Set("Docker-Content-Digest", m.Digest)
	hdr.Set("ETag", `"`+m.Digest+`"`)
	hdr.Set("Content-Length", strconv.Itoa(len(m.Content)))
	if h.scanning && m.VulnerabilityStatus != "" {
		hdr.Set("X-Keppel-Vulnerability-Status", m.VulnerabilityStatus)
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == `"`+m.Digest+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.Content)
		h.metrics.Pulled.WithLabelValues("manifest").Inc()
		tag := ""
		if !oci.IsDigest(rt.ref) {
			tag = rt.ref
		}
		if !auth.IsScanner(claims) { // the scanner's pulls are not users' pulls
			h.svc.NotePull(repo, m.Manifest, tag)
		}
	}
}

func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, rt route, claims *auth.Claims) {
	if r.ContentLength > oci.MaxManifestSize {
		errcode.Write(w, errcode.New(errcode.ManifestTooLarge, "manifests may be at most %d bytes, this one has %d", oci.MaxManifestSize, r.ContentLength))
		return
	}
	content, err := io.ReadAll(io.LimitReader(r.Body, oci.MaxManifestSize+1))
	if err != nil {
		errcode.Write(w, errcode.New(errcode.ManifestInvalid, "reading the manifest failed: %s", err.Error()))
		return
	}
	if len(content) > oci.MaxManifestSize {
		errcode.Write(w, errcode.New(errcode.ManifestTooLarge, "manifests may be at most %d bytes", oci.MaxManifestSize))
		return
	}
	repo, err := h.svc.FindOrCreateRepository(r.Context(), rt.repo)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	pushed, err := h.svc.PutManifest(r.Context(), repo, rt.ref, r.Header.Get("Content-Type"), content,
		r.URL.Query()["tag"], h.actor(r, claims))
	if err != nil {
		if errors.Is(err, registry.ErrPolicyViolation) || errors.Is(err, registry.ErrQuotaExceeded) {
			h.record(r, claims, repo, models.AuditEvent{Action: "manifest.push", Target: rt.repo + refSeparator(rt.ref) + rt.ref,
				Outcome: audit.Failure, Reason: err.Error()})
		}
		writeError(w, r, h.log, err)
		return
	}
	// The push's audit events were stored with it.
	if h.recorder != nil {
		h.recorder.Deliver(pushed.Events...)
	}
	h.metrics.Pushed.WithLabelValues("manifest").Inc()
	hdr := w.Header()
	hdr.Set("Location", "/v2/"+rt.repo+"/manifests/"+pushed.Digest.String())
	hdr.Set("Docker-Content-Digest", pushed.Digest.String())
	if pushed.Subject != "" {
		hdr.Set("OCI-Subject", pushed.Subject)
	}
	for _, t := range pushed.Tags {
		hdr.Add("OCI-Tag", t)
	}
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, rt route, claims *auth.Claims) {
	repo, err := h.svc.FindRepository(r.Context(), rt.repo)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	event := models.AuditEvent{Action: "manifest.delete", Target: rt.repo + refSeparator(rt.ref) + rt.ref}
	if refSeparator(rt.ref) == ":" {
		event.Action = "tag.delete"
	}
	if err := h.svc.DeleteManifest(r.Context(), repo, rt.ref); err != nil {
		if errors.Is(err, registry.ErrPolicyViolation) {
			event.Outcome, event.Reason = audit.Failure, err.Error()
			h.record(r, claims, repo, event)
		}
		writeError(w, r, h.log, err)
		return
	}
	h.record(r, claims, repo, event)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}
