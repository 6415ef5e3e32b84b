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

	"keppel/internal/auth"
	"keppel/internal/errcode"
)

// Handler serves /keppel/v1/.
type Handler struct {
	mux      *http.ServeMux
	svc      AccountService
	tokens   *auth.TokenService
	driver   auth.Driver
	authz    *auth.Authorizer
	clientIP func(*http.Request) net.IP
	log      *slog.Logger
}

// New builds the management API handler. clientIP tells where a request
// came from (for RBAC policies with match_cidr).
func New(svc AccountService, tokens *auth.TokenService, driver auth.Driver, authz *auth.Authorizer, clientIP func(*http.Request) net.IP, log *slog.Logger) *Handler {
	h := &Handler{mux: http.NewServeMux(), svc: svc, tokens: tokens, driver: driver, authz: authz, clientIP: clientIP, log: log}
	h.mux.HandleFunc("GET /keppel/v1/auth", h.getToken)
	h.mux.HandleFunc("POST /keppel/v1/auth", h.postToken)
	h.mux.HandleFunc("GET /keppel/v1/accounts", h.listAccounts)
	h.mux.HandleFunc("GET /keppel/v1/accounts/{account}", h.getAccount)
	h.mux.HandleFunc("PUT /keppel/v1/accounts/{account}", h.putAccount)
	h.mux.HandleFunc("/keppel/v1/", func(w http.ResponseWriter, r *http.Request) {
		errcode.Write(w, errcode.New(errcode.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// RouteName classifies a /keppel/v1/ request for metrics labels.
func RouteName(r *http.Request) string {
	rest := strings.TrimPrefix(r.URL.Path, "/keppel/v1/")
	first, _, _ := strings.Cut(rest, "/")
	switch first {
	case "auth", "accounts":
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
	if service := q.Get("service"); service != "" && service != h.tokens.Service() {
		errcode.Write(w, errcode.New(errcode.BadRequest, "this registry issues tokens for service %q, not %q", h.tokens.Service(), service))
		return
	}
	h.issueToken(w, r, q["scope"])
}

// postToken accepts the OAuth2-style form post that some clients use
// (grant_type=password with username and password fields).
func (h *Handler) postToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "malformed form body: %s", err.Error()))
		return
	}
	if r.PostForm.Get("grant_type") == "password" {
		r.SetBasicAuth(r.PostForm.Get("username"), r.PostForm.Get("password"))
	}
	if service := r.Form.Get("service"); service != "" && service != h.tokens.Service() {
		errcode.Write(w, errcode.New(errcode.BadRequest, "this registry issues tokens for service %q, not %q", h.tokens.Service(), service))
		return
	}
	h.issueToken(w, r, r.Form["scope"])
}

func (h *Handler) issueToken(w http.ResponseWriter, r *http.Request, scopeParams []string) {
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
	token, issuedAt, err := h.tokens.IssueFor(id, grants)
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
		w.Header().Set("WWW-Authenticate", `Basic realm="keppel"`)
		errcode.Write(w, errcode.New(errcode.Unauthorized, "wrong username or password"))
		return nil, false
	}
	return &id, true
}

// requireAdmin accepts basic credentials or a bearer token of a server
// administrator.
func (h *Handler) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	if token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		claims, err := h.tokens.Verify(strings.TrimSpace(token))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keppel"`)
			errcode.Write(w, errcode.New(errcode.Unauthorized, "invalid or expired token"))
			return false
		}
		if !claims.Admin {
			errcode.Write(w, errcode.New(errcode.Denied, "this endpoint requires a server administrator"))
			return false
		}
		return true
	}
	id, ok := h.authenticate(w, r)
	if !ok {
		return false
	}
	if id == nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="keppel"`)
		errcode.Write(w, errcode.New(errcode.Unauthorized, "authentication required"))
		return false
	}
	if !id.IsAdmin {
		errcode.Write(w, errcode.New(errcode.Denied, "this endpoint requires a server administrator"))
		return false
	}
	return true
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
