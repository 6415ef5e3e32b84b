package oci

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/oci"
)

func (h *Handler) serveBlob(w http.ResponseWriter, r *http.Request, rt route) {
	var action string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		action = auth.ActionPull
	case http.MethodDelete:
		action = auth.ActionDelete
	default:
		methodNotAllowed(w, "GET, HEAD, DELETE")
		return
	}
	if _, ok := h.authorize(w, r, auth.RepositoryScope(rt.repo, action)); !ok {
		return
	}
	d, err := oci.ParseDigest(rt.ref)
	if err != nil {
		errcode.Write(w, errcode.New(errcode.DigestInvalid, "%s", err.Error()))
		return
	}
	repo, err := h.svc.FindRepository(r.Context(), rt.repo)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}

	if r.Method == http.MethodDelete {
		if err := h.svc.DeleteBlob(r.Context(), repo, d); err != nil {
			writeError(w, r, h.log, err)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return
	}

	blob, err := h.svc.StatBlob(r.Context(), repo, d)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Docker-Content-Digest", blob.Digest)
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("ETag", `"`+blob.Digest+`"`)
	hdr.Set("Cache-Control", "max-age=31536000")

	rng, partial, err := oci.ParseRange(r.Header.Get("Range"), blob.SizeBytes)
	if err != nil {
		hdr.Set("Content-Range", "bytes */"+strconv.FormatInt(blob.SizeBytes, 10))
		code := errcode.RangeInvalid
		errcode.Write(w, errcode.New(code, "%s", rangeMessage(err)))
		return
	}
	offset, length, status := int64(0), blob.SizeBytes, http.StatusOK
	if partial {
		offset, length, status = rng.Start, rng.Length, http.StatusPartialContent
		hdr.Set("Content-Range", "bytes "+strconv.FormatInt(rng.Start, 10)+"-"+
			strconv.FormatInt(rng.Start+rng.Length-1, 10)+"/"+strconv.FormatInt(blob.SizeBytes, 10))
	}
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}

	readLength := length
	if !partial {
		readLength = -1
	}
	rc, err := h.svc.OpenBlob(r.Context(), repo, blob, offset, readLength)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	defer rc.Close()
	w.WriteHeader(status)
	n, err := io.Copy(w, rc)
	h.metrics.Pulled.WithLabelValues("blob").Inc()
	h.metrics.PulledBytes.Add(float64(n))
	if err != nil && r.Context().Err() == nil {
		h.log.Warn("blob download interrupted", "digest", blob.Digest, "sent", n, "of", length, "error", err)
	}
}

func rangeMessage(err error) string {
	if errors.Is(err, oci.ErrRangeNotSatisfiable) {
		return "the requested range lies outside the blob"
	}
	return err.Error()
}
