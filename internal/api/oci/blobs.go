package oci

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/registry"
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
	if r.Method == http.MethodGet && !h.allowBlobPull(w, r, rt.repo, blob.SizeBytes) {
		return
	}
	if r.Method == http.MethodGet && h.redirectTTL > 0 && h.redirectBlob(w, r, repo, blob) {
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
	n, err := copyBlob(w, r, rc)
	h.metrics.Pulled.WithLabelValues("blob").Inc()
	h.metrics.PulledBytes.Add(float64(n))
	if err != nil && r.Context().Err() == nil {
		h.log.Warn("blob download interrupted", "digest", blob.Digest, "sent", n, "of", length, "error", err)
	}
}

// redirectBlob answers a blob GET with a temporary redirect to a presigned
// storage URL. It reports false (and has written nothing) when the storage
// cannot sign one, so that the content is served as usual.
func (h *Handler) redirectBlob(w http.ResponseWriter, r *http.Request, repo registry.Repo, blob models.Blob) bool {
	u, err := h.svc.BlobURL(r.Context(), repo, blob, h.redirectTTL)
	if err != nil {
		h.log.Warn("cannot redirect a blob download; serving it directly", "digest", blob.Digest, "error", err)
		return false
	}
	if u == "" {
		return false
	}
	hdr := w.Header()
	hdr.Set("Docker-Content-Digest", blob.Digest)
	hdr.Set("Location", u)
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTemporaryRedirect)
	h.metrics.Pulled.WithLabelValues("blob").Inc()
	return true
}

// allowBlobPull applies the blob pull limits to a GET of a blob of the
// size (or of the requested range of it).
func (h *Handler) allowBlobPull(w http.ResponseWriter, r *http.Request, repo string, size int64) bool {
	n := size
	if rng, partial, err := oci.ParseRange(r.Header.Get("Range"), size); err == nil && partial {
		n = rng.Length
	}
	return h.allow(w, r, repo, "blob_pull", h.limits.BlobPull, 1) &&
		h.allow(w, r, repo, "blob_pull_bytes", h.limits.BlobPullBytes, n)
}

// blobBuffers hold blob content on its way to loopback clients.
var blobBuffers = sync.Pool{New: func() any {
	buf := make([]byte, 256<<10)
	return &buf
}}

// copyBlob sends blob content. To a client on another host, it lets the
// kernel send the file (sendfile, through the ResponseWriter's ReadFrom),
// which saves a copy through user space on a network interface. To a client
// on loopback (a local tool, or a reverse proxy on the same host), the
// receiver's copy dominates, and copying through a pooled 256 KiB buffer
// was measured about 1.4 times as fast as sendfile at the same CPU time
// (docs/benchmarks.md).
func copyBlob(w http.ResponseWriter, r *http.Request, rc io.Reader) (int64, error) {
	if !fromLoopback(r) {
		return io.Copy(w, rc)
	}
	bufp := blobBuffers.Get().(*[]byte)
	defer blobBuffers.Put(bufp)
	// The wrappers hide ReadFrom and WriteTo, which would bypass the buffer.
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{rc}, *bufp)
}

// fromLoopback reports whether the request's connection comes from a
// loopback address.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func rangeMessage(err error) string {
	if errors.Is(err, oci.ErrRangeNotSatisfiable) {
		return "the requested range lies outside the blob"
	}
	return err.Error()
}
