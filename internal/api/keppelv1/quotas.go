package keppelv1

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"keppel/internal/audit"
	"keppel/internal/db"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/registry"
)

// QuotaService is what the quota endpoints need from the registry.
type QuotaService interface {
	GetQuota(ctx context.Context, tenant string) (registry.Quota, error)
	PutQuota(ctx context.Context, q models.Quota) error
}

type quotaValueJSON struct {
	Quota int64 `json:"quota"`
	Usage int64 `json:"usage"`
}

type quotaJSON struct {
	Manifests quotaValueJSON `json:"manifests"`
	Bytes     quotaValueJSON `json:"bytes"`
	IsDefault bool           `json:"is_default,omitempty"`
}

func renderQuota(q registry.Quota) quotaJSON {
	return quotaJSON{
		Manifests: quotaValueJSON{Quota: q.Quota.ManifestCount, Usage: q.Usage.ManifestCount},
		Bytes:     quotaValueJSON{Quota: q.Quota.SizeBytes, Usage: q.Usage.SizeBytes},
		IsDefault: q.IsDefault,
	}
}

func (h *Handler) getQuota(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	tenant := r.PathValue("tenant")
	if !validTenantID(tenant) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "invalid auth tenant ID"))
		return
	}
	if !canView(id, tenant) {
		notVisible(w, "auth tenant")
		return
	}
	q, err := h.quotas.GetQuota(r.Context(), tenant)
	if err != nil {
		h.internalError(w, "cannot get quota", err)
		return
	}
	writeJSON(w, http.StatusOK, renderQuota(q))
}

func (h *Handler) putQuota(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	tenant := r.PathValue("tenant")
	if !validTenantID(tenant) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "invalid auth tenant ID"))
		return
	}
	if !id.IsAdmin {
		if canView(id, tenant) {
			forbidden(w, "only server administrators can change quotas")
		} else {
			notVisible(w, "auth tenant")
		}
		return
	}
	var req struct {
		Manifests *struct {
			Quota *int64 `json:"quota"`
		} `json:"manifests"`
		Bytes *struct {
			Quota *int64 `json:"quota"`
		} `json:"bytes"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "malformed request body: %s", err.Error()))
		return
	}
	current, err := h.quotas.GetQuota(r.Context(), tenant)
	if err != nil {
		h.internalError(w, "cannot get quota", err)
		return
	}
	q := current.Quota
	q.AuthTenantID = tenant
	if req.Manifests != nil && req.Manifests.Quota != nil {
		q.ManifestCount = *req.Manifests.Quota
	}
	if req.Bytes != nil && req.Bytes.Quota != nil {
		q.SizeBytes = *req.Bytes.Quota
	}
	if q.ManifestCount < -1 || q.SizeBytes < -1 {
		errcode.Write(w, errcode.New(errcode.BadRequest, "quotas must be -1 (unlimited) or at least 0"))
		return
	}
	if err := h.quotas.PutQuota(r.Context(), q); err != nil {
		h.internalError(w, "cannot store quota", err)
		return
	}
	details, _ := json.Marshal(map[string]int64{"manifests": q.ManifestCount, "bytes": q.SizeBytes})
	h.record(r, id, models.AuditEvent{Action: "quota.update", AuthTenantID: tenant, DetailsJSON: string(details)})
	current.Quota, current.IsDefault = q, false
	writeJSON(w, http.StatusOK, renderQuota(current))
}

// AuditService is what the audit endpoint needs.
type AuditService interface {
	ListAuditEvents(ctx context.Context, f db.AuditFilter) ([]models.AuditEvent, error)
}

// getAudit lists audit events: server administrators see all, tenant
// admins those of their tenants.
func (h *Handler) getAudit(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := db.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), AuthTenantID: q.Get("auth_tenant_id"), AccountName: q.Get("account")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				errcode.Write(w, errcode.New(errcode.BadRequest, "%s must be an RFC 3339 time", p.name))
				return
			}
			*p.dst = t
		}
	}
	for _, p := range []struct {
		name string
		dst  func(int64)
	}{{"before_id", func(v int64) { f.BeforeID = v }}, {"limit", func(v int64) { f.Limit = int(v) }}} {
		if s := q.Get(p.name); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v < 1 || v > 1<<40 {
				errcode.Write(w, errcode.New(errcode.BadRequest, "%s must be a positive integer", p.name))
				return
			}
			p.dst(v)
		}
	}
	if !id.IsAdmin {
		if f.AuthTenantID == "" || !canChange(id, f.AuthTenantID) {
			forbidden(w, "audit events can be read by server administrators, and by tenant admins with auth_tenant_id set to their tenant")
			return
		}
	}
	events, err := h.auditLog.ListAuditEvents(r.Context(), f)
	if err != nil {
		h.internalError(w, "cannot list audit events", err)
		return
	}
	out := make([]any, len(events))
	for i, e := range events {
		out[i] = audit.Render(e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}
