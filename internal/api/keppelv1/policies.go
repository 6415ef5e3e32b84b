package keppelv1

import (
	"bytes"
	"encoding/json"

	"keppel/internal/errcode"
	"keppel/internal/policy"
)

// validateRBAC checks the rbac_policies of a PUT request and returns their
// canonical JSON ("" for none).
func validateRBAC(raw json.RawMessage) (string, error) {
	return validatePolicies(raw, "rbac_policies", policy.ParseRBACPolicies, policy.MarshalRBACPolicies)
}

// validateTagPolicies checks the tag_policies of a PUT request and returns
// their canonical JSON ("" for none).
func validateTagPolicies(raw json.RawMessage) (string, error) {
	return validatePolicies(raw, "tag_policies", policy.ParseTagPolicies, policy.MarshalTagPolicies)
}

// validateGCPolicies checks the gc_policies of a PUT request and returns
// their canonical JSON ("" for none).
func validateGCPolicies(raw json.RawMessage) (string, error) {
	return validatePolicies(raw, "gc_policies", policy.ParseGCPolicies, policy.MarshalGCPolicies)
}

// validatePolicies parses a policy list of a PUT request (absent or null:
// none) and returns its canonical JSON ("" for none), or a 400 error that
// names the list, the policy and the field.
func validatePolicies[T any](raw json.RawMessage, list string, parse func(string) ([]T, error), marshal func([]T) (string, error)) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	policies, err := parse(string(raw))
	if err != nil {
		return "", errcode.New(errcode.BadRequest, "account.%s", err.Error())
	}
	if len(policies) == 0 {
		return "", nil
	}
	out, err := marshal(policies)
	if err != nil {
		return "", errcode.New(errcode.BadRequest, "account.%s: %s", list, err.Error())
	}
	return out, nil
}

// validateRule checks that a manifest validation rule compiles.
func validateRule(expr string) error {
	if _, err := policy.CompileRule(expr); err != nil {
		return errcode.New(errcode.BadRequest, "account.validation.rule_for_manifest: %s", err.Error())
	}
	return nil
}
