package auth_test

import (
	"context"
	"errors"
	"testing"

	"keppel/internal/auth"
)

type fixedDriver struct {
	user string
	err  error
}

func (f fixedDriver) Authenticate(_ context.Context, username, _ string) (auth.Identity, error) {
	if f.err != nil {
		return auth.Identity{}, f.err
	}
	if username != f.user {
		return auth.Identity{}, auth.ErrBadCredentials
	}
	return auth.Identity{Username: f.user}, nil
}

func TestChain(t *testing.T) {
	down := errors.New("provider down")
	chain := auth.Chain{fixedDriver{user: "local"}, fixedDriver{user: "remote"}}
	if id, err := chain.Authenticate(context.Background(), "remote", "x"); err != nil || id.Username != "remote" {
		t.Fatalf("second driver: %v %v", id, err)
	}
	if id, err := chain.Authenticate(context.Background(), "local", "x"); err != nil || id.Username != "local" {
		t.Fatalf("first driver: %v %v", id, err)
	}
	if _, err := chain.Authenticate(context.Background(), "nobody", "x"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("nobody: %v", err)
	}
	broken := auth.Chain{fixedDriver{user: "local"}, fixedDriver{err: down}}
	if _, err := broken.Authenticate(context.Background(), "nobody", "x"); !errors.Is(err, down) {
		t.Fatalf("an unavailable provider must not look like a wrong password: %v", err)
	}
}
