// Package policy holds the per-account policies of Keppel as pure logic:
// RBAC policies (who may pull, push or delete in which repositories), tag
// policies (which tags may not be overwritten, deleted or pushed), and the
// manifest validation rule (a CEL expression that every pushed manifest must
// satisfy).
//
// The JSON shape of the policies is the one of SAP Keppel's management API
// (`rbac_policies`, `tag_policies`, `validation.rule_for_manifest`), so that
// existing clients and account definitions keep working.
//
// Repository names are always given WITHOUT the leading account name: in
// the account "library", the repository "library/alpine/edge" is "alpine/edge".
// Every regular expression of a policy uses Go's syntax (RE2) and is anchored
// at both ends: "library/.*" matches "library/a", but neither "xlibrary/a"
// nor "a/library/b".
//
// The package does no I/O: callers load the JSON from the account, parse it
// with [ParseRBACPolicies] and [ParseTagPolicies] (which also validate), and
// evaluate it per request.
package policy
