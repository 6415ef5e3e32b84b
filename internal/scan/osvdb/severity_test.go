package osvdb

import (
	"encoding/json"
	"testing"
)

func TestCVSSScore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ, vector string
		want        float64
		ok          bool
	}{
		{"CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, true},
		{"CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, true},
		{"CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H", 5.5, true},
		{"CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, true},
		{"CVSS_V3", "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N", 3.7, true},
		{"CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0, true},
		{"CVSS_V3", " CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N ", 7.5, true},
		{"CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3, true},
		{"CVSS_V3", "CVSS:3.1/AV:N", 0, false},
		{"CVSS_V3", "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P", 0, false},
		{"CVSS_V3", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 0, false},
		{"CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P", 0, false},
		{"Ubuntu", "high", 0, false},
	}
	for _, tc := range cases {
		got, ok := cvssScore(osvSeverity{Type: tc.typ, Score: tc.vector})
		if got != tc.want || ok != tc.ok {
			t.Errorf("cvssScore(%s %q) = %v, %t; want %v, %t", tc.typ, tc.vector, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSeverityOfScore(t *testing.T) {
	t.Parallel()
	cases := map[float64]Severity{
		0: SeverityUnknown, 0.1: SeverityLow, 3.9: SeverityLow, 4.0: SeverityMedium, 6.9: SeverityMedium,
		7.0: SeverityHigh, 8.9: SeverityHigh, 9.0: SeverityCritical, 10: SeverityCritical,
	}
	for score, want := range cases {
		if got := severityOfScore(score); got != want {
			t.Errorf("severityOfScore(%v) = %v, want %v", score, got, want)
		}
	}
}

func TestSeverityLabel(t *testing.T) {
	t.Parallel()
	cases := map[string]Severity{
		``:                           SeverityUnknown,
		`null`:                       SeverityUnknown,
		`[]`:                         SeverityUnknown,
		`{}`:                         SeverityUnknown,
		`{"severity": 3}`:            SeverityUnknown,
		`{"severity": "unheard of"}`: SeverityUnknown,
		`{"severity": "low"}`:        SeverityLow,
		`{"severity": "MODERATE"}`:   SeverityMedium,
		`{"severity": "Medium"}`:     SeverityMedium,
		`{"severity": " HIGH "}`:     SeverityHigh,
		`{"severity": "critical"}`:   SeverityCritical,
	}
	for raw, want := range cases {
		if got := severityLabel(json.RawMessage(raw)); got != want {
			t.Errorf("severityLabel(%s) = %v, want %v", raw, got, want)
		}
	}
}

func TestSeverityOf(t *testing.T) {
	t.Parallel()
	low := osvSeverity{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"}
	critical := osvSeverity{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
	broken := osvSeverity{Type: "CVSS_V3", Score: "CVSS:3.1/broken"}
	none := osvSeverity{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"}
	cases := []struct {
		name      string
		vectors   []osvSeverity
		labels    []Severity
		wantSev   Severity
		wantScore float64
	}{
		{"nothing", nil, nil, SeverityUnknown, 0},
		{"a vector", []osvSeverity{low}, nil, SeverityLow, 3.7},
		{"the highest vector", []osvSeverity{low, critical, broken}, nil, SeverityCritical, 9.8},
		{"a vector beats labels", []osvSeverity{low}, []Severity{SeverityCritical}, SeverityLow, 3.7},
		{"the highest label", nil, []Severity{SeverityMedium, SeverityUnknown, SeverityHigh}, SeverityHigh, 0},
		{"broken vectors fall back to labels", []osvSeverity{broken}, []Severity{SeverityMedium}, SeverityMedium, 0},
		{"a zero score falls back to labels", []osvSeverity{none}, []Severity{SeverityLow}, SeverityLow, 0},
	}
	for _, tc := range cases {
		sev, score := severityOf(tc.vectors, tc.labels...)
		if sev != tc.wantSev || score != tc.wantScore {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, sev, score, tc.wantSev, tc.wantScore)
		}
	}
}

// An affected entry's own severity applies to that package only.
func TestSeverityPerAffectedPackage(t *testing.T) {
	t.Parallel()
	db := dbFromDocuments(t, "Go", `{"id": "TEST-PER-PACKAGE",
		"database_specific": {"severity": "LOW"},
		"affected": [
			{"package": {"ecosystem": "Go", "name": "a"}, "versions": ["1.0.0"],
			 "ecosystem_specific": {"severity": "HIGH"}},
			{"package": {"ecosystem": "Go", "name": "b"}, "versions": ["1.0.0"]},
			{"package": {"ecosystem": "Go", "name": "c"}, "versions": ["1.0.0"],
			 "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]}
		]}`)
	got := describeAll(db.Match([]Query{{"Go", "a", "1.0.0"}, {"Go", "b", "1.0.0"}, {"Go", "c", "1.0.0"}}))
	want := []string{
		"TEST-PER-PACKAGE fix= sev=High score=0.0",
		"TEST-PER-PACKAGE fix= sev=Low score=0.0",
		"TEST-PER-PACKAGE fix= sev=High score=7.5",
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("package %d: got %q, want %q", i, got[i], want[i])
		}
	}
}
