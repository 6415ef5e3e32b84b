package oci

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"

	"github.com/opencontainers/go-digest"

	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/registry"
)

func (h *Handler) serveUploadStart(w http.ResponseWriter, r *http.Request, rt route) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	q := r.URL.Query()
	claims, ok := h.authorize(w, r, auth.RepositoryScope(rt.repo, auth.ActionPull, auth.ActionPush))
	if !ok || !h.allowBlobPush(w, r, rt.repo) {
		return
	}
	// A mount needs pull access to the source repository. Without it, the
	// request is an ordinary upload: the answer must not tell whether the
	// source has the blob.
	mountDigest, from := q.Get("mount"), q.Get("from")
	if mountDigest != "" && from != "" && from != rt.repo && !claims.Access.Allows("repository", from, auth.ActionPull) {
		// If the caller may pull from the source, ask for a token that
		// says so; otherwise upload as if the blob were nowhere.
		source := auth.RepositoryScope(from, auth.ActionPull)
		if grants, err := h.authz.Grant(r.Context(), claims.Identity(), []auth.Scope{source}, h.clientIP(r)); err == nil && len(grants) > 0 {
			h.challenge(w, r, true, auth.RepositoryScope(rt.repo, auth.ActionPull, auth.ActionPush), source)
			return
		}
		mountDigest = ""
	}
	repo, err := h.svc.FindOrCreateRepository(r.Context(), rt.repo)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}

	if mountDigest != "" {
		d, err := oci.ParseDigest(mountDigest)
		if err != nil {
			errcode.Write(w, errcode.New(errcode.DigestInvalid, "mount: %s", err.Error()))
			return
		}
		blob, err := h.svc.MountBlob(r.Context(), repo, d, from)
		if err == nil {
			blobCreated(w, rt.repo, blob)
			return
		}
		if !errors.Is(err, registry.ErrBlobUnknown) {
			writeError(w, r, h.log, err)
			return
		}
		// Nothing to mount: fall back to a regular upload, as the spec says.
	}

	if dgst := q.Get("digest"); dgst != "" {
		d, err := oci.ParseDigest(dgst)
		if err != nil {
			errcode.Write(w, errcode.New(errcode.DigestInvalid, "%s", err.Error()))
			return
		}
		h.monolithicUpload(w, r, rt, repo, d)
		return
	}

	u, err := h.svc.StartUpload(r.Context(), repo)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	uploadAccepted(w, rt.repo, u, http.StatusAccepted)
}

func (h *Handler) monolithicUpload(w http.ResponseWriter, r *http.Request, rt route, repo registry.Repo, d digest.Digest) {
	u, err := h.svc.StartUpload(r.Context(), repo)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	blob, err := h.svc.FinishUpload(r.Context(), repo, u.UUID, d, nil, r.Body)
	if err != nil {
		if !errors.Is(err, registry.ErrDigestInvalid) {
			_ = h.svc.CancelUpload(r.Context(), repo, u.UUID)
		}
		writeError(w, r, h.log, err)
		return
	}
	h.metrics.Pushed.WithLabelValues("blob").Inc()
	h.metrics.PushedBytes.Add(float64(blob.SizeBytes))
	blobCreated(w, rt.repo, blob)
}

func (h *Handler) serveUpload(w http.ResponseWriter, r *http.Request, rt route) {
	switch r.Method {
	case http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete:
	default:
		methodNotAllowed(w, "GET, PATCH, PUT, DELETE")
		return
	}
	if _, ok := h.authorize(w, r, auth.RepositoryScope(rt.repo, auth.ActionPull, auth.ActionPush)); !ok {
		return
	}
	if (r.Method == http.MethodPatch || r.Method == http.MethodPut) && !h.allowBlobPush(w, r, rt.repo) {
		return
	}
	repo, err := h.svc.FindRepository(r.Context(), rt.repo)
	if err != nil {
		if errors.Is(err, registry.ErrRepositoryUnknown) {
			err = errcode.New(errcode.BlobUploadUnknown, "upload %s is not known in repository %s", rt.ref, rt.repo)
		}
		writeError(w, r, h.log, err)
		return
	}

	switch r.Method {
	case http.MethodGet:
		u, err := h.svc.GetUpload(r.Context(), repo, rt.ref)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		uploadAccepted(w, rt.repo, u, http.StatusNoContent)

	case http.MethodPatch:
		start, err := parseContentRange(r)
		if err != nil {
			errcode.Write(w, err)
			return
		}
		u, err := h.svc.AppendToUpload(r.Context(), repo, rt.ref, start, r.Body)
		if err != nil {
			if errors.Is(err, registry.ErrUploadOutOfOrder) {
				setUploadHeaders(w, rt.repo, u)
			}
			writeError(w, r, h.log, err)
			return
		}
		uploadAccepted(w, rt.repo, u, http.StatusAccepted)

	case http.MethodPut:
		d, err := oci.ParseDigest(r.URL.Query().Get("digest"))
		if err != nil {
			errcode.Write(w, errcode.New(errcode.DigestInvalid, "the digest query parameter is required: %s", err.Error()))
			return
		}
		start, err := parseContentRange(r)
		if err != nil {
			errcode.Write(w, err)
			return
		}
		blob, err := h.svc.FinishUpload(r.Context(), repo, rt.ref, d, start, r.Body)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		h.metrics.Pushed.WithLabelValues("blob").Inc()
		h.metrics.PushedBytes.Add(float64(blob.SizeBytes))
		blobCreated(w, rt.repo, blob)

	case http.MethodDelete:
		if err := h.svc.CancelUpload(r.Context(), repo, rt.ref); err != nil {
			writeError(w, r, h.log, err)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
	}
}

var contentRangeRx = regexp.MustCompile(`^(?:bytes )?([0-9]{1,18})-([0-9]{1,18})(?:/(?:\*|[0-9]{1,18}))?$`)

// parseContentRange reads the optional Content-Range of a chunk ("start-end",
// inclusive) and checks it against Content-Length. It returns the start
// offset, or nil when the header is absent.
func parseContentRange(r *http.Request) (*int64, error) {
	header := r.Header.Get("Content-Range")
	if header == "" {
		return nil, nil
	}
	m := contentRangeRx.FindStringSubmatch(header)
	if m == nil {
		return nil, errcode.New(errcode.RangeInvalid, "malformed Content-Range %q, expected <start>-<end>", header)
	}
	start, _ := strconv.ParseInt(m[1], 10, 64)
	end, _ := strconv.ParseInt(m[2], 10, 64)
	if end < start {
		return nil, errcode.New(errcode.RangeInvalid, "Content-Range %q ends before it starts", header)
	}
	if r.ContentLength >= 0 && end-start+1 != r.ContentLength {
		return nil, errcode.New(errcode.RangeInvalid, "Content-Range %q does not match Content-Length %d", header, r.ContentLength)
	}
	return &start, nil
}

func setUploadHeaders(w http.ResponseWriter, repo string, u models.Upload) {
	end := u.SizeBytes - 1
	if end < 0 {
		end = 0
	}
	hdr := w.Header()
	hdr.Set("Location", "/v2/"+repo+"/blobs/uploads/"+u.UUID)
	hdr.Set("Range", "0-"+strconv.FormatInt(end, 10))
	hdr.Set("Docker-Upload-UUID", u.UUID)
}

func uploadAccepted(w http.ResponseWriter, repo string, u models.Upload, status int) {
	setUploadHeaders(w, repo, u)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

func blobCreated(w http.ResponseWriter, repo string, b models.Blob) {
	hdr := w.Header()
	hdr.Set("Location", "/v2/"+repo+"/blobs/"+b.Digest)
	hdr.Set("Docker-Content-Digest", b.Digest)
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
