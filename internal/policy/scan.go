package policy

import (
	"slices"
	"unicode/utf8"
)

// ScanPolicy adjusts how the vulnerabilities found in the images of one
// account count for their status. It is an element of the account's
// `security_scan_policies` (SAP Keppel's format).
//
// A policy applies to a vulnerability of an image in a repository if
// MatchRepository matches the repository name (without the account name)
// and ExceptRepository does not, MatchVulnerabilityID matches the
// vulnerability's ID and ExceptVulnerabilityID does not, and, with
// ExceptFixReleased, no fixed version has been released. All regexes are
// anchored at both ends. Of several matching policies, the first one wins.
type ScanPolicy struct {
	// ManagedByUser, if set, is the only user who may change the policy.
	ManagedByUser         string `json:"managed_by_user,omitempty"`
	MatchRepository       string `json:"match_repository"`
	ExceptRepository      string `json:"except_repository,omitempty"`
	MatchVulnerabilityID  string `json:"match_vulnerability_id"`
	ExceptVulnerabilityID string `json:"except_vulnerability_id,omitempty"`
	// ExceptFixReleased limits the policy to vulnerabilities without a
	// released fix.
	ExceptFixReleased bool             `json:"except_fix_released,omitempty"`
	Action            ScanPolicyAction `json:"action"`
}

// ScanPolicyAction is what a scan policy does to a matching vulnerability.
type ScanPolicyAction struct {
	// Assessment says why (required, at most 1 KiB).
	Assessment string `json:"assessment"`
	// Ignore makes the vulnerability not count at all.
	Ignore bool `json:"ignore,omitempty"`
	// Severity makes it count with this severity: Low, Medium, High or
	// Critical.
	Severity string `json:"severity,omitempty"`
}

const scanList = "security_scan_policies"

// maxAssessment bounds action.assessment.
const maxAssessment = 1024

// ScanSeverities are the severities that action.severity may set.
var ScanSeverities = []string{"Low", "Medium", "High", "Critical"}

// Matches reports whether the policy applies to the vulnerability id of an
// image in repo (the repository name without the account name);
// fixReleased says whether a fixed version has been released. Invalid
// regexes (which validation refuses) match nothing.
func (p ScanPolicy) Matches(repo, id string, fixReleased bool) bool {
	if !matchAnchored(p.MatchRepository, repo) || (p.ExceptRepository != "" && matchAnchored(p.ExceptRepository, repo)) {
		return false
	}
	if !matchAnchored(p.MatchVulnerabilityID, id) || (p.ExceptVulnerabilityID != "" && matchAnchored(p.ExceptVulnerabilityID, id)) {
		return false
	}
	return !p.ExceptFixReleased || !fixReleased
}

// ValidateScanPolicies checks the policies and returns them in a new slice,
// or the first problem found as a *ValidationError: every policy needs
// "match_repository", "match_vulnerability_id" and an action with an
// assessment and exactly one of "ignore" and "severity", and all its
// regexes must compile.
func ValidateScanPolicies(policies []ScanPolicy) ([]ScanPolicy, error) {
	for i, p := range policies {
		if p.MatchRepository == "" {
			return nil, invalid(scanList, i, "match_repository", `is required (use ".*" for all repositories)`)
		}
		if p.MatchVulnerabilityID == "" {
			return nil, invalid(scanList, i, "match_vulnerability_id", `is required (use ".*" for all vulnerabilities)`)
		}
		for _, f := range []struct{ name, value string }{
			{"match_repository", p.MatchRepository},
			{"except_repository", p.ExceptRepository},
			{"match_vulnerability_id", p.MatchVulnerabilityID},
			{"except_vulnerability_id", p.ExceptVulnerabilityID},
		} {
			if f.value == "" {
				continue
			}
			if msg := validateRegex(f.value); msg != "" {
				return nil, invalid(scanList, i, f.name, "%s", msg)
			}
		}
		a := p.Action
		switch {
		case a.Assessment == "":
			return nil, invalid(scanList, i, "action.assessment", "is required: say why the policy exists")
		case len(a.Assessment) > maxAssessment || !utf8.ValidString(a.Assessment):
			return nil, invalid(scanList, i, "action.assessment", "must be valid UTF-8 of at most %d bytes", maxAssessment)
		case a.Ignore == (a.Severity != ""):
			return nil, invalid(scanList, i, "action", `needs exactly one of "ignore": true and "severity"`)
		case a.Severity != "" && !slices.Contains(ScanSeverities, a.Severity):
			return nil, invalid(scanList, i, "action.severity", "must be one of Low, Medium, High, Critical, not %q", a.Severity)
		}
	}
	out := make([]ScanPolicy, len(policies))
	copy(out, policies)
	return out, nil
}

// ScanFinding is a vulnerability as scan policies see it.
type ScanFinding struct {
	ID string
	// Severity is the scanner's: Unknown, Low, Medium, High or Critical.
	Severity    string
	FixReleased bool
}

// ApplyScanPolicies returns the severity with which each finding counts
// for an image in repo: its own, the severity of the first matching
// policy, or "" if that policy ignores it.
func ApplyScanPolicies(policies []ScanPolicy, repo string, findings []ScanFinding) []string {
	out := make([]string, len(findings))
	for i, f := range findings {
		out[i] = f.Severity
		for _, p := range policies {
			if !p.Matches(repo, f.ID, f.FixReleased) {
				continue
			}
			if p.Action.Ignore {
				out[i] = ""
			} else {
				out[i] = p.Action.Severity
			}
			break
		}
	}
	return out
}

// ParseScanPolicies decodes and validates the `security_scan_policies`
// JSON of an account (a JSON array of [ScanPolicy]). "" and "null" give an
// empty list. Unknown fields and trailing data are refused. Every error is
// a *ValidationError.
func ParseScanPolicies(s string) ([]ScanPolicy, error) {
	var policies []ScanPolicy
	if err := decodeStrict(s, &policies); err != nil {
		return nil, invalid(scanList, -1, "", "%s", err.Error())
	}
	return ValidateScanPolicies(policies)
}

// MarshalScanPolicies validates the policies and encodes them as an
// account stores them ("" for none).
func MarshalScanPolicies(policies []ScanPolicy) (string, error) {
	norm, err := ValidateScanPolicies(policies)
	if err != nil {
		return "", err
	}
	return encode(norm)
}
