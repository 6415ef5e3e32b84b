package keppelv1

import (
	"context"
	"errors"
	"net/http"

	"keppel/internal/errcode"
	"keppel/internal/oci"
	"keppel/internal/registry"
)

// ScanService serves the results of vulnerability scans (nil: scanning is
// off, and every manifest is shown as Unsupported).
type ScanService interface {
	VulnerabilityReport(ctx context.Context, repo registry.Repo, digest string) (scanner string, report []byte, err error)
}

// vulnerabilityStatus is the status shown for a manifest.
func (h *Handler) vulnerabilityStatus(stored string) string {
	if h.scans == nil || stored == "" {
		return "Unsupported"
	}
	return stored
}

// getVulnerabilityReport serves the report of a manifest's last scan
// (GET …/_manifests/:digest/vulnerability_report, or …/trivy_report as in
// SAP Keppel), to those who may see the account.
func (h *Handler) getVulnerabilityReport(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	repo, ok := h.findRepo(w, r, id)
	if !ok {
		return
	}
	d, err := oci.ParseDigest(r.PathValue("digest"))
	if err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "invalid digest: %s", err.Error()))
		return
	}
	if h.scans == nil {
		errcode.Write(w, errcode.New(errcode.NotFound, "vulnerability scanning is not enabled on this registry"))
		return
	}
	scanner, report, err := h.scans.VulnerabilityReport(r.Context(), repo, d.String())
	if errors.Is(err, registry.ErrManifestUnknown) {
		errcode.Write(w, errcode.New(errcode.NotFound, "%s", err.Error()))
		return
	}
	if err != nil {
		h.internalError(w, "cannot read the vulnerability report", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Keppel-Scanner", scanner)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(report)
}
