package peering_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"keppel/internal/auth/builtin"
	"keppel/internal/peering"
	"keppel/internal/test"
)

// TestServersArePeers runs two whole registries (internal/server) that
// list each other in KEPPEL_PEERS, on loopback ports: their rotation job
// delivers passwords, and each can then pull from the other with them, as
// a peer, but not push.
func TestServersArePeers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	lnA, lnB := listen(t), listen(t)
	urlA, urlB := "http://"+lnA.Addr().String(), "http://"+lnB.Addr().String()
	peers := urlA + "," + urlB
	a := test.NewServer(t, test.Options{StorageDriver: "memory", Listener: lnA,
		Accounts: map[string]string{"library": "team-a"}, Env: map[string]string{"KEPPEL_PEERS": peers}})
	b := test.NewServer(t, test.Options{StorageDriver: "memory", Listener: lnB,
		Accounts: map[string]string{}, Env: map[string]string{"KEPPEL_PEERS": peers}})
	if a.Peering() == nil || b.Peering() == nil {
		t.Fatal("the servers have no peering although KEPPEL_PEERS is set")
	}
	manifest := pushImage(t, a, "library/app")

	for _, s := range []*test.Server{a, b} {
		if didWork, err := s.Peering().RotateDue(ctx); !didWork || err != nil {
			t.Fatalf("RotateDue at %s: %v, %v", s.Host, didWork, err)
		}
	}
	user, password, err := b.Peering().Credentials(ctx, a.Host)
	if err != nil || user != peering.UsernamePrefix+b.Host {
		t.Fatalf("B's credentials for A: %q, %v", user, err)
	}
	if u, ok := b.Peering().PeerURL(a.Host); !ok || u != a.URL {
		t.Fatalf("PeerURL(%s) = %q, %v", a.Host, u, ok)
	}

	// B pulls from A as a peer: the account belongs to a tenant that B has
	// no role in, and no policy grants anything.
	token := a.TokenAs(t, user, password, "repository:library/app:pull,push")
	r := a.Do(t, http.MethodGet, "/v2/library/app/manifests/latest", token,
		http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}, nil)
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, manifest) {
		t.Fatalf("B's pull from A: %d %s", r.Status, r.Body)
	}
	r = a.Do(t, http.MethodPost, "/v2/library/app/blobs/uploads/", token, nil, nil)
	if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		t.Fatalf("B's push to A: %d %s, want a refusal", r.Status, r.Body)
	}
	// A token for the catalog holds nothing.
	catalog := a.TokenAs(t, user, password, "registry:catalog:*")
	if r := a.Do(t, http.MethodGet, "/v2/_catalog", catalog, nil, nil); r.Status == http.StatusOK {
		t.Fatalf("B read A's catalog: %s", r.Body)
	}

	// The other direction works too, and a peer's password is no login
	// anywhere else.
	userA, passwordA, err := a.Peering().Credentials(ctx, b.Host)
	if err != nil {
		t.Fatal(err)
	}
	b.TokenAs(t, userA, passwordA)
	for _, c := range []struct {
		name           string
		s              *test.Server
		user, password string
	}{
		{"B's password at B", b, user, password},
		{"A's password at A", a, userA, passwordA},
		{"the admin's name with B's password", a, "admin", password},
	} {
		if r := tokenStatus(t, c.s, c.user, c.password); r != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", c.name, r)
		}
	}
	a.TokenAs(t, "admin", test.AdminPassword) // the chain goes on to the built-in users

	// Deliveries that A did not send are refused, and so is every
	// delivery to a registry without peers.
	forged := fmt.Sprintf(`{"peer":%q,"username":%q,"password":"forged"}`, a.Host, user)
	if r := b.Do(t, http.MethodPost, peering.DeliveryPath, "", nil, bytes.NewReader([]byte(forged))); r.Status != http.StatusForbidden {
		t.Errorf("a forged delivery: %d %s", r.Status, r.Body)
	}
	if _, p, err := b.Peering().Credentials(ctx, a.Host); err != nil || p != password {
		t.Errorf("a forged delivery changed B's credentials: %v", err)
	}
	lone := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{}})
	genuine := fmt.Sprintf(`{"peer":%q,"username":%q,"password":%q}`, a.Host, peering.UsernamePrefix+lone.Host, password)
	if r := lone.Do(t, http.MethodPost, peering.DeliveryPath, "", nil, bytes.NewReader([]byte(genuine))); r.Status != http.StatusForbidden {
		t.Errorf("a delivery to a registry without peers: %d %s", r.Status, r.Body)
	}
	if lone.Peering() != nil {
		t.Error("a registry without KEPPEL_PEERS has peering")
	}
}

// TestServerReservesPeerNames checks that the peers come first in a
// server's credential chain: a built-in user with a peer's name cannot log
// in. (Names of peers with a port cannot reach the built-in store at all:
// basic credentials split them at the colon.)
func TestServerReservesPeerNames(t *testing.T) {
	t.Parallel()
	// 127.0.0.9:80 is never contacted: nothing rotates here.
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{},
		Env: map[string]string{"KEPPEL_PEERS": "http://127.0.0.9"}})
	name := peering.UsernamePrefix + "127.0.0.9"
	if err := builtin.SetPassword(t.Context(), s.Store(), name, "local-password", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	if status := tokenStatus(t, s, name, "local-password"); status != http.StatusUnauthorized {
		t.Errorf("a built-in user with a peer's name: %d, want 401", status)
	}
	if err := builtin.SetPassword(t.Context(), s.Store(), peering.UsernamePrefix+"127.0.0.10", "local-password", false, time.Now()); err != nil {
		t.Fatal(err)
	}
	if status := tokenStatus(t, s, peering.UsernamePrefix+"127.0.0.10", "local-password"); status != http.StatusOK {
		t.Errorf("a built-in user named like a registry that is no peer: %d, want 200", status)
	}
}

// tokenStatus asks for a token with basic credentials and returns the status.
func tokenStatus(t *testing.T, s *test.Server, user, password string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/keppel/v1/auth?service="+s.Host, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pushImage pushes a small image as "latest" into the repository as the
// admin and returns its manifest.
func pushImage(t *testing.T, s *test.Server, repo string) []byte {
	t.Helper()
	token := s.Token(t, "repository:"+repo+":pull,push")
	digest := func(b []byte) string {
		sum := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	config, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("layer content")
	for _, blob := range [][]byte{config, layer} {
		r := s.Do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digest(blob), token,
			http.Header{"Content-Type": {"application/octet-stream"}}, bytes.NewReader(blob))
		if r.Status != http.StatusCreated {
			t.Fatalf("pushing a blob: %d %s", r.Status, r.Body)
		}
	}
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digest(config), len(config), digest(layer), len(layer)))
	r := s.Do(t, http.MethodPut, "/v2/"+repo+"/manifests/latest", token,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, bytes.NewReader(manifest))
	if r.Status != http.StatusCreated {
		t.Fatalf("pushing the manifest: %d %s", r.Status, r.Body)
	}
	return manifest
}
