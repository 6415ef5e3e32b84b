// Package auth implements the Docker token flow: scopes, Ed25519-signed JWTs
// carrying the granted scopes, their verification, the credential-driver
// interface, and the decision which of the requested scopes a user gets.
package auth

import (
	"slices"
	"strings"
)

// Actions that can be granted on a repository.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
)

// Scope is one access request or grant, as in the Docker token spec:
// "<type>:<name>:<action>,<action>".
type Scope struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// String renders the scope in the wire format.
func (s Scope) String() string {
	return s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
}

// Allows reports whether the scope grants action on the resource.
func (s Scope) Allows(typ, name, action string) bool {
	return s.Type == typ && s.Name == name && (slices.Contains(s.Actions, action) || slices.Contains(s.Actions, "*"))
}

// ParseScope parses one scope. Resource names may contain colons (e.g. a
// registry host with a port), so the type is before the first colon and
// the actions after the last one.
func ParseScope(s string) (Scope, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Scope{}, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 || typ == "" {
		return Scope{}, false
	}
	name, actions := rest[:i], rest[i+1:]
	if name == "" || actions == "" {
		return Scope{}, false
	}
	sc := Scope{Type: typ, Name: name}
	for _, a := range strings.Split(actions, ",") {
		if a != "" && !slices.Contains(sc.Actions, a) {
			sc.Actions = append(sc.Actions, a)
		}
	}
	return sc, len(sc.Actions) > 0
}

// ParseScopes parses the scope query parameters of a token request. Each
// parameter may hold several space-separated scopes; unparsable ones are
// ignored, as the token spec asks.
func ParseScopes(params []string) []Scope {
	var out []Scope
	for _, p := range params {
		for _, field := range strings.Fields(p) {
			if sc, ok := ParseScope(field); ok {
				out = append(out, sc)
			}
		}
	}
	return out
}

// RepositoryScope builds a scope for a repository.
func RepositoryScope(repo string, actions ...string) Scope {
	return Scope{Type: "repository", Name: repo, Actions: actions}
}

// CatalogScope is the scope that lists repositories.
var CatalogScope = Scope{Type: "registry", Name: "catalog", Actions: []string{"*"}}

// Grants is the set of scopes a token carries.
type Grants []Scope

// Allows reports whether any scope of the set allows action on the resource.
func (g Grants) Allows(typ, name, action string) bool {
	for _, s := range g {
		if s.Allows(typ, name, action) {
			return true
		}
	}
	return false
}

// BearerToken returns the token of an "Authorization: Bearer …" header
// value (the scheme is matched case-insensitively, as HTTP says), or "".
func BearerToken(authorization string) (string, bool) {
	scheme, token, found := strings.Cut(authorization, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}
