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
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	policies, err := policy.ParseRBACPolicies(string(raw))
	if err != nil {
		return "", errcode.New(errcode.BadRequest, "account.%s", err.Error())
	}
	if len(policies) == 0 {
		return "", nil
	}
	out, err := policy.MarshalRBACPolicies(policies)
	if err != nil {
		return "", errcode.New(errcode.BadRequest, "account.rbac_policies: %s", err.Error())
	}
	return out, nil
}

// validateTagPolicies checks the tag_policies of a PUT request and returns
// their canonical JSON ("" for none).
func validateTagPolicies(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	policies, err := policy.ParseTagPolicies(string(raw))
	if err != nil {
		return "", errcode.New(errcode.BadRequest, "account.%s", err.Error())
	}
	if len(policies) == 0 {
		return "", nil
	}
	out, err := policy.MarshalTagPolicies(policies)
	if err != nil {
		return "", errcode.New(errcode.BadRequest, "account.tag_policies: %s", err.Error())
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
