package peering_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"keppel/internal/auth"
	"keppel/internal/auth/builtin"
	"keppel/internal/peering"
)

// TestExchangeAndRotation follows the passwords between two registries
// over real HTTP: A issues one to B, B checks it by logging in at A and
// keeps it, B logs in at A with it as a peer; after one more rotation the
// old password still works, after a second one it does not.
func TestExchangeAndRotation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clk := newClock()
	a, b := newPair(t, clk)

	if u, ok := b.svc.PeerURL(a.host); !ok || u != a.url {
		t.Fatalf("PeerURL(%s) = %q, %v", a.host, u, ok)
	}
	if _, ok := b.svc.PeerURL(b.host); ok {
		t.Fatal("a registry is its own peer")
	}
	if _, _, err := b.svc.Credentials(ctx, a.host); !errors.Is(err, peering.ErrNoCredentials) {
		t.Fatalf("credentials before any rotation: %v", err)
	}
	if _, _, err := b.svc.Credentials(ctx, "127.0.0.1:1"); !errors.Is(err, peering.ErrUnknownPeer) {
		t.Fatalf("credentials of an unknown peer: %v", err)
	}

	a.rotate(t, true, false)
	if n, m := b.deliveries.Load(), a.logins.Load(); n != 1 || m != 1 {
		t.Fatalf("after the first rotation B got %d deliveries and A %d logins, want 1 and 1 (B tries the password at A)", n, m)
	}
	a.rotate(t, false, false) // nothing due
	if n := b.deliveries.Load(); n != 1 {
		t.Fatalf("a rotation that was not due delivered again (%d deliveries)", n)
	}
	peer, err := a.store.GetPeer(ctx, b.host)
	if err != nil || !peer.OurPasswordDelivered {
		t.Fatalf("A's row of B after the delivery: %+v, %v", peer, err)
	}

	user, p1 := b.credentials(t, a)
	status, claims := a.login(t, user, p1, "repository:library/app:pull,push,delete", "registry:catalog:*",
		"keppel_account:library:view,change", "repository:nosuch/app:pull")
	if status != http.StatusOK {
		t.Fatalf("B's login at A: %d", status)
	}
	if want := (auth.Grants{auth.RepositoryScope("library/app", auth.ActionPull)}); !reflect.DeepEqual(claims.Access, want) {
		t.Errorf("B's token at A grants %v, want %v", claims.Access, want)
	}
	if !claims.Peer || claims.Subject != user {
		t.Errorf("B's token at A: subject %q, peer %v", claims.Subject, claims.Peer)
	}

	// The other direction is independent.
	if _, _, err := a.svc.Credentials(ctx, b.host); !errors.Is(err, peering.ErrNoCredentials) {
		t.Fatalf("A has credentials for B before B rotated: %v", err)
	}
	b.rotate(t, true, false)
	userA, passwordA := a.credentials(t, b)
	b.wantLogin(t, "A at B", userA, passwordA, true)
	if passwordA == p1 {
		t.Fatal("both registries issued the same password")
	}
	a.wantLogin(t, "A's password for B used at A", userA, passwordA, false)

	clk.Advance(rotation + time.Second)
	a.rotate(t, true, false)
	_, p2 := b.credentials(t, a)
	if p2 == p1 {
		t.Fatal("the rotation did not change the password")
	}
	a.wantLogin(t, "the password before the last rotation", user, p1, true)
	a.wantLogin(t, "the current password", user, p2, true)

	clk.Advance(rotation + time.Second)
	a.rotate(t, true, false)
	_, p3 := b.credentials(t, a)
	a.wantLogin(t, "the password before two rotations", user, p1, false)
	a.wantLogin(t, "the password before the last rotation", user, p2, true)
	a.wantLogin(t, "the current password", user, p3, true)
	if n := b.deliveries.Load(); n != 3 {
		t.Errorf("B got %d deliveries after three rotations", n)
	}
	// Other users still log in through the chain.
	a.wantLogin(t, "a built-in user", "alice", "alice-password", true)
}

// TestForgedDeliveries sends passwords to B that A did not issue, or for
// other names: each is refused and changes nothing.
func TestForgedDeliveries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b := newPair(t, newClock())
	a.rotate(t, true, false)
	_, p1 := b.credentials(t, a)
	logins := a.logins.Load()

	delivery := func(peer, user, password string) string {
		return fmt.Sprintf(`{"peer":%q,"username":%q,"password":%q}`, peer, user, password)
	}
	ours := peering.UsernamePrefix + b.host
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
		// wantCallback says whether B tries the password at A.
		wantCallback bool
	}{
		{"a password A never issued", delivery(a.host, ours, "forged-password"), http.StatusForbidden, "DENIED", true},
		{"an unknown peer", delivery("127.0.0.1:1", ours, p1), http.StatusForbidden, "DENIED", false},
		{"this registry as the peer", delivery(b.host, ours, p1), http.StatusForbidden, "DENIED", false},
		{"another user name", delivery(a.host, peering.UsernamePrefix+"elsewhere.example.com", p1), http.StatusBadRequest, "BAD_REQUEST", false},
		{"the issuer's user name", delivery(a.host, peering.UsernamePrefix+a.host, p1), http.StatusBadRequest, "BAD_REQUEST", false},
		{"no password", delivery(a.host, ours, ""), http.StatusBadRequest, "BAD_REQUEST", false},
		{"an unknown field", `{"peer":"x","username":"y","password":"z","url":"http://127.0.0.1:1"}`, http.StatusBadRequest, "BAD_REQUEST", false},
		{"not JSON", `peer=x`, http.StatusBadRequest, "BAD_REQUEST", false},
		{"a peer name that is no host name", delivery(strings.Repeat("x", 300), ours, p1), http.StatusBadRequest, "BAD_REQUEST", false},
	}
	for _, tc := range tests {
		before := a.logins.Load()
		status, code := b.post(t, tc.body)
		if status != tc.wantStatus || code != tc.wantCode {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, code, tc.wantStatus, tc.wantCode)
		}
		if called := a.logins.Load() > before; called != tc.wantCallback {
			t.Errorf("%s: B tried the password at A: %v, want %v", tc.name, called, tc.wantCallback)
		}
		if _, p, err := b.svc.Credentials(ctx, a.host); err != nil || p != p1 {
			t.Fatalf("%s changed B's credentials for A: %v", tc.name, err)
		}
	}
	if a.logins.Load() == logins {
		t.Fatal("B never asked A")
	}
	a.wantLogin(t, "the genuine password after the forgeries", peering.UsernamePrefix+b.host, p1, true)
	if err := b.svc.Receive(ctx, "127.0.0.1:1", peering.UsernamePrefix+b.host, p1); !errors.Is(err, peering.ErrUnknownPeer) {
		t.Errorf("Receive from an unknown peer: %v", err)
	}
	if err := b.svc.Receive(ctx, a.host, peering.UsernamePrefix+b.host, "forged"); !errors.Is(err, peering.ErrPasswordRejected) {
		t.Errorf("Receive of a forged password: %v", err)
	}
	a.down.Store(true)
	if err := b.svc.Receive(ctx, a.host, peering.UsernamePrefix+b.host, "whatever"); !errors.Is(err, peering.ErrPeerUnavailable) {
		t.Errorf("Receive while the peer is down: %v", err)
	}
	if status, code := b.post(t, delivery(a.host, ours, "whatever")); status != http.StatusServiceUnavailable || code != "UNAVAILABLE" {
		t.Errorf("a delivery while the peer is down: %d %s", status, code)
	}
}

// TestAuthenticate checks the credential driver: peer names are the
// Service's alone, other names pass on to the next driver.
func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b := newPair(t, newClock())
	user := peering.UsernamePrefix + b.host

	// Before any password was issued, the peer's name is refused.
	if _, err := a.svc.Authenticate(ctx, user, "anything"); !errors.Is(err, auth.ErrRefused) {
		t.Fatalf("a peer's name before the first rotation: %v", err)
	}
	a.rotate(t, true, false)
	_, password := b.credentials(t, a)

	id, err := a.svc.Authenticate(ctx, user, password)
	if err != nil || !reflect.DeepEqual(id, auth.Identity{Username: user, Peer: true}) {
		t.Fatalf("the genuine password: %+v, %v", id, err)
	}
	// As basic credentials split it, at the colon before the port.
	host, port, _ := strings.Cut(b.host, ":")
	if id, err := a.svc.Authenticate(ctx, peering.UsernamePrefix+host, port+":"+password); err != nil || id.Username != user || !id.Peer {
		t.Fatalf("the peer's name split before the port: %+v, %v", id, err)
	}
	for _, tc := range []struct {
		name, user, password string
		refused              bool
	}{
		{"a wrong password", user, "wrong", true},
		{"an empty password", user, "", true},
		{"the password with a suffix", user, password + "x", true},
		{"a password with a colon", user, "8080:" + password, true},
		{"the name split before the port, with a wrong password", peering.UsernamePrefix + host, port + ":wrong", true},
		{"an unknown peer", peering.UsernamePrefix + "127.0.0.1:1", password, false},
		{"this registry's own name", peering.UsernamePrefix + a.host, password, false},
		{"an ordinary user", "alice", password, false},
	} {
		_, err := a.svc.Authenticate(ctx, tc.user, tc.password)
		if !errors.Is(err, auth.ErrBadCredentials) || errors.Is(err, auth.ErrRefused) != tc.refused {
			t.Errorf("%s: %v (want bad credentials, refused=%v)", tc.name, err, tc.refused)
		}
	}

	// A built-in user with a peer's name cannot log in: the peering
	// driver comes first and refuses.
	if err := builtin.SetPassword(ctx, a.store, user, "local-password", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	a.wantLogin(t, "a built-in user with a peer's name", user, "local-password", false)
	a.wantLogin(t, "the peer", user, password, true)
}

// TestDeliveryFailure makes B unreachable while A rotates: B keeps logging
// in with the password it has, A tries again soon with new passwords, and
// once B is back the exchange goes on.
func TestDeliveryFailure(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clk := newClock()
	a, b := newPair(t, clk)
	a.rotate(t, true, false)
	user, p1 := b.credentials(t, a)

	b.down.Store(true)
	clk.Advance(rotation + time.Second)
	a.rotate(t, true, true)
	peer, err := a.store.GetPeer(ctx, b.host)
	if err != nil || peer.OurPasswordDelivered {
		t.Fatalf("A's row of B after a failed delivery: %+v, %v", peer, err)
	}
	a.wantLogin(t, "the delivered password after a failed delivery", user, p1, true)
	a.rotate(t, false, false) // not again at once

	// The undelivered password is replaced after the poll interval; the
	// delivered one stays valid however often that happens.
	for range 3 {
		clk.Advance(a.svc.PollInterval() + time.Second)
		a.rotate(t, true, true)
		a.wantLogin(t, "the delivered password while B is down", user, p1, true)
	}
	clk.Advance(rotation + time.Second)
	a.rotate(t, true, true)
	a.wantLogin(t, "the delivered password after a rotation interval down", user, p1, true)
	if _, p, err := b.svc.Credentials(ctx, a.host); err != nil || p != p1 {
		t.Fatalf("B's credentials changed while it was down: %v", err)
	}

	b.down.Store(false)
	clk.Advance(a.svc.PollInterval() + time.Second)
	a.rotate(t, true, false)
	_, p2 := b.credentials(t, a)
	if p2 == p1 {
		t.Fatal("B did not get a new password once it was back")
	}
	a.wantLogin(t, "the password held through the outage", user, p1, true)
	a.wantLogin(t, "the new password", user, p2, true)
	clk.Advance(rotation + time.Second)
	a.rotate(t, true, false)
	a.wantLogin(t, "the password held through the outage, one rotation later", user, p1, false)
	a.wantLogin(t, "the password before", user, p2, true)
}

// TestOnePeerFailing checks that an unreachable peer does not keep the
// others from getting their passwords.
func TestOnePeerFailing(t *testing.T) {
	t.Parallel()
	clk := newClock()
	dead := listen(t)
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	lnA, lnB := listen(t), listen(t)
	urlA, urlB := "http://"+lnA.Addr().String(), "http://"+lnB.Addr().String()
	a := startRegistry(t, lnA, clk, deadURL, urlB)
	b := startRegistry(t, lnB, clk, urlA)

	didWork, err := a.svc.RotateDue(t.Context())
	if !didWork || err == nil || !strings.Contains(err.Error(), dead.Addr().String()) || strings.Contains(err.Error(), b.host) {
		t.Fatalf("RotateDue with one dead peer: %v, %v", didWork, err)
	}
	user, password := b.credentials(t, a)
	a.wantLogin(t, "the peer that was reachable", user, password, true)
}

// TestConcurrentRotation runs the rotation in two processes of A at once
// (two Services on two connections to one database): each due password is
// issued and delivered once.
func TestConcurrentRotation(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a, b := newPair(t, clk)
	other := a.newService(t, openStore(t, a.dbPath))
	const rounds = 5
	for round := range rounds {
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results [2]bool
			errs    [2]error
		)
		for i, svc := range []*peering.Service{a.svc, other} {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				results[i], errs[i] = svc.RotateDue(ctx)
			})
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || results[0] == results[1] {
			t.Fatalf("round %d: RotateDue = %v, %v / %v, %v; want exactly one to rotate", round, results[0], errs[0], results[1], errs[1])
		}
		if n := b.deliveries.Load(); n != int32(round+1) {
			t.Fatalf("round %d: B got %d deliveries, want %d", round, n, round+1)
		}
		user, password := b.credentials(t, a)
		a.wantLogin(t, fmt.Sprintf("round %d", round), user, password, true)
		clk.Advance(rotation + time.Second)
	}
}

// TestNew checks the construction from the configured URLs.
func TestNew(t *testing.T) {
	t.Parallel()
	store := openStore(t, filepath.Join(t.TempDir(), "keppel.db"))
	box := newBox(t)
	svc, err := peering.New(store, "Keppel.EU-DE-1.example.com", []string{
		"https://keppel.eu-de-1.example.com", "https://KEPPEL.eu-de-2.example.com/", "http://127.0.0.3:8080",
	}, time.Hour, box)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"keppel.eu-de-2.example.com": "https://keppel.eu-de-2.example.com",
		"Keppel.EU-DE-2.example.com": "https://keppel.eu-de-2.example.com",
		"127.0.0.3:8080":             "http://127.0.0.3:8080",
		"keppel.eu-de-1.example.com": "",
		"127.0.0.3":                  "",
	} {
		if got, ok := svc.PeerURL(host); got != want || ok != (want != "") {
			t.Errorf("PeerURL(%s) = %q, %v; want %q", host, got, ok, want)
		}
	}
	if d := svc.PollInterval(); d != time.Minute {
		t.Errorf("PollInterval with a rotation of 1h = %s, want 1m", d)
	}
	for _, bad := range [][]string{{"keppel.example.com"}, {"ftp://a.example.com"}, {"https://a.example.com/path"},
		{"https://a.example.com", "http://A.example.com"}} {
		if _, err := peering.New(store, "self", bad, time.Hour, box); err == nil {
			t.Errorf("New accepted the peers %q", bad)
		}
	}
	if _, err := peering.New(store, "", nil, time.Hour, box); err == nil {
		t.Error("New accepted an empty host name")
	}
	if _, err := peering.New(store, "self", nil, 0, box); err == nil {
		t.Error("New accepted a rotation interval of 0")
	}
}
