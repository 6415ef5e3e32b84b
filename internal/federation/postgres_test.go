package federation_test

import (
	"errors"
	"testing"

	"keppel/internal/federation"
	"keppel/internal/test"
)

func TestPostgresClaims(t *testing.T) {
	url := test.PostgresDatabase(t)
	instance := func(host string) *federation.Postgres {
		p, err := federation.NewPostgres(t.Context(), url, host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	a, b, c := instance("a.example.com"), instance("b.example.com"), instance("c.example.com")
	ctx := t.Context()

	// A primary account name belongs to the first who claims it.
	if err := a.ClaimAccountName(ctx, "alpha", "", ""); err != nil {
		t.Fatalf("claim on A: %v", err)
	}
	if err := a.ClaimAccountName(ctx, "alpha", "", ""); err != nil {
		t.Fatalf("claiming again on A: %v", err)
	}
	if err := b.ClaimAccountName(ctx, "alpha", "", ""); !errors.Is(err, federation.ErrNameTaken) {
		t.Fatalf("claim on B: %v, want ErrNameTaken", err)
	}
	if primary, err := c.FindPrimaryAccount(ctx, "alpha"); err != nil || primary != "a.example.com" {
		t.Fatalf("FindPrimaryAccount = %q, %v", primary, err)
	}
	if _, err := c.FindPrimaryAccount(ctx, "beta"); !errors.Is(err, federation.ErrNotFound) {
		t.Fatalf("FindPrimaryAccount(beta): %v", err)
	}

	// A replica needs a sublease token of the primary, used once.
	if err := b.ClaimAccountName(ctx, "alpha", "a.example.com", ""); !errors.Is(err, federation.ErrBadSubleaseToken) {
		t.Fatalf("replica without a token: %v", err)
	}
	if _, err := b.IssueSubleaseToken(ctx, "alpha"); !errors.Is(err, federation.ErrNotPrimary) {
		t.Fatalf("sublease token from B: %v", err)
	}
	token, err := a.IssueSubleaseToken(ctx, "alpha")
	if err != nil || token == "" {
		t.Fatalf("IssueSubleaseToken: %q, %v", token, err)
	}
	if err := b.ClaimAccountName(ctx, "alpha", "c.example.com", token); !errors.Is(err, federation.ErrNameTaken) {
		t.Fatalf("replica of the wrong upstream: %v", err)
	}
	if err := b.ClaimAccountName(ctx, "alpha", "a.example.com", token+"x"); !errors.Is(err, federation.ErrBadSubleaseToken) {
		t.Fatalf("replica with a broken token: %v", err)
	}
	if err := b.ClaimAccountName(ctx, "alpha", "a.example.com", token); err != nil {
		t.Fatalf("replica with the token: %v", err)
	}
	if err := b.ClaimAccountName(ctx, "alpha", "a.example.com", ""); err != nil {
		t.Fatalf("claiming the replica again: %v", err)
	}
	if err := c.ClaimAccountName(ctx, "alpha", "a.example.com", token); !errors.Is(err, federation.ErrBadSubleaseToken) {
		t.Fatalf("second replica with a used token: %v", err)
	}
	// A token of another account does not fit.
	if err := c.ClaimAccountName(ctx, "gamma", "", ""); err != nil {
		t.Fatal(err)
	}
	gammaToken, err := c.IssueSubleaseToken(ctx, "gamma")
	if err != nil {
		t.Fatal(err)
	}
	newToken, _ := a.IssueSubleaseToken(ctx, "alpha")
	if err := c.ClaimAccountName(ctx, "alpha", "a.example.com", gammaToken); !errors.Is(err, federation.ErrBadSubleaseToken) {
		t.Fatalf("replica with another account's token: %v", err)
	}
	// A new token replaces an unused one.
	if _, err := a.IssueSubleaseToken(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if err := c.ClaimAccountName(ctx, "alpha", "a.example.com", newToken); !errors.Is(err, federation.ErrBadSubleaseToken) {
		t.Fatalf("replica with a replaced token: %v", err)
	}

	// Forfeiting frees the name.
	if err := b.ForfeitAccountName(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if err := a.ForfeitAccountName(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if err := b.ClaimAccountName(ctx, "alpha", "", ""); err != nil {
		t.Fatalf("claim after A forfeited: %v", err)
	}
}

func TestTrivial(t *testing.T) {
	var d federation.Driver = federation.Trivial{}
	if err := d.ClaimAccountName(t.Context(), "x", "", ""); err != nil {
		t.Fatal(err)
	}
	if tok, err := d.IssueSubleaseToken(t.Context(), "x"); tok != "" || err != nil {
		t.Fatalf("IssueSubleaseToken = %q, %v", tok, err)
	}
	if _, err := d.FindPrimaryAccount(t.Context(), "x"); !errors.Is(err, federation.ErrNotFound) {
		t.Fatal(err)
	}
}

func TestPostgresRecordExistingAccounts(t *testing.T) {
	url := test.PostgresDatabase(t)
	a, err := federation.NewPostgres(t.Context(), url, "a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := federation.NewPostgres(t.Context(), url, "b.example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	// B had a replica of A's account before both joined the federation.
	if err := b.RecordExistingAccount(ctx, "shared", "a.example.com"); err != nil {
		t.Fatalf("recording B's replica first: %v", err)
	}
	if err := a.RecordExistingAccount(ctx, "shared", ""); err != nil {
		t.Fatalf("recording A's primary: %v", err)
	}
	if err := b.RecordExistingAccount(ctx, "shared", "a.example.com"); err != nil {
		t.Fatalf("recording B's replica again: %v", err)
	}
	if err := b.RecordExistingAccount(ctx, "shared", ""); !errors.Is(err, federation.ErrNameTaken) {
		t.Fatalf("B recording a primary of the same name: %v", err)
	}
	if err := b.ClaimAccountName(ctx, "shared", "a.example.com", ""); err != nil {
		t.Fatalf("B's replica is recorded: %v", err)
	}
	if err := a.RecordExistingAccount(ctx, "other", "c.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := b.ClaimAccountName(ctx, "other", "", ""); !errors.Is(err, federation.ErrNameTaken) {
		t.Fatalf("claiming a name recorded for C: %v", err)
	}
}
