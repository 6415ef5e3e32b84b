package keppelv1

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"keppel/internal/db"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/oci"
)

// AccountService is what the account endpoints need from the registry.
type AccountService interface {
	CreateAccount(ctx context.Context, name, authTenantID string) (models.Account, bool, error)
	GetAccount(ctx context.Context, name string) (models.Account, error)
	ListAccounts(ctx context.Context) ([]models.Account, error)
}

// accountJSON is the wire form of an account, as in SAP Keppel's API.
type accountJSON struct {
	Name         string `json:"name"`
	AuthTenantID string `json:"auth_tenant_id"`
	State        string `json:"state,omitempty"`
}

func renderAccount(a models.Account) accountJSON {
	out := accountJSON{Name: a.Name, AuthTenantID: a.AuthTenantID}
	if a.IsDeleting {
		out.State = "deleting"
	}
	return out
}

func (h *Handler) listAccounts(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	accounts, err := h.svc.ListAccounts(r.Context())
	if err != nil {
		h.log.Error("cannot list accounts", "error", err)
		errcode.Write(w, err)
		return
	}
	out := make([]accountJSON, len(accounts))
	for i, a := range accounts {
		out[i] = renderAccount(a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out})
}

func (h *Handler) getAccount(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	a, err := h.svc.GetAccount(r.Context(), r.PathValue("account"))
	if errors.Is(err, db.ErrNotFound) {
		errcode.Write(w, errcode.New(errcode.NotFound, "no such account"))
		return
	}
	if err != nil {
		h.log.Error("cannot get account", "error", err)
		errcode.Write(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": renderAccount(a)})
}

func (h *Handler) putAccount(w http.ResponseWriter, r *http.Request) {
	if !h.requireAdmin(w, r) {
		return
	}
	name := r.PathValue("account")
	if !oci.ValidAccountName(name) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "account name %q is invalid: it must match ^[a-z0-9][a-z0-9-]{0,47}$ and not be reserved", name))
		return
	}
	var req struct {
		Account struct {
			AuthTenantID string `json:"auth_tenant_id"`
		} `json:"account"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "malformed request body: %s", err.Error()))
		return
	}
	tenant := req.Account.AuthTenantID
	if !validTenantID(tenant) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "account.auth_tenant_id is missing or invalid"))
		return
	}
	a, created, err := h.svc.CreateAccount(r.Context(), name, tenant)
	if errors.Is(err, db.ErrConflict) {
		errcode.Write(w, errcode.New(errcode.Conflict, "account %s exists already and belongs to another auth tenant", name))
		return
	}
	if err != nil {
		h.log.Error("cannot create account", "error", err)
		errcode.Write(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		h.log.Info("account created", "account", a.Name, "auth_tenant_id", a.AuthTenantID)
	}
	writeJSON(w, status, map[string]any{"account": renderAccount(a)})
}

// validTenantID accepts tenant IDs as identity providers issue them
// (UUIDs, hex IDs, names): printable, no slashes, at most 128 bytes. Tenant
// IDs become a storage path element, so anything else is refused.
func validTenantID(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}
