package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"keppel/internal/models"
)

// ErrAccountNotFound is what an AccountLookup returns for unknown accounts.
var ErrAccountNotFound = errors.New("account not found")

// AccountLookup finds an account by name (ErrAccountNotFound if unknown).
type AccountLookup func(ctx context.Context, name string) (models.Account, error)

// RBACDecision is what an account's RBAC policies say about one request.
type RBACDecision struct {
	// Granted and Forbidden hold permissions: pull, push, delete,
	// anonymous_pull, anonymous_first_pull.
	Granted, Forbidden map[string]bool
}

// RBACEvaluator applies an account's RBAC policies to a request for a
// repository (repoName without the account), by a user ("" for anonymous)
// from an address (nil if unknown).
type RBACEvaluator func(account models.Account, repoName, username string, remoteIP net.IP) (RBACDecision, error)

// Authorizer decides which of the requested scopes a user gets.
type Authorizer struct {
	Accounts AccountLookup
	RBAC     RBACEvaluator
}

// roleActions are the repository actions each tenant role grants.
var roleActions = map[models.Role][]string{
	models.RoleViewer: {ActionPull},
	models.RolePusher: {ActionPull, ActionPush},
	models.RoleAdmin:  {ActionPull, ActionPush, ActionDelete},
}

// Grant returns the subset of the requested scopes that the identity (nil
// for anonymous) may have, for a request from remoteIP (nil if unknown).
//
// Repository actions come from the user's role in the account's auth
// tenant and from the account's RBAC policies; a permission that a policy
// forbids is never granted, whatever else grants it (server administrators
// excepted). Anonymous users get pull only where a policy grants
// anonymous_pull. Nothing is granted on accounts that do not exist, so that
// a token never reveals whether a foreign account exists (server
// administrators get the scopes anyway, so that they see the "account
// unknown" error of a push).
//
// Peers (other registries of the federation) may pull every repository of
// every existing account, whatever its tenant and policies say, and get
// nothing else.
func (a *Authorizer) Grant(ctx context.Context, id *Identity, requested []Scope, remoteIP net.IP) (Grants, error) {
	if id != nil && id.Peer {
		return a.peerGrants(ctx, requested)
	}
	granted := Grants{}
	for _, sc := range requested {
		var actions []string
		var err error
		switch sc.Type {
		case "repository":
			actions, err = a.repositoryActions(ctx, id, sc, remoteIP)
		case "registry":
			if sc.Name == "catalog" && id != nil && contains(sc.Actions, "*") {
				actions = []string{"*"}
			}
		case "keppel_account":
			actions, err = a.accountActions(ctx, id, sc)
		case "keppel_auth_tenant":
			actions = tenantActions(id, sc)
		case "keppel_api":
			if sc.Name == "info" && id != nil && contains(sc.Actions, "access") {
				actions = []string{"access"}
			}
		}
		if err != nil {
			return nil, err
		}
		if len(actions) > 0 {
			granted = append(granted, Scope{Type: sc.Type, Name: sc.Name, Actions: actions})
		}
	}
	return granted, nil
}

// peerGrants returns the pull actions of the requested repository scopes,
// for the repositories of existing accounts.
func (a *Authorizer) peerGrants(ctx context.Context, requested []Scope) (Grants, error) {
	granted := Grants{}
	for _, sc := range requested {
		if sc.Type != "repository" || !contains(sc.Actions, ActionPull) {
			continue
		}
		accountName, repoName, ok := strings.Cut(sc.Name, "/")
		if !ok || repoName == "" {
			continue
		}
		_, err := a.Accounts(ctx, accountName)
		if errors.Is(err, ErrAccountNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("looking up account %s: %w", accountName, err)
		}
		granted = append(granted, Scope{Type: sc.Type, Name: sc.Name, Actions: []string{ActionPull}})
	}
	return granted, nil
}

func (a *Authorizer) repositoryActions(ctx context.Context, id *Identity, sc Scope, remoteIP net.IP) ([]string, error) {
	accountName, repoName, ok := strings.Cut(sc.Name, "/")
	if !ok {
		return nil, nil
	}
	account, err := a.Accounts(ctx, accountName)
	if errors.Is(err, ErrAccountNotFound) {
		if id != nil && id.IsAdmin {
			return intersect(sc.Actions, []string{ActionPull, ActionPush, ActionDelete}), nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up account %s: %w", accountName, err)
	}

	allowed := map[string]bool{}
	username := ""
	if id != nil {
		username = id.Username
		if id.IsAdmin {
			return intersect(sc.Actions, []string{ActionPull, ActionPush, ActionDelete}), nil
		}
		for _, action := range roleActions[id.Roles[account.AuthTenantID]] {
			allowed[action] = true
		}
	}
	decision := RBACDecision{}
	if a.RBAC != nil {
		decision, err = a.RBAC(account, repoName, username, remoteIP)
		if err != nil {
			return nil, fmt.Errorf("evaluating RBAC policies of account %s: %w", accountName, err)
		}
	}
	if decision.Granted["anonymous_pull"] {
		allowed[ActionPull] = true
	}
	if id != nil {
		for _, action := range []string{ActionPull, ActionPush, ActionDelete} {
			if decision.Granted[action] {
				allowed[action] = true
			}
		}
	}
	for action := range decision.Forbidden {
		delete(allowed, action)
	}
	// Pushes into an account that is being deleted are never granted.
	if account.IsDeleting {
		delete(allowed, ActionPush)
	}
	var out []string
	for _, action := range sc.Actions {
		if allowed[action] && !contains(out, action) {
			out = append(out, action)
		}
	}
	return out, nil
}

func (a *Authorizer) accountActions(ctx context.Context, id *Identity, sc Scope) ([]string, error) {
	if id == nil {
		return nil, nil
	}
	account, err := a.Accounts(ctx, sc.Name)
	if errors.Is(err, ErrAccountNotFound) {
		if id.IsAdmin {
			return intersect(sc.Actions, []string{"view", "change"}), nil
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up account %s: %w", sc.Name, err)
	}
	if id.IsAdmin {
		return intersect(sc.Actions, []string{"view", "change"}), nil
	}
	role := id.Roles[account.AuthTenantID]
	var allowed []string
	if role.Includes(models.RoleViewer) {
		allowed = append(allowed, "view")
	}
	if role.Includes(models.RoleAdmin) {
		allowed = append(allowed, "change")
	}
	return intersect(sc.Actions, allowed), nil
}

func tenantActions(id *Identity, sc Scope) []string {
	if id == nil {
		return nil
	}
	if id.IsAdmin {
		return intersect(sc.Actions, []string{"viewquota", "changequota"})
	}
	if id.Roles[sc.Name].Includes(models.RoleViewer) {
		return intersect(sc.Actions, []string{"viewquota"})
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// intersect returns the requested actions that are allowed, in request
// order, without duplicates ("*" asks for every allowed action).
func intersect(requested, allowed []string) []string {
	var out []string
	for _, r := range requested {
		if r == "*" {
			for _, a := range allowed {
				if !contains(out, a) {
					out = append(out, a)
				}
			}
			continue
		}
		if contains(allowed, r) && !contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}
