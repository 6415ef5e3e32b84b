package peering_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"keppel/internal/api/keppelv1"
	"keppel/internal/auth"
	"keppel/internal/auth/builtin"
	"keppel/internal/db"
	"keppel/internal/db/sqlite"
	"keppel/internal/models"
	"keppel/internal/peering"
	"keppel/internal/secretbox"
)

// rotation is the rotation interval of the test registries.
const rotation = time.Hour

// clock is the settable time of both test registries.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// registry is a registry cut down to what peering involves: the real token
// endpoint and peering endpoint of the management API, the real credential
// chain (peers first, then the built-in users), a SQLite store, and its
// peering Service, on a loopback port.
type registry struct {
	host   string
	url    string
	dbPath string
	store  db.Store
	svc    *peering.Service
	tokens *auth.TokenService
	box    *secretbox.Box
	clk    *clock
	peers  []string
	// down makes the registry answer every request with 503.
	down atomic.Bool
	// deliveries counts the POSTs of passwords it got, logins the token
	// requests.
	deliveries, logins atomic.Int32
}

// listen opens a listener on a random loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// newPair starts two registries that are each other's peers (each also
// lists itself, as an operator sharing one list would).
func newPair(t *testing.T, clk *clock) (a, b *registry) {
	t.Helper()
	lnA, lnB := listen(t), listen(t)
	urlA, urlB := "http://"+lnA.Addr().String(), "http://"+lnB.Addr().String()
	a = startRegistry(t, lnA, clk, urlA, urlB)
	b = startRegistry(t, lnB, clk, urlB, urlA)
	return a, b
}

// startRegistry serves a registry on ln with the given peers. Its store
// has the account "library" of tenant "team-a" and the user "alice".
func startRegistry(t *testing.T, ln net.Listener, clk *clock, peerURLs ...string) *registry {
	t.Helper()
	r := &registry{host: ln.Addr().String(), url: "http://" + ln.Addr().String(), clk: clk, peers: peerURLs,
		dbPath: filepath.Join(t.TempDir(), "keppel.db")}
	r.store = openStore(t, r.dbPath)
	ctx := t.Context()
	if err := r.store.CreateAccount(ctx, models.Account{Name: "library", AuthTenantID: "team-a", CreatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := builtin.SetPassword(ctx, r.store, "alice", "alice-password", false, clk.Now()); err != nil {
		t.Fatal(err)
	}
	r.box = newBox(t)
	r.svc = r.newService(t, r.store)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r.tokens = auth.NewTokenService(r.host, time.Hour, key, nil, clk.Now)
	authz := &auth.Authorizer{Accounts: func(ctx context.Context, name string) (models.Account, error) {
		a, err := r.store.GetAccount(ctx, name)
		if errors.Is(err, db.ErrNotFound) {
			return a, auth.ErrAccountNotFound
		}
		return a, err
	}}
	api := keppelv1.New(keppelv1.Deps{
		Tokens: r.tokens, Driver: auth.Chain{r.svc, builtin.New(r.store)}, DriverName: "builtin", Authz: authz,
		ClientIP: func(*http.Request) net.IP { return nil }, Log: discard(), Peering: r.svc,
	})
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		switch {
		case req.Method == http.MethodPost && req.URL.Path == peering.DeliveryPath:
			r.deliveries.Add(1)
		case req.URL.Path == "/keppel/v1/auth":
			r.logins.Add(1)
		}
		api.ServeHTTP(w, req)
	}))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	return r
}

func openStore(t *testing.T, path string) db.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newService returns another Service of the registry on the store, as
// another process of it would have.
func (r *registry) newService(t *testing.T, store db.Store) *peering.Service {
	t.Helper()
	svc, err := peering.New(store, r.host, r.peers, rotation, r.box, peering.WithClock(r.clk.Now),
		peering.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}), peering.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// newBox returns a secrets box with a random key.
func newBox(t *testing.T) *secretbox.Box {
	t.Helper()
	key := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// login asks the registry's token endpoint for a token with basic
// credentials; it returns the status and, for 200, the token's claims.
func (r *registry) login(t *testing.T, user, password string, scopes ...string) (int, *auth.Claims) {
	t.Helper()
	q := url.Values{"service": {r.host}, "scope": scopes}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url+"/keppel/v1/auth?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	claims, err := r.tokens.Verify(body.Token)
	if err != nil {
		t.Fatalf("the registry issued a token it does not verify: %v", err)
	}
	return resp.StatusCode, claims
}

// wantLogin checks that the credentials get a token (or are refused).
func (r *registry) wantLogin(t *testing.T, what, user, password string, accepted bool) {
	t.Helper()
	status, _ := r.login(t, user, password)
	if accepted && status != http.StatusOK {
		t.Fatalf("%s: login at %s answered %d, want 200", what, r.host, status)
	}
	if !accepted && status != http.StatusUnauthorized {
		t.Fatalf("%s: login at %s answered %d, want 401", what, r.host, status)
	}
}

// post sends a raw body to the registry's peering endpoint; it returns the
// status and the error code of the body ("" if none).
func (r *registry) post(t *testing.T, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.url+peering.DeliveryPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	code := ""
	if len(env.Errors) > 0 {
		code = env.Errors[0].Code
	}
	return resp.StatusCode, code
}

// credentials returns what r logs in with at the peer.
func (r *registry) credentials(t *testing.T, peer *registry) (string, string) {
	t.Helper()
	user, password, err := r.svc.Credentials(t.Context(), peer.host)
	if err != nil {
		t.Fatalf("%s has no credentials for %s: %v", r.host, peer.host, err)
	}
	if user != peering.UsernamePrefix+r.host || password == "" {
		t.Fatalf("credentials of %s at %s: %q, %q", r.host, peer.host, user, password)
	}
	return user, password
}

// rotate runs the rotation job of r and checks its result.
func (r *registry) rotate(t *testing.T, wantWork, wantErr bool) {
	t.Helper()
	didWork, err := r.svc.RotateDue(t.Context())
	if didWork != wantWork || (err != nil) != wantErr {
		t.Fatalf("RotateDue at %s = %v, %v; want work %v, error %v", r.host, didWork, err, wantWork, wantErr)
	}
}
