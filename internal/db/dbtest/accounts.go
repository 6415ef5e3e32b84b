package dbtest

import (
	"slices"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

func testPing(t *testing.T, s db.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testAccounts(t *testing.T, s db.Store) {
	ctx := t.Context()
	full := models.Account{
		Name:               "library",
		AuthTenantID:       "tenant1",
		IsDeleting:         true,
		RBACPoliciesJSON:   `[{"match_repository":".*","permissions":["anonymous_pull"]}]`,
		GCPoliciesJSON:     `[{"match_repository":".*","action":"delete"}]`,
		TagPoliciesJSON:    `[{"match_tag":"v.*","block_overwrite":true}]`,
		ValidationRule:     `{"required_labels":["maintainer"]}`,
		PlatformFilterJSON: `[{"os":"linux","architecture":"amd64"}]`,
		IsManaged:          true,
		IsProtected:        true,
		// sub-second precision is dropped
		CreatedAt: time.Unix(1_700_000_123, 456_000_000),
	}
	if err := s.CreateAccount(ctx, full); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	got, err := s.GetAccount(ctx, "library")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	want := full
	want.CreatedAt = ts(1_700_000_123)
	wantEqual(t, "GetAccount", got, want)

	// an account with nothing but the required fields
	before := time.Now().Add(-time.Second)
	if err := s.CreateAccount(ctx, models.Account{Name: "minimal", AuthTenantID: "tenant1"}); err != nil {
		t.Fatalf("CreateAccount(minimal): %v", err)
	}
	got, err = s.GetAccount(ctx, "minimal")
	if err != nil {
		t.Fatalf("GetAccount(minimal): %v", err)
	}
	if got.CreatedAt.Before(before.Truncate(time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("minimal account: CreatedAt = %v, want about now", got.CreatedAt)
	}
	got.CreatedAt = time.Time{}
	wantEqual(t, "GetAccount(minimal)", got, models.Account{Name: "minimal", AuthTenantID: "tenant1"})

	runErrCases(t, []errCase{
		{"duplicate name", func(t *testing.T) error {
			return s.CreateAccount(t.Context(), models.Account{Name: "library", AuthTenantID: "tenant2"})
		}, db.ErrConflict},
		{"unknown account", func(t *testing.T) error {
			_, err := s.GetAccount(t.Context(), "unknown")
			return err
		}, db.ErrNotFound},
		{"name differs in case", func(t *testing.T) error {
			_, err := s.GetAccount(t.Context(), "Library")
			return err
		}, db.ErrNotFound},
	})

	// the failed duplicate did not change the original
	got, err = s.GetAccount(ctx, "library")
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	wantEqual(t, "GetAccount after duplicate", got, want)
}

func testAccountOrder(t *testing.T, s db.Store) {
	ctx := t.Context()
	list, err := s.ListAccounts(ctx)
	if err != nil {
		t.Fatalf("ListAccounts on empty store: %v", err)
	}
	if len(list) != 0 {
		t.Fatalf("ListAccounts on empty store: got %d accounts", len(list))
	}

	f := newFixture(s)
	// inserted out of order; bytewise order is B < a < a-b < a0 < ab
	for _, name := range []string{"ab", "a0", "B", "a-b", "a"} {
		f.account(t, name)
	}
	list, err = s.ListAccounts(ctx)
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	var names []string
	for _, a := range list {
		names = append(names, a.Name)
	}
	wantEqual(t, "ListAccounts order", names, []string{"B", "a", "a-b", "a0", "ab"})
	if !slices.IsSorted(names) {
		t.Fatalf("ListAccounts not bytewise sorted: %q", names)
	}
	wantEqual(t, "ListAccounts tenant", list[0].AuthTenantID, "tenant-B")
}

func testUsers(t *testing.T, s db.Store) {
	ctx := t.Context()
	_, err := s.GetUser(ctx, "alice")
	wantErr(t, "GetUser(unknown)", err, db.ErrNotFound)

	alice := models.User{Name: "alice", PasswordHash: "$2a$10$first", IsAdmin: true, CreatedAt: ts(1_700_000_000)}
	if err := s.PutUser(ctx, alice); err != nil {
		t.Fatalf("PutUser: %v", err)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	wantEqual(t, "GetUser", got, alice)

	// replacing changes hash and admin flag but keeps the creation time
	err = s.PutUser(ctx, models.User{Name: "alice", PasswordHash: "$2a$10$second", CreatedAt: ts(1_800_000_000)})
	if err != nil {
		t.Fatalf("PutUser(replace): %v", err)
	}
	got, err = s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	wantEqual(t, "GetUser after replace", got,
		models.User{Name: "alice", PasswordHash: "$2a$10$second", IsAdmin: false, CreatedAt: ts(1_700_000_000)})

	// a zero creation time means now
	if err := s.PutUser(ctx, models.User{Name: "bob", PasswordHash: "h"}); err != nil {
		t.Fatalf("PutUser(bob): %v", err)
	}
	got, err = s.GetUser(ctx, "bob")
	if err != nil {
		t.Fatalf("GetUser(bob): %v", err)
	}
	if d := time.Since(got.CreatedAt); d < -time.Minute || d > time.Minute {
		t.Errorf("GetUser(bob): CreatedAt = %v, want about now", got.CreatedAt)
	}

	_, err = s.GetUser(ctx, "Alice")
	wantErr(t, "GetUser(other case)", err, db.ErrNotFound)
}
