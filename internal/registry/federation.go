package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"keppel/internal/federation"
	"keppel/internal/models"
)

// Errors of account creation under federation, to be compared with
// errors.Is (they wrap the federation package's errors).
var (
	// ErrAccountNameTaken: another registry holds the account name.
	ErrAccountNameTaken = federation.ErrNameTaken
	// ErrSubleaseTokenInvalid: a replica was to be created without a valid
	// sublease token of its primary account.
	ErrSubleaseTokenInvalid = federation.ErrBadSubleaseToken
	// ErrNotPrimaryAccount: sublease tokens exist only for primary accounts.
	ErrNotPrimaryAccount = federation.ErrNotPrimary
)

// WithFederation sets the federation driver that decides which account
// names this registry may hold (federation.Trivial without this option).
func WithFederation(d federation.Driver) Option { return func(s *Service) { s.fed = d } }

// upstreamPeer returns the peer registry that a replica account replicates
// ("" for other accounts).
func upstreamPeer(a models.Account) string {
	var r replicationSettings
	if a.ReplicationJSON == "" || json.Unmarshal([]byte(a.ReplicationJSON), &r) != nil || r.Strategy != StrategyOnFirstUse {
		return ""
	}
	var host string
	_ = json.Unmarshal(r.Upstream, &host)
	return host
}

// claimAccountName claims the name of a new account with the federation
// driver: as a primary account, or as a replica with the sublease token.
func (s *Service) claimAccountName(ctx context.Context, a models.Account, subleaseToken string) error {
	if err := s.federation().ClaimAccountName(ctx, a.Name, upstreamPeer(a), subleaseToken); err != nil {
		return fmt.Errorf("claiming account name %s: %w", a.Name, err)
	}
	return nil
}

// IssueSubleaseToken returns a token that allows one replica of the
// primary account to be created at another registry ("" if the federation
// driver needs none).
func (s *Service) IssueSubleaseToken(ctx context.Context, a models.Account) (string, error) {
	if a.ReplicationJSON != "" {
		return "", fmt.Errorf("%w: account %s is a replica", ErrNotPrimaryAccount, a.Name)
	}
	token, err := s.federation().IssueSubleaseToken(ctx, a.Name)
	if err != nil {
		return "", fmt.Errorf("issuing a sublease token for %s: %w", a.Name, err)
	}
	return token, nil
}

// forfeitAccountName gives up the name of a deleted account.
func (s *Service) forfeitAccountName(ctx context.Context, name string) error {
	if err := s.federation().ForfeitAccountName(ctx, name); err != nil && !errors.Is(err, federation.ErrNotFound) {
		return fmt.Errorf("giving up account name %s: %w", name, err)
	}
	return nil
}

func (s *Service) federation() federation.Driver {
	if s.fed == nil {
		return federation.Trivial{}
	}
	return s.fed
}

// RecordAccountClaims records every account of this registry with the
// federation driver, so that names held before the federation was set up
// are claimed too. Accounts whose name another registry holds are
// reported in conflicts (they keep working here, but cannot be replicated).
func (s *Service) RecordAccountClaims(ctx context.Context) (conflicts []string, err error) {
	accounts, err := s.db.ListAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	for _, a := range accounts {
		err := s.federation().RecordExistingAccount(ctx, a.Name, upstreamPeer(a))
		if errors.Is(err, federation.ErrNameTaken) {
			conflicts = append(conflicts, a.Name)
			continue
		}
		if err != nil {
			return conflicts, fmt.Errorf("recording account %s: %w", a.Name, err)
		}
	}
	return conflicts, nil
}

// describeUpstream names what a replica account replicates, for messages.
func describeUpstream(a models.Account) string {
	if peer := upstreamPeer(a); peer != "" {
		return peer + "/" + a.Name
	}
	var r replicationSettings
	var up externalUpstream
	if json.Unmarshal([]byte(a.ReplicationJSON), &r) == nil && json.Unmarshal(r.Upstream, &up) == nil && up.URL != "" {
		return up.URL
	}
	return "its upstream"
}
