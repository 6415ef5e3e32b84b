package keppelv1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"

	"keppel/internal/auth"
	"keppel/internal/db"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/registry"
)

// AccountService is what the account endpoints need from the registry.
type AccountService interface {
	CreateAccountWithSettings(ctx context.Context, a models.Account) (models.Account, bool, error)
	CreateAccountWithSublease(ctx context.Context, a models.Account, subleaseToken string) (models.Account, bool, error)
	IssueSubleaseToken(ctx context.Context, a models.Account) (string, error)
	GetAccount(ctx context.Context, name string) (models.Account, error)
	ListAccounts(ctx context.Context) ([]models.Account, error)
	ListAccountsOfTenants(ctx context.Context, tenants []string) ([]models.Account, error)
	UpdateAccount(ctx context.Context, a models.Account, managed bool) error
	MarkAccountForDeletion(ctx context.Context, name string, managed bool) (models.Account, error)
	NormalizeReplication(raw json.RawMessage) (string, error)
}

// accountJSON is the wire form of an account, as in SAP Keppel's API.
type accountJSON struct {
	Name           string          `json:"name"`
	AuthTenantID   string          `json:"auth_tenant_id"`
	RBACPolicies   json.RawMessage `json:"rbac_policies"`
	GCPolicies     json.RawMessage `json:"gc_policies,omitempty"`
	TagPolicies    json.RawMessage `json:"tag_policies,omitempty"`
	Validation     *validationJSON `json:"validation,omitempty"`
	PlatformFilter json.RawMessage `json:"platform_filter,omitempty"`
	Replication    json.RawMessage `json:"replication,omitempty"`
	State          string          `json:"state,omitempty"`
	Deletion       *deletionJSON   `json:"deletion,omitempty"`
	Managed        bool            `json:"managed,omitempty"`
}

type validationJSON struct {
	RuleForManifest string `json:"rule_for_manifest,omitempty"`
}

func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func renderAccount(a models.Account) accountJSON {
	out := accountJSON{
		Name:           a.Name,
		AuthTenantID:   a.AuthTenantID,
		RBACPolicies:   rawOrNil(a.RBACPoliciesJSON),
		GCPolicies:     rawOrNil(a.GCPoliciesJSON),
		TagPolicies:    rawOrNil(a.TagPoliciesJSON),
		PlatformFilter: rawOrNil(a.PlatformFilterJSON),
		Replication:    registry.RenderReplication(a.ReplicationJSON),
		Managed:        a.IsManaged,
	}
	if out.RBACPolicies == nil {
		out.RBACPolicies = json.RawMessage("[]")
	}
	if a.ValidationRule != "" {
		out.Validation = &validationJSON{RuleForManifest: a.ValidationRule}
	}
	if a.IsDeleting {
		out.State = "deleting"
	}
	return out
}

func (h *Handler) listAccounts(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	var (
		accounts []models.Account
		err      error
	)
	if id.IsAdmin {
		accounts, err = h.svc.ListAccounts(r.Context())
	} else {
		accounts, err = h.svc.ListAccountsOfTenants(r.Context(), viewableTenants(id))
	}
	if err != nil {
		h.internalError(w, "cannot list accounts", err)
		return
	}
	sort.Slice(accounts, func(i, j int) bool { return accounts[i].Name < accounts[j].Name })
	out := make([]accountJSON, len(accounts))
	for i, a := range accounts {
		out[i] = renderAccount(a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out})
}

// findAccount returns an account the identity may see, or answers 404.
func (h *Handler) findAccount(w http.ResponseWriter, r *http.Request, id *auth.Identity, name string) (models.Account, bool) {
	a, err := h.svc.GetAccount(r.Context(), name)
	if errors.Is(err, db.ErrNotFound) || (err == nil && !canView(id, a.AuthTenantID)) {
		notVisible(w, "account")
		return a, false
	}
	if err != nil {
		h.internalError(w, "cannot get account", err)
		return a, false
	}
	return a, true
}

func (h *Handler) getAccount(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	a, ok := h.findAccount(w, r, id, r.PathValue("account"))
	if !ok {
		return
	}
	out := renderAccount(a)
	if a.IsDeleting {
		// Report the progress of the deletion: what is left to delete.
		stats, err := h.repos.ListRepositoryStats(r.Context(), a.Name, "", db.NoLimit)
		if err != nil {
			h.internalError(w, "cannot count what is left of a deleting account", err)
			return
		}
		progress := &deletionJSON{RemainingRepositories: len(stats)}
		for _, s := range stats {
			progress.RemainingManifests += s.ManifestCount
		}
		out.Deletion = progress
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": out})
}

// deletionJSON reports how far the deletion of an account has come.
type deletionJSON struct {
	RemainingRepositories int   `json:"remaining_repositories"`
	RemainingManifests    int64 `json:"remaining_manifests"`
}

type putAccountRequest struct {
	Account struct {
		AuthTenantID   string          `json:"auth_tenant_id"`
		RBACPolicies   json.RawMessage `json:"rbac_policies"`
		GCPolicies     json.RawMessage `json:"gc_policies"`
		TagPolicies    json.RawMessage `json:"tag_policies"`
		Validation     *validationJSON `json:"validation"`
		PlatformFilter json.RawMessage `json:"platform_filter"`
		// Replication and metadata are accepted for compatibility with
		// SAP Keppel's clients; replication is configured by the
		// federation features.
		Replication json.RawMessage   `json:"replication"`
		Metadata    map[string]string `json:"metadata"`
	} `json:"account"`
}

func (h *Handler) putAccount(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	name := r.PathValue("account")
	if !oci.ValidAccountName(name) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "account name %q is invalid: it must match ^[a-z0-9][a-z0-9-]{0,47}$ and not be reserved", name))
		return
	}
	var req putAccountRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "malformed request body: %s", err.Error()))
		return
	}
	tenant := req.Account.AuthTenantID
	if !validTenantID(tenant) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "account.auth_tenant_id is missing or invalid"))
		return
	}
	settings, err := h.parseAccountSettings(req)
	if err != nil {
		errcode.Write(w, err)
		return
	}

	existing, err := h.svc.GetAccount(r.Context(), name)
	switch {
	case errors.Is(err, db.ErrNotFound):
		if !canChange(id, tenant) {
			forbidden(w, "creating accounts in auth tenant %s requires the admin role there", tenant)
			return
		}
		settings.Name, settings.AuthTenantID = name, tenant
		created, isNew, err := h.svc.CreateAccountWithSublease(r.Context(), settings, r.Header.Get("X-Keppel-Sublease-Token"))
		if errors.Is(err, registry.ErrAccountNameTaken) {
			errcode.Write(w, errcode.New(errcode.Conflict, "account name %s is not available: %s", name, err.Error()))
			return
		}
		if errors.Is(err, registry.ErrSubleaseTokenInvalid) {
			forbidden(w, "creating the replica account %s needs a sublease token of its primary account (X-Keppel-Sublease-Token): %s", name, err.Error())
			return
		}
		if errors.Is(err, db.ErrConflict) {
			// created concurrently by someone else, maybe of another tenant
			errcode.Write(w, errcode.New(errcode.Conflict, "account name %s is not available", name))
			return
		}
		if err != nil {
			h.internalError(w, "cannot create account", err)
			return
		}
		if !isNew {
			// created concurrently for the same tenant: this request updates it
			h.updateAccount(w, r, id, created, settings)
			return
		}
		h.record(r, id, models.AuditEvent{Action: "account.create", AuthTenantID: tenant, AccountName: name})
		h.log.Info("account created", "account", name, "auth_tenant_id", tenant)
		writeJSON(w, http.StatusCreated, map[string]any{"account": renderAccount(created)})
		return
	case err != nil:
		h.internalError(w, "cannot get account", err)
		return
	}

	if !canView(id, existing.AuthTenantID) {
		// Do not reveal that a foreign tenant's account exists.
		errcode.Write(w, errcode.New(errcode.Conflict, "account name %s is not available", name))
		return
	}
	if existing.AuthTenantID != tenant {
		errcode.Write(w, errcode.New(errcode.Conflict, "account %s belongs to auth tenant %s; it cannot move", name, existing.AuthTenantID))
		return
	}
	if !canChange(id, tenant) {
		forbidden(w, "changing account %s requires the admin role in auth tenant %s", name, tenant)
		return
	}
	h.updateAccount(w, r, id, existing, settings)
}

// updateAccount replaces the settings of an existing account. Replication
// cannot change once an account has content of its own or of an upstream:
// a request without it keeps it, one with other settings is refused.
func (h *Handler) updateAccount(w http.ResponseWriter, r *http.Request, id *auth.Identity, existing, settings models.Account) {
	switch {
	case settings.ReplicationJSON == "":
		settings.ReplicationJSON = existing.ReplicationJSON
		if settings.PlatformFilterJSON != "" && settings.ReplicationJSON == "" {
			errcode.Write(w, errcode.New(errcode.BadRequest, "account.platform_filter is only allowed for replica accounts"))
			return
		}
	case !registry.SameReplication(existing.ReplicationJSON, settings.ReplicationJSON):
		errcode.Write(w, errcode.New(errcode.Conflict, "account.replication cannot be changed"))
		return
	}
	settings.Name, settings.AuthTenantID = existing.Name, existing.AuthTenantID
	settings.IsDeleting, settings.IsManaged, settings.IsProtected = existing.IsDeleting, existing.IsManaged, existing.IsProtected
	if existing.IsDeleting {
		errcode.Write(w, errcode.New(errcode.Conflict, "account %s is being deleted", existing.Name))
		return
	}
	err := h.svc.UpdateAccount(r.Context(), settings, false)
	if errors.Is(err, registry.ErrManagedAccount) {
		forbidden(w, "%s", err.Error())
		return
	}
	if err != nil {
		h.internalError(w, "cannot update account", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "account.update", AuthTenantID: existing.AuthTenantID, AccountName: existing.Name})
	writeJSON(w, http.StatusOK, map[string]any{"account": renderAccount(settings)})
}

// parseAccountSettings validates the policies of a PUT request and returns
// them in an Account (name and tenant are filled in by the caller).
func (h *Handler) parseAccountSettings(req putAccountRequest) (models.Account, error) {
	var a models.Account
	var err error
	if a.RBACPoliciesJSON, err = validateRBAC(req.Account.RBACPolicies); err != nil {
		return a, err
	}
	if a.TagPoliciesJSON, err = validateTagPolicies(req.Account.TagPolicies); err != nil {
		return a, err
	}
	if a.GCPoliciesJSON, err = validateGCPolicies(req.Account.GCPolicies); err != nil {
		return a, err
	}
	if a.PlatformFilterJSON, err = jsonArray("platform_filter", req.Account.PlatformFilter); err != nil {
		return a, err
	}
	if req.Account.Validation != nil && req.Account.Validation.RuleForManifest != "" {
		if err := validateRule(req.Account.Validation.RuleForManifest); err != nil {
			return a, err
		}
		a.ValidationRule = req.Account.Validation.RuleForManifest
	}
	a.ReplicationJSON, err = h.svc.NormalizeReplication(req.Account.Replication)
	if errors.Is(err, registry.ErrReplicationInvalid) {
		return a, errcode.New(errcode.BadRequest, "account.replication: %s", err.Error())
	}
	if err != nil {
		return a, err
	}
	if a.PlatformFilterJSON != "" && a.ReplicationJSON == "" {
		return a, errcode.New(errcode.BadRequest, "account.platform_filter is only allowed for replica accounts")
	}
	return a, nil
}

// jsonArray checks that raw is a JSON array (or absent) and returns it
// compacted ("" for absent, null or empty).
func jsonArray(field string, raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", errcode.New(errcode.BadRequest, "account.%s must be a list: %s", field, err.Error())
	}
	if len(list) == 0 {
		return "", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", errcode.New(errcode.BadRequest, "account.%s: %s", field, err.Error())
	}
	return buf.String(), nil
}

// changeableAccount resolves the account of the request for a change that
// needs the admin role in its tenant (doing names the change, for the
// error). It has answered the request when ok is false.
func (h *Handler) changeableAccount(w http.ResponseWriter, r *http.Request, doing string) (id *auth.Identity, a models.Account, ok bool) {
	if id, ok = h.requireIdentity(w, r); !ok {
		return nil, a, false
	}
	if a, ok = h.findAccount(w, r, id, r.PathValue("account")); !ok {
		return nil, a, false
	}
	if !canChange(id, a.AuthTenantID) {
		forbidden(w, "%s account %s requires the admin role in auth tenant %s", doing, a.Name, a.AuthTenantID)
		return nil, a, false
	}
	return id, a, true
}

func (h *Handler) deleteAccount(w http.ResponseWriter, r *http.Request) {
	id, a, ok := h.changeableAccount(w, r, "deleting")
	if !ok {
		return
	}
	a, err := h.svc.MarkAccountForDeletion(r.Context(), a.Name, false)
	if errors.Is(err, registry.ErrManagedAccount) {
		forbidden(w, "%s", err.Error())
		return
	}
	if err != nil {
		h.internalError(w, "cannot delete account", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "account.delete", AuthTenantID: a.AuthTenantID, AccountName: a.Name})
	writeJSON(w, http.StatusAccepted, map[string]any{"account": renderAccount(a)})
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

// postSublease issues a sublease token for a primary account: with it,
// another registry of the federation may create one replica of the account.
func (h *Handler) postSublease(w http.ResponseWriter, r *http.Request) {
	id, a, ok := h.changeableAccount(w, r, "issuing sublease tokens for")
	if !ok {
		return
	}
	token, err := h.svc.IssueSubleaseToken(r.Context(), a)
	if errors.Is(err, registry.ErrNotPrimaryAccount) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "%s", err.Error()))
		return
	}
	if err != nil {
		h.internalError(w, "cannot issue a sublease token", err)
		return
	}
	h.record(r, id, models.AuditEvent{Action: "account.sublease", AuthTenantID: a.AuthTenantID, AccountName: a.Name})
	writeJSON(w, http.StatusOK, map[string]string{"sublease_token": token})
}
