// Package test provides helpers for tests: an in-process registry server
// with the real token flow on a loopback port, and a small HTTP client that
// fetches tokens for raw API requests.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"keppel/internal/config"
	"keppel/internal/db"
	"keppel/internal/peering"
	"keppel/internal/server"
)

// AdminPassword is the admin password of test servers.
const AdminPassword = "test-admin-password"

// Options configure a test server.
type Options struct {
	// StorageDriver is "filesystem" (default) or "memory".
	StorageDriver string
	// PostgresURL selects PostgreSQL instead of SQLite.
	PostgresURL string
	// Accounts are created at start, as name → auth tenant.
	Accounts map[string]string
	// TrustedProxies are the reverse proxies (CIDRs or addresses) whose
	// X-Forwarded-For headers the server believes
	// (KEPPEL_API_TRUSTED_PROXIES); none by default.
	TrustedProxies []string
	// AuditWebhookURL receives every audit event (KEPPEL_AUDIT_WEBHOOK_URL).
	AuditWebhookURL string
	// ConfigFile is a YAML configuration file for config.Load, for settings
	// that have no environment variable (e.g. auth.oidc.role_mappings). The
	// environment that NewServer builds wins over it.
	ConfigFile string
	// Env sets further KEPPEL_* variables (e.g. KEPPEL_AUTH_DRIVER); they
	// win over NewServer's own.
	Env map[string]string
	// Listener, if set, is where the server listens (a loopback address);
	// by default a new one on 127.0.0.1:0. With it the URL is known before
	// the server is built, e.g. for servers that are each other's peers.
	Listener net.Listener
}

// Server is a running in-process registry.
type Server struct {
	URL     string
	Host    string
	DataDir string
	Handler http.Handler
	srv     *server.Server
	http    *httptest.Server
	// postgresURL is the database of a server on PostgreSQL.
	postgresURL string
}

// NewServer starts a registry for the test on a random loopback port and
// stops it when the test ends. Unless Options.Accounts says otherwise, the
// account "test" (tenant "tenant1") exists.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	ln := opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := t.TempDir()
	env := map[string]string{
		"KEPPEL_DATA_DIR":       dataDir,
		"KEPPEL_API_PUBLIC_URL": "http://" + ln.Addr().String(),
		"KEPPEL_ADMIN_PASSWORD": AdminPassword,
		"KEPPEL_STORAGE_DRIVER": opts.StorageDriver,
		"KEPPEL_DB_URL":         opts.PostgresURL,
	}
	if len(opts.TrustedProxies) > 0 {
		env["KEPPEL_API_TRUSTED_PROXIES"] = strings.Join(opts.TrustedProxies, ",")
	}
	if opts.AuditWebhookURL != "" {
		env["KEPPEL_AUDIT_WEBHOOK_URL"] = opts.AuditWebhookURL
	}
	if env["KEPPEL_STORAGE_DRIVER"] == "" {
		env["KEPPEL_STORAGE_DRIVER"] = "filesystem"
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	cfg, err := config.Load(opts.ConfigFile, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := server.Build(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	s := &Server{URL: hs.URL, Host: ln.Addr().String(), DataDir: dataDir, Handler: srv.Handler(), srv: srv, http: hs,
		postgresURL: cfg.Database.URL}
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})

	accounts := opts.Accounts
	if accounts == nil {
		accounts = map[string]string{"test": "tenant1"}
	}
	for name, tenant := range accounts {
		s.CreateAccount(t, name, tenant)
	}
	return s
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// FlushPulls writes the pulls the server remembers in memory to its
// metadata store (the server does so every few seconds by itself).
func (s *Server) FlushPulls(t testing.TB) {
	t.Helper()
	if err := s.srv.FlushPulls(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Store returns the server's metadata store.
func (s *Server) Store() db.Store { return s.srv.Store() }

// Peering returns the server's exchange of passwords with its peers (nil
// without KEPPEL_PEERS).
func (s *Server) Peering() *peering.Service { return s.srv.Peering() }

// CreateAccount creates an account through the management API as admin.
func (s *Server) CreateAccount(t testing.TB, name, tenant string) {
	t.Helper()
	body := fmt.Sprintf(`{"account":{"auth_tenant_id":%q}}`, tenant)
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/keppel/v1/accounts/"+name, strings.NewReader(body))
	req.SetBasicAuth("admin", AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("creating account %s: %d %s", name, resp.StatusCode, b)
	}
}

// Token fetches a token for the scopes with the admin's credentials.
func (s *Server) Token(t testing.TB, scopes ...string) string {
	t.Helper()
	return s.TokenAs(t, "admin", AdminPassword, scopes...)
}

// TokenAs fetches a token for the scopes with the given credentials.
func (s *Server) TokenAs(t testing.TB, user, password string, scopes ...string) string {
	t.Helper()
	q := url.Values{"service": {s.Host}, "scope": scopes}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/keppel/v1/auth?"+q.Encode(), nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token request: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Token
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrorCode returns the code of the first error in an OCI error envelope.
func (r Response) ErrorCode() string {
	var env struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(r.Body, &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Code
}

// Do sends a request with the token (if not empty) and reads the response.
func (s *Server) Do(t testing.TB, method, path, token string, header http.Header, body io.Reader) Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}
