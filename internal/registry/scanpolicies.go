package registry

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"keppel/internal/policy"
)

// ErrScanPolicyManaged: a security scan policy that another user manages
// was to be changed.
var ErrScanPolicyManaged = errors.New("security scan policy is managed by another user")

// RequesterPlaceholder in a policy's managed_by_user stands for the user
// who sends the policies.
const RequesterPlaceholder = "$REQUESTER"

// SecurityScanPolicies returns the account's security scan policies.
func (s *Service) SecurityScanPolicies(ctx context.Context, account string) ([]policy.ScanPolicy, error) {
	a, err := s.db.GetAccount(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("looking up account %s: %w", account, err)
	}
	return policy.ParseScanPolicies(a.SecurityScanPoliciesJSON)
}

// SetSecurityScanPolicies replaces the account's security scan policies
// on behalf of requester; RequesterPlaceholder in managed_by_user becomes
// the requester. Policies that another user manages must stay as they are
// (ErrScanPolicyManaged). The account's manifests are due for a scan at
// once, so that their statuses follow the new policies.
func (s *Service) SetSecurityScanPolicies(ctx context.Context, account string, policies []policy.ScanPolicy, requester string) ([]policy.ScanPolicy, error) {
	for i := range policies {
		if policies[i].ManagedByUser == RequesterPlaceholder {
			policies[i].ManagedByUser = requester
		}
	}
	stored, err := policy.MarshalScanPolicies(policies)
	if err != nil {
		return nil, err
	}
	a, err := s.db.GetAccount(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("looking up account %s: %w", account, err)
	}
	if a.IsManaged {
		return nil, fmt.Errorf("%w: account %s is declared by the operator and cannot be changed through the API", ErrManagedAccount, account)
	}
	old, err := policy.ParseScanPolicies(a.SecurityScanPoliciesJSON)
	if err != nil {
		return nil, fmt.Errorf("security scan policies of account %s: %w", account, err)
	}
	if err := checkManagedScanPolicies(old, policies, requester); err != nil {
		return nil, err
	}
	a.SecurityScanPoliciesJSON = stored
	if err := s.db.UpdateAccount(ctx, a); err != nil {
		return nil, fmt.Errorf("updating account: %w", err)
	}
	if err := s.db.RescheduleVulnerabilityScans(ctx, account, s.now()); err != nil {
		return nil, err
	}
	return policy.ParseScanPolicies(stored)
}

// checkManagedScanPolicies refuses adding, removing or changing a policy
// that a user other than the requester manages.
func checkManagedScanPolicies(old, updated []policy.ScanPolicy, requester string) error {
	foreign := func(ps []policy.ScanPolicy) []policy.ScanPolicy {
		var out []policy.ScanPolicy
		for _, p := range ps {
			if p.ManagedByUser != "" && p.ManagedByUser != requester {
				out = append(out, p)
			}
		}
		return out
	}
	if !reflect.DeepEqual(foreign(old), foreign(updated)) {
		return fmt.Errorf("%w: policies with a managed_by_user other than %q can only be changed by that user", ErrScanPolicyManaged, requester)
	}
	return nil
}
