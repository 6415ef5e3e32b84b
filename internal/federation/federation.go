// Package federation decides which Keppel instance may hold an account
// name. Instances that replicate between each other share one account name
// space: an account name belongs to one instance (its primary account), and
// other instances may hold replicas of it, each created with a sublease
// token that the primary account's instance issued once.
//
// Drivers: Trivial, for a single instance (every name is free), and
// Postgres, which keeps the claims in a PostgreSQL database that every
// instance reaches.
package federation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Errors of Driver methods, to be compared with errors.Is.
var (
	// ErrNameTaken: another instance holds the account name.
	ErrNameTaken = errors.New("account name is in use at another registry")
	// ErrBadSubleaseToken: a replica was to be created without a valid,
	// unused sublease token of its primary account.
	ErrBadSubleaseToken = errors.New("no valid sublease token for this replica")
	// ErrNotPrimary: only the instance of the primary account may issue
	// sublease tokens for it.
	ErrNotPrimary = errors.New("the account is not a primary account of this registry")
	// ErrNotFound: no instance holds the account name.
	ErrNotFound = errors.New("no registry holds this account name")
)

// Driver keeps the claims of account names.
type Driver interface {
	// ClaimAccountName claims the name for this instance: as a primary
	// account if upstream is empty, else as a replica of the primary
	// account at the upstream instance, which needs a sublease token that
	// upstream issued (and which is used up). Claiming again what this
	// instance holds succeeds.
	ClaimAccountName(ctx context.Context, name, upstream, subleaseToken string) error
	// IssueSubleaseToken returns a token that allows one replica of this
	// instance's primary account to be created elsewhere ("" if the driver
	// needs none).
	IssueSubleaseToken(ctx context.Context, name string) (string, error)
	// ForfeitAccountName gives up this instance's claim (when the account
	// is deleted).
	ForfeitAccountName(ctx context.Context, name string) error
	// FindPrimaryAccount returns the instance that holds the primary
	// account of the name (ErrNotFound if none).
	FindPrimaryAccount(ctx context.Context, name string) (string, error)
	// RecordExistingAccount records an account that this instance holds
	// already (from before the federation was set up, or a claim that got
	// lost): a primary account is claimed (ErrNameTaken if another instance
	// holds the name), a replica is recorded as one of upstream's.
	RecordExistingAccount(ctx context.Context, name, upstream string) error
}

// Trivial is the driver of a single instance: every name is free, and no
// sublease token is needed.
type Trivial struct{}

var _ Driver = Trivial{}

// ClaimAccountName implements Driver.
func (Trivial) ClaimAccountName(context.Context, string, string, string) error { return nil }

// IssueSubleaseToken implements Driver.
func (Trivial) IssueSubleaseToken(context.Context, string) (string, error) { return "", nil }

// ForfeitAccountName implements Driver.
func (Trivial) ForfeitAccountName(context.Context, string) error { return nil }

// FindPrimaryAccount implements Driver.
func (Trivial) FindPrimaryAccount(context.Context, string) (string, error) { return "", ErrNotFound }

// RecordExistingAccount implements Driver.
func (Trivial) RecordExistingAccount(context.Context, string, string) error { return nil }

// subleaseToken is what a sublease token carries: the account and its
// primary instance (so that the replica's creator can check them) and the
// one-time secret.
type subleaseToken struct {
	Account string `json:"account"`
	Primary string `json:"primary"`
	Secret  string `json:"secret"`
}

func newSubleaseToken(account, primary string) (token string, secretHash string) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	buf, _ := json.Marshal(subleaseToken{Account: account, Primary: primary, Secret: secret})
	return base64.RawURLEncoding.EncodeToString(buf), hashSecret(secret)
}

func parseSubleaseToken(token string) (subleaseToken, error) {
	var t subleaseToken
	buf, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(buf, &t)
	}
	if err != nil || t.Secret == "" {
		return subleaseToken{}, fmt.Errorf("%w: the token is malformed", ErrBadSubleaseToken)
	}
	return t, nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
