package oci

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"keppel/internal/api/middleware"
	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/registry"
)

// Handler serves /v2/.
type Handler struct {
	svc       *registry.Service
	tokens    *auth.TokenService
	authz     *auth.Authorizer
	clientIP  func(*http.Request) net.IP
	metrics   *middleware.Metrics
	log       *slog.Logger
	publicURL string
}

// New builds the /v2/ handler. publicURL is the registry's external URL
// (used for the token realm); authz lets anonymous pulls of public
// repositories through without a token round-trip.
func New(svc *registry.Service, tokens *auth.TokenService, authz *auth.Authorizer, clientIP func(*http.Request) net.IP,
	metrics *middleware.Metrics, log *slog.Logger, publicURL string) *Handler {
	return &Handler{svc: svc, tokens: tokens, authz: authz, clientIP: clientIP, metrics: metrics, log: log, publicURL: publicURL}
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
	if token, found := strings.CutPrefix(authz, "Bearer "); found {
		c, err := h.tokens.Verify(strings.TrimSpace(token))
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

	challenge := fmt.Sprintf(`Bearer realm="%s/keppel/v1/auth",service="%s"`, h.publicURL, h.tokens.Service())
	if len(required) > 0 {
		parts := make([]string, len(required))
		for i, sc := range required {
			parts[i] = sc.String()
		}
		challenge += fmt.Sprintf(`,scope="%s"`, strings.Join(parts, " "))
	}
	if claims != nil {
		challenge += `,error="insufficient_scope"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	// Insufficient scope is a 401 too (as in the Docker token spec), so that
	// clients fetch a token with the scopes the challenge names.
	if claims != nil {
		errcode.Write(w, errcode.New(errcode.Unauthorized, "the token does not grant the access this request needs"))
		return nil, false
	}
	errcode.Write(w, errcode.New(errcode.Unauthorized, "authentication required"))
	return nil, false
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
