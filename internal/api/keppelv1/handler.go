// Package keppelv1 serves the management API under /keppel/v1/: the token
// endpoint of the Docker token flow and account management.
package keppelv1

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"keppel/internal/audit"
	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/models"
)

// Handler serves /keppel/v1/.
type Handler struct {
	mux      *http.ServeMux
	svc      AccountService
	repos    RepoService
	quotas   QuotaService
	auditLog AuditService
	recorder *audit.Recorder
	tokens   *auth.TokenService
	driver   auth.Driver
	authz    *auth.Authorizer
	clientIP func(*http.Request) net.IP
	log      *slog.Logger
	peering  PeeringService
	// replication records pulls reported by peers (nil: refused).
	replication ReplicationService
	// scans serves vulnerability reports (nil: scanning is off).
	scans ScanService
	// scanPolicies keeps the accounts' security scan policies.
	scanPolicies ScanPolicyService
}

// Deps are what the management API is built from.
type Deps struct {
	Accounts AccountService
	Repos    RepoService
	Quotas   QuotaService
	Audit    AuditService
	Recorder *audit.Recorder
	Tokens   *auth.TokenService
	// Driver checks credentials; DriverName is shown by GET /keppel/v1.
	Driver     auth.Driver
	DriverName string
	Authz      *auth.Authorizer
	// ClientIP tells where a request came from (for RBAC match_cidr).
	ClientIP func(*http.Request) net.IP
	Log      *slog.Logger
	// Peering receives the passwords of peers (nil: this registry has
	// none, and refuses every delivery).
	Peering PeeringService
	// Replication records the pulls that peers' replicas report (nil:
	// refused).
	Replication ReplicationService
	// Scans serves vulnerability reports (nil: scanning is off).
	Scans ScanService
	// ScanPolicies keeps the accounts' security scan policies.
	ScanPolicies ScanPolicyService
}

// New builds the management API handler.
func New(d Deps) *Handler {
	h := &Handler{mux: http.NewServeMux(), svc: d.Accounts, repos: d.Repos, quotas: d.Quotas, auditLog: d.Audit,
		recorder: d.Recorder, tokens: d.Tokens, driver: d.Driver, authz: d.Authz, clientIP: d.ClientIP, log: d.Log,
		peering: d.Peering, replication: d.Replication, scans: d.Scans, scanPolicies: d.ScanPolicies}
	h.mux.HandleFunc("GET /keppel/v1", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"auth_driver": d.DriverName})
	})
	h.mux.HandleFunc("GET /keppel/v1/auth", h.getToken)
	h.mux.HandleFunc("POST /keppel/v1/auth", h.postToken)
	h.mux.HandleFunc("POST /keppel/v1/auth/peering", h.postPeering)
	h.mux.HandleFunc("POST /keppel/v1/replication/pulls", h.postReplicaPulls)
	h.mux.HandleFunc("GET /keppel/v1/accounts", h.listAccounts)
	h.mux.HandleFunc("GET /keppel/v1/accounts/{account}", h.getAccount)
	h.mux.HandleFunc("PUT /keppel/v1/accounts/{account}", h.putAccount)
	h.mux.HandleFunc("DELETE /keppel/v1/accounts/{account}", h.deleteAccount)
	h.mux.HandleFunc("POST /keppel/v1/accounts/{account}/sublease", h.postSublease)
	h.mux.HandleFunc("GET /keppel/v1/accounts/{account}/security_scan_policies", h.getScanPolicies)
	h.mux.HandleFunc("PUT /keppel/v1/accounts/{account}/security_scan_policies", h.putScanPolicies)
	h.mux.HandleFunc("GET /keppel/v1/accounts/{account}/repositories", h.listRepositories)
	// Repository names contain slashes, so everything below a repository
	// is routed by repositoryRoute.
	h.mux.HandleFunc("/keppel/v1/accounts/{account}/repositories/{rest...}", h.repositoryRoute)
	h.mux.HandleFunc("GET /keppel/v1/quotas/{tenant}", h.getQuota)
	h.mux.HandleFunc("PUT /keppel/v1/quotas/{tenant}", h.putQuota)
	h.mux.HandleFunc("GET /keppel/v1/audit", h.getAudit)
	h.mux.HandleFunc("GET /keppel/v1/users", h.listUsers)
	h.mux.HandleFunc("PUT /keppel/v1/users/{user}", h.putUser)
	h.mux.HandleFunc("DELETE /keppel/v1/users/{user}", h.deleteUser)
	h.mux.HandleFunc("PUT /keppel/v1/users/{user}/roles/{tenant}", h.putRole)
	h.mux.HandleFunc("DELETE /keppel/v1/users/{user}/roles/{tenant}", h.deleteRole)
	h.mux.HandleFunc("GET /keppel/v1/users/{user}/api_keys", h.listAPIKeys)
	h.mux.HandleFunc("POST /keppel/v1/users/{user}/api_keys", h.createAPIKey)
	h.mux.HandleFunc("DELETE /keppel/v1/users/{user}/api_keys/{id}", h.revokeAPIKey)
	h.mux.HandleFunc("GET /keppel/v1/tenants/{tenant}/members", h.listTenantMembers)
	h.mux.HandleFunc("/keppel/v1/", func(w http.ResponseWriter, r *http.Request) {
		errcode.Write(w, errcode.New(errcode.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return h
}

// repositoryRoute dispatches /keppel/v1/accounts/:a/repositories/<repo>[/_manifests[/:digest]|/_tags/:tag].
func (h *Handler) repositoryRoute(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	notFound := func() {
		errcode.Write(w, errcode.New(errcode.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	}
	methodNotAllowed := func(allowed string) {
		w.Header().Set("Allow", allowed)
		errcode.Write(w, errcode.New(errcode.MethodNotAllowed, "use %s", allowed))
	}
	if repo, ok := strings.CutSuffix(rest, "/_manifests"); ok {
		r.SetPathValue("repo", repo)
		if r.Method != http.MethodGet {
			methodNotAllowed("GET")
			return
		}
		h.listManifests(w, r)
		return
	}
	if i := strings.LastIndex(rest, "/_manifests/"); i > 0 {
		r.SetPathValue("repo", rest[:i])
		digest := rest[i+len("/_manifests/"):]
		for _, suffix := range []string{"/vulnerability_report", "/trivy_report"} {
			if d, ok := strings.CutSuffix(digest, suffix); ok {
				r.SetPathValue("digest", d)
				if r.Method != http.MethodGet {
					methodNotAllowed("GET")
					return
				}
				h.getVulnerabilityReport(w, r)
				return
			}
		}
		r.SetPathValue("digest", digest)
		if r.Method != http.MethodDelete {
			methodNotAllowed("DELETE")
			return
		}
		h.deleteManifest(w, r)
		return
	}
	if i := strings.LastIndex(rest, "/_tags/"); i > 0 {
		r.SetPathValue("repo", rest[:i])
		r.SetPathValue("tag", rest[i+len("/_tags/"):])
		if r.Method != http.MethodDelete {
			methodNotAllowed("DELETE")
			return
		}
		h.deleteTag(w, r)
		return
	}
	if strings.Contains(rest, "/_") || rest == "" {
		notFound()
		return
	}
	r.SetPathValue("repo", rest)
	if r.Method != http.MethodDelete {
		methodNotAllowed("DELETE")
		return
	}
	h.deleteRepository(w, r)
}

// record writes an audit event for the request's caller.
func (h *Handler) record(r *http.Request, id *auth.Identity, e models.AuditEvent) {
	if h.recorder == nil {
		return
	}
	if id != nil {
		e.Actor = id.Username
	}
	if ip := h.clientIP(r); ip != nil {
		e.RemoteAddr = ip.String()
	}
	h.recorder.Record(r.Context(), e)
}

// internalError logs err and answers with a generic error.
func (h *Handler) internalError(w http.ResponseWriter, msg string, err error) {
	h.log.Error(msg, "error", err)
	errcode.Write(w, err)
}

// RouteName classifies a /keppel/v1/ request for metrics labels.
func RouteName(r *http.Request) string {
	rest := strings.TrimPrefix(r.URL.Path, "/keppel/v1/")
	first, _, _ := strings.Cut(rest, "/")
	switch first {
	case "auth", "accounts", "quotas", "audit", "users", "tenants":
		return "keppel_v1_" + first
	default:
		return "keppel_v1_unknown"
	}
}

type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// getToken implements the token endpoint of the Docker token flow: basic
// credentials (or none, for anonymous access) are exchanged for a signed
// token carrying the granted subset of the requested scopes.
func (h *Handler) getToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	service := q.Get("service")
	if service != "" && !h.tokens.Serves(service) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "this registry issues tokens for service %q, not %q", h.tokens.Service(), service))
		return
	}
	h.issueToken(w, r, service, q["scope"])
}

// postToken accepts the OAuth2-style form post that some clients use
// (grant_type=password with username and password fields).
func (h *Handler) postToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "malformed form body: %s", err.Error()))
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "password":
		r.SetBasicAuth(r.PostForm.Get("username"), r.PostForm.Get("password"))
	case "":
	default:
		errcode.Write(w, errcode.New(errcode.BadRequest, "grant_type %q is not supported; use password, or GET with basic credentials", grant))
		return
	}
	service := r.Form.Get("service")
	if service != "" && !h.tokens.Serves(service) {
		errcode.Write(w, errcode.New(errcode.BadRequest, "this registry issues tokens for service %q, not %q", h.tokens.Service(), service))
		return
	}
	h.issueToken(w, r, service, r.Form["scope"])
}

// issueToken answers a token request for the service ("" for this
// registry's own).
func (h *Handler) issueToken(w http.ResponseWriter, r *http.Request, service string, scopeParams []string) {
	id, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	grants, err := h.authz.Grant(r.Context(), id, auth.ParseScopes(scopeParams), h.clientIP(r))
	if err != nil {
		h.log.Error("cannot decide token scopes", "error", err)
		errcode.Write(w, errcode.New(errcode.Unavailable, "cannot decide access right now"))
		return
	}
	if service == "" {
		service = h.tokens.Service()
	}
	token, issuedAt, err := h.tokens.IssueForService(service, id, grants)
	if err != nil {
		h.log.Error("cannot issue token", "error", err)
		errcode.Write(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{
		Token:       token,
		AccessToken: token,
		ExpiresIn:   int64(h.tokens.Lifetime() / time.Second),
		IssuedAt:    issuedAt.UTC().Format(time.RFC3339),
	})
}

// authenticate checks basic credentials, if any. It returns a nil identity
// for anonymous requests, and ok=false (after answering 401) for bad ones.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*auth.Identity, bool) {
	username, password, hasBasic := r.BasicAuth()
	if !hasBasic {
		if r.Header.Get("Authorization") != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="keppel"`)
			errcode.Write(w, errcode.New(errcode.Unauthorized, "the token endpoint accepts basic credentials only"))
			return nil, false
		}
		return nil, true
	}
	id, err := h.driver.Authenticate(r.Context(), username, password)
	if err != nil {
		if !errors.Is(err, auth.ErrBadCredentials) {
			h.log.Error("cannot check credentials", "error", err)
			errcode.Write(w, errcode.New(errcode.Unavailable, "cannot check credentials right now"))
			return nil, false
		}
		h.log.Info("login failed", "user", username, "remote", r.RemoteAddr)
		h.record(r, nil, models.AuditEvent{Action: "login.failure", Actor: username, Outcome: audit.Failure, Reason: "wrong username or password"})
		w.Header().Set("WWW-Authenticate", `Basic realm="keppel"`)
		errcode.Write(w, errcode.New(errcode.Unauthorized, "wrong username or password"))
		return nil, false
	}
	return &id, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		errcode.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}
