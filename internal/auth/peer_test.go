package auth_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"keppel/internal/auth"
	"keppel/internal/models"
)

// TestPeerGrants checks what another registry of the federation may do:
// pull everything of existing accounts, whatever the tenant or policies
// say, and nothing else.
func TestPeerGrants(t *testing.T) {
	t.Parallel()
	peer := &auth.Identity{Username: "replication@keppel.eu-de-2.example.com", Peer: true}
	// A peer mark beside roles and the admin flag (which no driver sets
	// together) still means peer rights only.
	overreaching := &auth.Identity{Username: "replication@x", Peer: true, IsAdmin: true,
		Roles: map[string]models.Role{"tenant1": models.RoleAdmin}}

	cases := []struct {
		name      string
		id        *auth.Identity
		requested []auth.Scope
		want      auth.Grants
	}{
		{"pull in any tenant", peer, []auth.Scope{repo("test/app", "pull"), repo("other/app", "pull")},
			auth.Grants{repo("test/app", "pull"), repo("other/app", "pull")}},
		{"pull but no push or delete", peer, []auth.Scope{repo("test/app", "pull", "push", "delete")},
			auth.Grants{repo("test/app", "pull")}},
		{"no push alone", peer, []auth.Scope{repo("test/app", "push"), repo("test/app", "delete")}, auth.Grants{}},
		{"pull despite policies that forbid changes", peer, []auth.Scope{repo("test/locked", "pull", "push", "delete")},
			auth.Grants{repo("test/locked", "pull")}},
		{"no push where a policy grants it to the name", &auth.Identity{Username: "bob", Peer: true},
			[]auth.Scope{repo("test/special", "pull", "push")}, auth.Grants{repo("test/special", "pull")}},
		{"pull from an account being deleted", peer, []auth.Scope{repo("deleting/app", "pull", "push")},
			auth.Grants{repo("deleting/app", "pull")}},
		{"nothing in unknown accounts", peer, []auth.Scope{repo("nosuch/app", "pull")}, auth.Grants{}},
		{"malformed repository scope", peer, []auth.Scope{repo("noslash", "pull"), repo("test/", "pull")}, auth.Grants{}},
		{"\"*\" is no pull", peer, []auth.Scope{repo("test/app", "*")}, auth.Grants{}},
		{"no catalog", peer, []auth.Scope{auth.CatalogScope}, auth.Grants{}},
		{"no account scopes", peer, []auth.Scope{{Type: "keppel_account", Name: "test", Actions: []string{"view", "change", "*"}}}, auth.Grants{}},
		{"no tenant scopes", peer, []auth.Scope{{Type: "keppel_auth_tenant", Name: "tenant1", Actions: []string{"viewquota", "changequota"}}}, auth.Grants{}},
		{"no api info", peer, []auth.Scope{{Type: "keppel_api", Name: "info", Actions: []string{"access"}}}, auth.Grants{}},
		{"the peer mark wins over admin and roles", overreaching,
			[]auth.Scope{repo("test/app", "pull", "push", "delete"), auth.CatalogScope, {Type: "keppel_account", Name: "test", Actions: []string{"change"}}},
			auth.Grants{repo("test/app", "pull")}},
	}
	a := testAuthorizer()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := a.Grant(context.Background(), c.id, c.requested, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("Grant returned nil; tokens must carry [] for no access")
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}

	// The same identity without the mark is an ordinary user without roles.
	got, err := a.Grant(context.Background(), &auth.Identity{Username: peer.Username}, []auth.Scope{repo("other/app", "pull")}, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("without the peer mark: %v, %v; want nothing", got, err)
	}

	// A failing account lookup is an error, not an empty grant.
	broken := &auth.Authorizer{Accounts: func(context.Context, string) (models.Account, error) {
		return models.Account{}, errors.New("database down")
	}}
	if _, err := broken.Grant(context.Background(), peer, []auth.Scope{repo("test/app", "pull")}, nil); err == nil {
		t.Error("a failing account lookup gave a grant")
	}
}

// TestPeerTokens checks that tokens issued to peers keep the mark.
func TestPeerTokens(t *testing.T) {
	t.Parallel()
	ts := auth.NewTokenService(testService, time.Hour, newKey(t), nil, (&clock{now: epoch}).Now)
	peer := &auth.Identity{Username: "replication@keppel.eu-de-2.example.com", Peer: true}
	token, _, err := ts.IssueFor(peer, auth.Grants{repo("test/app", "pull")})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := ts.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if id := claims.Identity(); id == nil || !id.Peer || id.IsAdmin || id.Username != peer.Username {
		t.Errorf("identity of a peer token: %+v", id)
	}
	if payload := decodePayload(t, token); payload["kpl_peer"] != true {
		t.Errorf("payload %v has no kpl_peer", payload)
	}

	token, _, err = ts.IssueFor(&auth.Identity{Username: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, err = ts.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if id := claims.Identity(); id == nil || id.Peer {
		t.Errorf("identity of a user token: %+v", id)
	}
	if _, found := decodePayload(t, token)["kpl_peer"]; found {
		t.Error("a user token carries kpl_peer")
	}
}

// TestChainRefused checks that a driver can reserve a name: its refusal is
// a wrong password to the caller, and no later driver is asked.
func TestChainRefused(t *testing.T) {
	t.Parallel()
	asked := false
	later := driverFunc(func(context.Context, string, string) (auth.Identity, error) {
		asked = true
		return auth.Identity{Username: "impostor"}, nil
	})
	owner := driverFunc(func(_ context.Context, username, _ string) (auth.Identity, error) {
		if username == "replication@peer" {
			return auth.Identity{}, fmt.Errorf("peering: %w", auth.ErrRefused)
		}
		return auth.Identity{}, fmt.Errorf("peering: not a peer: %w", auth.ErrBadCredentials)
	})
	chain := auth.Chain{owner, later}
	_, err := chain.Authenticate(context.Background(), "replication@peer", "wrong")
	if !errors.Is(err, auth.ErrBadCredentials) || !errors.Is(err, auth.ErrRefused) || asked {
		t.Fatalf("reserved name: %v (later driver asked: %v)", err, asked)
	}
	if id, err := chain.Authenticate(context.Background(), "alice", "x"); err != nil || id.Username != "impostor" || !asked {
		t.Fatalf("other names must reach the later driver: %+v, %v", id, err)
	}
	if errors.Is(auth.ErrBadCredentials, auth.ErrRefused) {
		t.Error("every wrong password counts as a refusal")
	}
}

type driverFunc func(ctx context.Context, username, password string) (auth.Identity, error)

func (f driverFunc) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	return f(ctx, username, password)
}
