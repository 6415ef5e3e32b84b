package janitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/policy"
	"keppel/internal/registry"
)

// ManagedAccountsFile is the file format of declared accounts:
//
//	accounts:
//	  - name: library
//	    auth_tenant_id: team-a
//	    protected: true
//	    rbac_policies: [{match_repository: ".*", permissions: [anonymous_pull]}]
//	    tag_policies: [{match_repository: ".*", match_tag: "v.*", block_overwrite: true}]
//	    gc_policies: [...]
//	    validation: {rule_for_manifest: "size(layers) <= 50"}
type ManagedAccountsFile struct {
	Accounts []ManagedAccount `yaml:"accounts" json:"accounts"`
}

// ManagedAccount is one declared account.
type ManagedAccount struct {
	Name         string `yaml:"name" json:"name"`
	AuthTenantID string `yaml:"auth_tenant_id" json:"auth_tenant_id"`
	// Protected accounts are never deleted by a reconcile, even when they
	// disappear from the file.
	Protected    bool           `yaml:"protected" json:"protected"`
	RBACPolicies []any          `yaml:"rbac_policies" json:"rbac_policies"`
	TagPolicies  []any          `yaml:"tag_policies" json:"tag_policies"`
	GCPolicies   []any          `yaml:"gc_policies" json:"gc_policies"`
	Validation   map[string]any `yaml:"validation" json:"validation"`
}

// LoadManagedAccounts reads and validates a managed-accounts file (YAML or JSON).
func LoadManagedAccounts(path string) ([]models.Account, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading managed accounts: %w", err)
	}
	var f ManagedAccountsFile
	dec := yaml.NewDecoder(bytes.NewReader(buf))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parsing managed accounts file %s: %w", path, err)
	}
	seen := map[string]bool{}
	out := make([]models.Account, 0, len(f.Accounts))
	for i, m := range f.Accounts {
		a, err := m.toAccount()
		if err != nil {
			return nil, fmt.Errorf("managed accounts file %s: accounts[%d]: %w", path, i, err)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("managed accounts file %s: account %s is declared twice", path, a.Name)
		}
		seen[a.Name] = true
		out = append(out, a)
	}
	return out, nil
}

func (m ManagedAccount) toAccount() (models.Account, error) {
	a := models.Account{Name: m.Name, AuthTenantID: m.AuthTenantID, IsManaged: true, IsProtected: m.Protected}
	if !oci.ValidAccountName(m.Name) {
		return a, fmt.Errorf("name %q is not a valid account name", m.Name)
	}
	if m.AuthTenantID == "" {
		return a, errors.New("auth_tenant_id is missing")
	}
	var err error
	if len(m.RBACPolicies) > 0 {
		if a.RBACPoliciesJSON, err = canonical(m.RBACPolicies, func(s string) (string, error) {
			p, err := policy.ParseRBACPolicies(s)
			if err != nil {
				return "", err
			}
			return policy.MarshalRBACPolicies(p)
		}); err != nil {
			return a, err
		}
	}
	if len(m.TagPolicies) > 0 {
		if a.TagPoliciesJSON, err = canonical(m.TagPolicies, func(s string) (string, error) {
			p, err := policy.ParseTagPolicies(s)
			if err != nil {
				return "", err
			}
			return policy.MarshalTagPolicies(p)
		}); err != nil {
			return a, err
		}
	}
	if len(m.GCPolicies) > 0 {
		buf, err := json.Marshal(m.GCPolicies)
		if err != nil {
			return a, fmt.Errorf("gc_policies: %w", err)
		}
		a.GCPoliciesJSON = string(buf)
	}
	for key, v := range m.Validation {
		rule, ok := v.(string)
		if key != "rule_for_manifest" || !ok {
			return a, fmt.Errorf("validation.%s is not supported (only rule_for_manifest, a string)", key)
		}
		if _, err := policy.CompileRule(rule); err != nil {
			return a, fmt.Errorf("validation.rule_for_manifest: %w", err)
		}
		a.ValidationRule = rule
	}
	return a, nil
}

// canonical turns YAML-decoded policies into JSON and lets the policy
// package validate and canonicalize them.
func canonical(v []any, parse func(string) (string, error)) (string, error) {
	buf, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return parse(string(buf))
}

// Reconciler makes the accounts in the database match the managed-accounts file.
type Reconciler struct {
	svc  *registry.Service
	path string
}

// Reconcile applies the file once: declared accounts are created or
// updated (and become managed); managed accounts that are no longer
// declared are marked for deletion, unless they are protected, in which
// case they only stop being managed. It returns the number of changes.
func (r *Reconciler) Reconcile(ctx context.Context) (int, error) {
	declared, err := LoadManagedAccounts(r.path)
	if err != nil {
		return 0, err
	}
	changes := 0
	want := map[string]bool{}
	for _, a := range declared {
		want[a.Name] = true
		existing, err := r.svc.GetAccount(ctx, a.Name)
		switch {
		case errors.Is(err, db.ErrNotFound):
			if _, _, err := r.svc.CreateAccountWithSettings(ctx, a); err != nil {
				return changes, fmt.Errorf("creating managed account %s: %w", a.Name, err)
			}
			changes++
			continue
		case err != nil:
			return changes, fmt.Errorf("looking up account %s: %w", a.Name, err)
		case existing.AuthTenantID != a.AuthTenantID:
			return changes, fmt.Errorf("managed account %s exists in auth tenant %s, not %s", a.Name, existing.AuthTenantID, a.AuthTenantID)
		case existing.IsDeleting:
			return changes, fmt.Errorf("managed account %s is being deleted; declare it again once it is gone", a.Name)
		case sameSettings(existing, a):
			continue
		}
		if err := r.svc.UpdateAccount(ctx, a, true); err != nil {
			return changes, fmt.Errorf("updating managed account %s: %w", a.Name, err)
		}
		changes++
	}
	all, err := r.svc.ListAccounts(ctx)
	if err != nil {
		return changes, err
	}
	for _, a := range all {
		if !a.IsManaged || want[a.Name] {
			continue
		}
		if a.IsProtected {
			a.IsManaged, a.IsProtected = false, false
			if err := r.svc.UpdateAccount(ctx, a, true); err != nil {
				return changes, fmt.Errorf("releasing protected account %s: %w", a.Name, err)
			}
		} else if _, err := r.svc.MarkAccountForDeletion(ctx, a.Name, true); err != nil {
			return changes, fmt.Errorf("deleting account %s that is no longer declared: %w", a.Name, err)
		}
		changes++
	}
	return changes, nil
}

func sameSettings(a, b models.Account) bool {
	return a.IsManaged && a.IsProtected == b.IsProtected && a.RBACPoliciesJSON == b.RBACPoliciesJSON &&
		a.TagPoliciesJSON == b.TagPoliciesJSON && a.GCPoliciesJSON == b.GCPoliciesJSON &&
		a.ValidationRule == b.ValidationRule
}
