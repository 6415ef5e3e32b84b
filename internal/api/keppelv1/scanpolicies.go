package keppelv1

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/policy"
	"keppel/internal/registry"
)

// ScanPolicyService keeps the security scan policies of accounts.
type ScanPolicyService interface {
	SecurityScanPolicies(ctx context.Context, account string) ([]policy.ScanPolicy, error)
	SetSecurityScanPolicies(ctx context.Context, account string, policies []policy.ScanPolicy, requester string) ([]policy.ScanPolicy, error)
}

// scanPoliciesJSON is the body of the security scan policy endpoints.
type scanPoliciesJSON struct {
	Policies []policy.ScanPolicy `json:"policies"`
}

// getScanPolicies serves GET /keppel/v1/accounts/{account}/security_scan_policies.
func (h *Handler) getScanPolicies(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	a, ok := h.findAccount(w, r, id, r.PathValue("account"))
	if !ok || !h.hasScanPolicies(w) {
		return
	}
	policies, err := h.scanPolicies.SecurityScanPolicies(r.Context(), a.Name)
	if err != nil {
		h.internalError(w, "cannot read the security scan policies", err)
		return
	}
	writeJSON(w, http.StatusOK, scanPoliciesJSON{Policies: nonNilPolicies(policies)})
}

// putScanPolicies serves PUT /keppel/v1/accounts/{account}/security_scan_policies.
func (h *Handler) putScanPolicies(w http.ResponseWriter, r *http.Request) {
	id, a, ok := h.changeableAccount(w, r, "changing the security scan policies of")
	if !ok || !h.hasScanPolicies(w) {
		return
	}
	var body scanPoliciesJSON
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "malformed request body: %s", err.Error()))
		return
	}
	policies, err := h.scanPolicies.SetSecurityScanPolicies(r.Context(), a.Name, body.Policies, id.Username)
	var verr *policy.ValidationError
	switch {
	case errors.As(err, &verr):
		errcode.Write(w, errcode.New(errcode.BadRequest, "%s", err.Error()))
		return
	case errors.Is(err, registry.ErrScanPolicyManaged), errors.Is(err, registry.ErrManagedAccount):
		forbidden(w, "%s", err.Error())
		return
	case err != nil:
		h.internalError(w, "cannot store the security scan policies", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "account.security_scan_policies", AuthTenantID: a.AuthTenantID, AccountName: a.Name})
	writeJSON(w, http.StatusOK, scanPoliciesJSON{Policies: nonNilPolicies(policies)})
}

func nonNilPolicies(ps []policy.ScanPolicy) []policy.ScanPolicy {
	if ps == nil {
		return []policy.ScanPolicy{}
	}
	return ps
}

func (h *Handler) hasScanPolicies(w http.ResponseWriter) bool {
	if h.scanPolicies == nil {
		errcode.Write(w, errcode.New(errcode.NotFound, "security scan policies are not available on this server"))
		return false
	}
	return true
}
