package oci

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"keppel/internal/api/middleware"
	"keppel/internal/audit"
	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/registry"
)

// Handler serves /v2/.
type Handler struct {
	svc       *registry.Service
	tokens    *auth.TokenService
	authz     *auth.Authorizer
	clientIP  func(*http.Request) net.IP
	metrics   *middleware.Metrics
	recorder  *audit.Recorder
	log       *slog.Logger
	publicURL string
	// anycastURL and anycastHost: requests under the anycast host name are
	// told to fetch their tokens there ("" without anycast).
	anycastURL, anycastHost string
	scanning                bool
	limits                  RateLimits
	// redirectTTL > 0 sends blob GETs to a presigned storage URL.
	redirectTTL time.Duration
}

// Deps are what the /v2/ handler is built from.
type Deps struct {
	Service *registry.Service
	Tokens  *auth.TokenService
	// Authz lets anonymous pulls of public repositories through without a
	// token round-trip.
	Authz    *auth.Authorizer
	ClientIP func(*http.Request) net.IP
	Metrics  *middleware.Metrics
	// Recorder records pushes and deletes (nil: no audit events).
	Recorder *audit.Recorder
	Log      *slog.Logger
	// PublicURL is the registry's external URL (for the token realm).
	PublicURL string
	// AnycastURL is the federation's anycast URL ("" if none): the token
	// realm of requests under its host name.
	AnycastURL string
	// Scanning is on: manifest GETs carry X-Keppel-Vulnerability-Status.
	Scanning bool
	// Limits are the per-account rate limits (none if zero).
	Limits RateLimits
	// BlobRedirectTTL, if positive, answers blob GETs with a redirect to a
	// URL of the storage that is valid this long (where the storage driver
	// can sign one).
	BlobRedirectTTL time.Duration
}

// New builds the /v2/ handler.
func New(d Deps) *Handler {
	h := &Handler{svc: d.Service, tokens: d.Tokens, authz: d.Authz, clientIP: d.ClientIP, metrics: d.Metrics,
		recorder: d.Recorder, log: d.Log, publicURL: d.PublicURL, limits: d.Limits,
		redirectTTL: d.BlobRedirectTTL, anycastURL: d.AnycastURL, scanning: d.Scanning}
	if u, err := url.Parse(d.AnycastURL); err == nil && d.AnycastURL != "" {
		h.anycastHost = strings.ToLower(u.Host)
	}
	return h
}

// actor returns who makes the request, for audit events stored by the
// service (nil without a recorder: nothing is audited then).
func (h *Handler) actor(r *http.Request, claims *auth.Claims) *registry.Actor {
	if h.recorder == nil {
		return nil
	}
	a := &registry.Actor{}
	if claims != nil {
		a.Name = claims.Subject
	}
	if ip := h.clientIP(r); ip != nil {
		a.RemoteAddr = ip.String()
	}
	return a
}

// record writes the audit events of a request about a repository for the
// token's subject, in one transaction.
func (h *Handler) record(r *http.Request, claims *auth.Claims, repo registry.Repo, events ...models.AuditEvent) {
	if h.recorder == nil {
		return
	}
	ip := h.clientIP(r)
	for i := range events {
		e := &events[i]
		if claims != nil {
			e.Actor = claims.Subject
		}
		if ip != nil {
			e.RemoteAddr = ip.String()
		}
		e.AuthTenantID, e.AccountName = repo.Account.AuthTenantID, repo.Account.Name
	}
	h.recorder.Record(r.Context(), events...)
}

// RouteName classifies a /v2/ request for metrics labels.
func RouteName(r *http.Request) string {
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		return "v2_unknown"
	}
	return [...]string{"", "v2_base", "v2_catalog", "v2_manifest", "v2_blob", "v2_upload_start", "v2_upload", "v2_tags", "v2_referrers"}[rt.kind]
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		errcode.Write(w, errcode.New(errcode.NameInvalid, "no such API endpoint: %s", r.URL.Path))
		return
	}
	if rt.kind != routeBase && rt.kind != routeCatalog {
		// Validate the name before any challenge, so that clients get a
		// clear NAME_INVALID instead of an auth loop.
		if _, err := h.svc.ValidateName(rt.repo); err != nil {
			writeError(w, r, h.log, err)
			return
		}
	}

	switch rt.kind {
	case routeBase:
		h.serveBase(w, r)
	case routeCatalog:
		h.serveCatalog(w, r)
	case routeManifest:
		h.serveManifest(w, r, rt)
	case routeBlob:
		h.serveBlob(w, r, rt)
	case routeUploadStart:
		h.serveUploadStart(w, r, rt)
	case routeUpload:
		h.serveUpload(w, r, rt)
	case routeTags:
		h.serveTags(w, r, rt)
	case routeReferrers:
		h.serveReferrers(w, r, rt)
	}
}

func (h *Handler) serveBase(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	if _, ok := h.authorize(w, r); !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("{}"))
	}
}

// authorize checks that the request carries a valid token that grants all
// the given scopes. Otherwise it answers 401 with a challenge that names
// them, and returns ok=false.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, required ...auth.Scope) (*auth.Claims, bool) {
	var claims *auth.Claims
	authz := r.Header.Get("Authorization")
	if token, found := auth.BearerToken(authz); found {
		c, err := h.tokens.Verify(token)
		if err == nil {
			claims = c
		} else {
			h.log.Debug("rejected token", "error", err)
		}
	}
	if authz == "" && len(required) > 0 && h.anonymousAllowed(r, required) {
		return nil, true
	}
	missing := claims == nil
	if claims != nil {
		for _, sc := range required {
			for _, action := range sc.Actions {
				if !claims.Access.Allows(sc.Type, sc.Name, action) {
					missing = true
				}
			}
		}
	}
	if !missing {
		return claims, true
	}

	h.challenge(w, r, claims != nil, required...)
	return nil, false
}

// challenge answers 401 with a Bearer challenge naming the scopes the
// request needs. Insufficient scope is a 401 too (as in the Docker token
// spec), so that clients fetch a token with the scopes the challenge names.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, insufficientScope bool, required ...auth.Scope) {
	realm, service := h.publicURL, h.tokens.Service()
	if h.anycastHost != "" && strings.EqualFold(strings.TrimSuffix(r.Host, "."), h.anycastHost) {
		realm, service = h.anycastURL, h.anycastHost
	}
	challenge := fmt.Sprintf(`Bearer realm="%s/keppel/v1/auth",service="%s"`, realm, service)
	if len(required) > 0 {
		parts := make([]string, len(required))
		for i, sc := range required {
			parts[i] = sc.String()
		}
		challenge += fmt.Sprintf(`,scope="%s"`, strings.Join(parts, " "))
	}
	w.Header().Set("WWW-Authenticate", challenge)
	if insufficientScope {
		w.Header().Set("WWW-Authenticate", challenge+`,error="insufficient_scope"`)
		errcode.Write(w, errcode.New(errcode.Unauthorized, "the token does not grant the access this request needs"))
		return
	}
	errcode.Write(w, errcode.New(errcode.Unauthorized, "authentication required"))
}

// anonymousAllowed reports whether the account's policies let anonymous
// users do all of the required repository actions (anonymous_pull), so
// that public repositories work without a token.
func (h *Handler) anonymousAllowed(r *http.Request, required []auth.Scope) bool {
	for _, sc := range required {
		if sc.Type != "repository" {
			return false
		}
	}
	grants, err := h.authz.Grant(r.Context(), nil, required, h.clientIP(r))
	if err != nil {
		h.log.Warn("cannot evaluate anonymous access", "error", err)
		return false
	}
	for _, sc := range required {
		for _, action := range sc.Actions {
			if !grants.Allows(sc.Type, sc.Name, action) {
				return false
			}
		}
	}
	return true
}

func methodNotAllowed(w http.ResponseWriter, allowed string) {
	w.Header().Set("Allow", allowed)
	errcode.Write(w, &errcode.Error{Code: errcode.MethodNotAllowed})
}
