package policy_test

import (
	"errors"
	"strings"
	"testing"

	"keppel/internal/policy"
)

func TestValidateScanPolicies(t *testing.T) {
	ok := policy.ScanPolicy{MatchRepository: ".*", MatchVulnerabilityID: "CVE-.*",
		Action: policy.ScanPolicyAction{Assessment: "risk accepted", Ignore: true}}
	for _, c := range []struct {
		name   string
		mutate func(p *policy.ScanPolicy)
		field  string // "" for valid
	}{
		{"valid ignore", func(*policy.ScanPolicy) {}, ""},
		{"valid severity", func(p *policy.ScanPolicy) { p.Action.Ignore, p.Action.Severity = false, "Low" }, ""},
		{"no match_repository", func(p *policy.ScanPolicy) { p.MatchRepository = "" }, "match_repository"},
		{"no match_vulnerability_id", func(p *policy.ScanPolicy) { p.MatchVulnerabilityID = "" }, "match_vulnerability_id"},
		{"bad regex", func(p *policy.ScanPolicy) { p.ExceptVulnerabilityID = "CVE-(" }, "except_vulnerability_id"},
		{"escaping regex", func(p *policy.ScanPolicy) { p.ExceptRepository = "a)|(b" }, "except_repository"},
		{"no assessment", func(p *policy.ScanPolicy) { p.Action.Assessment = "" }, "action.assessment"},
		{"long assessment", func(p *policy.ScanPolicy) { p.Action.Assessment = strings.Repeat("x", 1025) }, "action.assessment"},
		{"no action", func(p *policy.ScanPolicy) { p.Action.Ignore = false }, "action"},
		{"both actions", func(p *policy.ScanPolicy) { p.Action.Severity = "High" }, "action"},
		{"unknown severity", func(p *policy.ScanPolicy) { p.Action.Ignore, p.Action.Severity = false, "Defcon1" }, "action.severity"},
		{"clean is not a severity", func(p *policy.ScanPolicy) { p.Action.Ignore, p.Action.Severity = false, "Clean" }, "action.severity"},
	} {
		p := ok
		c.mutate(&p)
		_, err := policy.ValidateScanPolicies([]policy.ScanPolicy{ok, p})
		var verr *policy.ValidationError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.field != "" && (!errors.As(err, &verr) || !strings.Contains(err.Error(), "security_scan_policies[1]") || !strings.Contains(err.Error(), c.field)):
			t.Errorf("%s: %v, want an error about security_scan_policies[1].%s", c.name, err, c.field)
		}
	}
}

func TestApplyScanPolicies(t *testing.T) {
	policies, err := policy.ParseScanPolicies(`[
		{"match_repository":".*","match_vulnerability_id":".*","except_fix_released":true,
		 "action":{"assessment":"risk accepted: vulnerabilities without an available fix are not actionable","ignore":true}},
		{"managed_by_user":"alice","match_repository":"my-python-app|my-other-image","match_vulnerability_id":"CVE-2022-40897",
		 "action":{"severity":"Low","assessment":"adjusted severity: python-setuptools cannot be invoked through user requests"}},
		{"match_repository":"legacy/.*","except_repository":"legacy/keep","match_vulnerability_id":"CVE-.*","except_vulnerability_id":"CVE-2014-0160",
		 "action":{"severity":"Critical","assessment":"legacy images must go"}}
	]`)
	if err != nil {
		t.Fatal(err)
	}
	findings := []policy.ScanFinding{
		{ID: "CVE-2022-40897", Severity: "High", FixReleased: true},
		{ID: "CVE-2023-0001", Severity: "Medium", FixReleased: false},
		{ID: "CVE-2014-0160", Severity: "High", FixReleased: true},
		{ID: "GHSA-xxxx", Severity: "Low", FixReleased: true},
	}
	for _, c := range []struct {
		repo string
		want []string
	}{
		// the unfixed one is ignored everywhere; the setuptools one is
		// re-rated only in the named repositories
		{"my-python-app", []string{"Low", "", "High", "Low"}},
		{"my-python-app-2", []string{"High", "", "High", "Low"}},
		{"other", []string{"High", "", "High", "Low"}},
		// legacy repositories rate every CVE but Heartbleed as critical,
		// except legacy/keep; the first policy still wins for unfixed ones
		{"legacy/old", []string{"Critical", "", "High", "Low"}},
		{"legacy/keep", []string{"High", "", "High", "Low"}},
	} {
		got := policy.ApplyScanPolicies(policies, c.repo, findings)
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %q, want %q", c.repo, got, c.want)
		}
	}
	if got := policy.ApplyScanPolicies(nil, "x", findings); strings.Join(got, ",") != "High,Medium,High,Low" {
		t.Errorf("without policies: %q", got)
	}
	if _, err := policy.ParseScanPolicies(`[{"match_repository":".*","match_vulnerability_id":".*","action":{"assessment":"x","ignore":true},"colour":"red"}]`); err == nil {
		t.Error("an unknown field was accepted")
	}
	if ps, err := policy.ParseScanPolicies(""); err != nil || len(ps) != 0 {
		t.Errorf("empty: %v, %v", ps, err)
	}
}
