// Package hostroute routes requests by their host name before the APIs see
// them: account subdomains (<account>.<public host>/v2/<repo>/… is
// /v2/<account>/<repo>/…, as a registry mirror of dockerd needs it) and
// the anycast host name, under which a read-only request for an account
// that another registry of the federation holds is forwarded there.
package hostroute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"keppel/internal/auth"
	"keppel/internal/errcode"
	"keppel/internal/oci"
)

// ForwardedHeader marks a request that a registry forwarded under the
// anycast host name; it is never forwarded again.
const ForwardedHeader = "X-Keppel-Forwarded-By"

// Config configures the routing.
type Config struct {
	// PublicHost is the host (with port) of the registry's public URL.
	PublicHost string
	// AccountSubdomains turns on <account>.<PublicHost>.
	AccountSubdomains bool
	// AnycastHost is the anycast host name (with port, if any; "": none).
	AnycastHost string
	// IsLocal reports whether the account exists at this registry.
	IsLocal func(ctx context.Context, account string) (bool, error)
	// Holder returns the base URL of the peer registry that holds the
	// primary account of the name (ok=false if none does).
	Holder func(ctx context.Context, account string) (peerURL string, ok bool, err error)
	// Transport carries forwarded requests (http.DefaultTransport if nil).
	Transport http.RoundTripper
	Log       *slog.Logger
}

// Wrap returns next behind the host routing.
func Wrap(next http.Handler, cfg Config) http.Handler {
	if !cfg.AccountSubdomains && cfg.AnycastHost == "" {
		return next
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	return &router{next: next, cfg: cfg}
}

type router struct {
	next http.Handler
	cfg  Config
}

// ServeHTTP implements http.Handler.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(strings.TrimSuffix(r.Host, "."))
	if rt.cfg.AnycastHost != "" && host == rt.cfg.AnycastHost {
		rt.serveAnycast(w, r)
		return
	}
	if rt.cfg.AccountSubdomains {
		if account, ok := strings.CutSuffix(host, "."+rt.cfg.PublicHost); ok && oci.ValidAccountName(account) {
			rt.serveSubdomain(w, r, account)
			return
		}
	}
	rt.next.ServeHTTP(w, r)
}

// serveSubdomain maps /v2/<repo>/… to /v2/<account>/<repo>/…, and the
// account back out of the Location and Link headers of the answer.
func (rt *router) serveSubdomain(w http.ResponseWriter, r *http.Request, account string) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok || rest == "" || rest == "_catalog" {
		rt.next.ServeHTTP(w, r)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/v2/" + account + "/" + rest
	r2.URL.RawPath = ""
	rt.next.ServeHTTP(&unprefixWriter{ResponseWriter: w, prefix: "/v2/" + account + "/"}, r2)
}

// unprefixWriter removes the account from the paths in the Location and
// Link headers, so that clients of the subdomain stay on it.
type unprefixWriter struct {
	http.ResponseWriter
	prefix      string
	wroteHeader bool
}

func (u *unprefixWriter) fixHeaders() {
	if u.wroteHeader {
		return
	}
	u.wroteHeader = true
	h := u.ResponseWriter.Header()
	for _, k := range []string{"Location", "Link"} {
		if v := h.Get(k); v != "" {
			h.Set(k, strings.Replace(v, u.prefix, "/v2/", 1))
		}
	}
}

// WriteHeader implements http.ResponseWriter.
func (u *unprefixWriter) WriteHeader(status int) {
	u.fixHeaders()
	u.ResponseWriter.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (u *unprefixWriter) Write(p []byte) (int, error) {
	u.fixHeaders()
	return u.ResponseWriter.Write(p)
}

// ReadFrom keeps the underlying writer's fast path (sendfile).
func (u *unprefixWriter) ReadFrom(r io.Reader) (int64, error) {
	u.fixHeaders()
	return io.Copy(u.ResponseWriter, r)
}

// Unwrap gives http.ResponseController the underlying writer.
func (u *unprefixWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// serveAnycast serves a request under the anycast host name: here if the
// account is here (or the request was forwarded already), else at the
// registry that holds it, for reads only.
func (rt *router) serveAnycast(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(ForwardedHeader) != "" {
		rt.next.ServeHTTP(w, r)
		return
	}
	account := anycastAccount(r)
	if account == "" {
		rt.next.ServeHTTP(w, r)
		return
	}
	local, err := rt.cfg.IsLocal(r.Context(), account)
	if err != nil {
		rt.cfg.Log.Error("cannot look up an account for anycast", "account", account, "error", err)
		errcode.Write(w, errcode.New(errcode.Unavailable, "cannot route the request right now"))
		return
	}
	if local {
		rt.next.ServeHTTP(w, r)
		return
	}
	peerURL, ok, err := rt.cfg.Holder(r.Context(), account)
	if err != nil {
		rt.cfg.Log.Error("cannot find the registry of an account for anycast", "account", account, "error", err)
		errcode.Write(w, errcode.New(errcode.Unavailable, "cannot route the request right now"))
		return
	}
	if !ok {
		rt.next.ServeHTTP(w, r) // answers as for any unknown account
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		errcode.Write(w, errcode.New(errcode.Unsupported, "the anycast host name %s serves reads only; send %s to the registry of account %s", rt.cfg.AnycastHost, r.Method, account))
		return
	}
	rt.forward(w, r, peerURL)
}

// anycastAccount returns the account that an anycast request is about
// (the first path element of a /v2/ repository, or of the repository
// scopes of a token request, if all name the same account), or "".
func anycastAccount(r *http.Request) string {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v2/"); ok {
		account, _, found := strings.Cut(rest, "/")
		if !found || account == "_catalog" {
			return ""
		}
		return account
	}
	if r.URL.Path != "/keppel/v1/auth" {
		return ""
	}
	account := ""
	for _, sc := range auth.ParseScopes(r.URL.Query()["scope"]) {
		if sc.Type != "repository" {
			continue
		}
		a, _, _ := strings.Cut(sc.Name, "/")
		if account != "" && a != account {
			return "" // several accounts: this registry grants what it can
		}
		account = a
	}
	return account
}

// forward sends the request to the peer under the same host name and
// copies the answer back.
func (rt *router) forward(w http.ResponseWriter, r *http.Request, peerURL string) {
	target, err := url.Parse(peerURL)
	if err != nil {
		errcode.Write(w, fmt.Errorf("peer URL %q: %w", peerURL, err))
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = r.Host // the peer recognizes the anycast host name
			pr.Out.Header.Set(ForwardedHeader, rt.cfg.PublicHost)
		},
		Transport: rt.cfg.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if !errors.Is(err, context.Canceled) {
				rt.cfg.Log.Warn("forwarding an anycast request failed", "peer", peerURL, "path", r.URL.Path, "error", err)
			}
			errcode.Write(w, errcode.New(errcode.UpstreamFailed, "the registry that holds the account cannot be reached"))
		},
	}
	proxy.ServeHTTP(w, r)
}
