package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ParseRBACPolicies decodes and validates the `rbac_policies` JSON of an
// account (a JSON array of [RBACPolicy]). "" (no policies, as stored) and
// "null" give an empty list. Unknown fields and trailing data are refused.
// The result is in canonical form (see [ValidateRBACPolicies]). Every error
// is a *ValidationError.
func ParseRBACPolicies(s string) ([]RBACPolicy, error) {
	var policies []RBACPolicy
	if err := decodeStrict(s, &policies); err != nil {
		return nil, invalid(rbacList, -1, "", "%s", err.Error())
	}
	return ValidateRBACPolicies(policies)
}

// MarshalRBACPolicies validates the policies and encodes them canonically,
// as an account stores them: "" for no policies, else a compact JSON array
// with fields in a fixed order and permissions in canonical order. Parsing
// the result gives the same policies back.
func MarshalRBACPolicies(policies []RBACPolicy) (string, error) {
	norm, err := ValidateRBACPolicies(policies)
	if err != nil {
		return "", err
	}
	return encode(norm)
}

// ParseTagPolicies decodes and validates the `tag_policies` JSON of an
// account (a JSON array of [TagPolicy]). "" (no policies, as stored) and
// "null" give an empty list. Unknown fields and trailing data are refused.
// Every error is a *ValidationError.
func ParseTagPolicies(s string) ([]TagPolicy, error) {
	var policies []TagPolicy
	if err := decodeStrict(s, &policies); err != nil {
		return nil, invalid(tagList, -1, "", "%s", err.Error())
	}
	return ValidateTagPolicies(policies)
}

// MarshalTagPolicies validates the policies and encodes them canonically,
// as an account stores them: "" for no policies, else a compact JSON array
// with fields in a fixed order and false flags left out.
func MarshalTagPolicies(policies []TagPolicy) (string, error) {
	norm, err := ValidateTagPolicies(policies)
	if err != nil {
		return "", err
	}
	return encode(norm)
}

// ParseGCPolicies decodes and validates the `gc_policies` JSON of an
// account (a JSON array of [GCPolicy]). "" and "null" give an empty list.
// Unknown fields and trailing data are refused. Every error is a
// *ValidationError.
func ParseGCPolicies(s string) ([]GCPolicy, error) {
	var policies []GCPolicy
	if err := decodeStrict(s, &policies); err != nil {
		return nil, invalid(gcList, -1, "", "%s", err.Error())
	}
	return ValidateGCPolicies(policies)
}

// MarshalGCPolicies validates the policies and encodes them canonically.
func MarshalGCPolicies(policies []GCPolicy) (string, error) {
	norm, err := ValidateGCPolicies(policies)
	if err != nil {
		return "", err
	}
	return encode(norm)
}

// decodeStrict decodes one JSON value from s into v, refusing unknown fields
// and trailing data. An empty (or all-whitespace) s leaves v untouched.
func decodeStrict(s string, v any) error {
	if len(bytes.TrimSpace([]byte(s))) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: unexpected data after the list")
	}
	return nil
}

// encode renders a policy list compactly, or "" when it is empty.
func encode[T any](policies []T) (string, error) {
	if len(policies) == 0 {
		return "", nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(policies); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(buf.Bytes(), "\n")), nil
}
