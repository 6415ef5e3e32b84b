package trivy

import (
	"encoding/json"
	"fmt"

	"keppel/internal/scan"
)

// Report is the part of Trivy's JSON report that the scanner reads.
type Report struct {
	Metadata struct {
		OS *struct {
			Family string `json:"Family"`
			Name   string `json:"Name"`
			EOSL   bool   `json:"EOSL"`
		} `json:"OS"`
	} `json:"Metadata"`
	Results []struct {
		Target          string          `json:"Target"`
		Vulnerabilities []Vulnerability `json:"Vulnerabilities"`
	} `json:"Results"`
}

// Vulnerability is one vulnerability in Trivy's report.
type Vulnerability struct {
	VulnerabilityID  string `json:"VulnerabilityID"`
	PkgName          string `json:"PkgName"`
	InstalledVersion string `json:"InstalledVersion"`
	FixedVersion     string `json:"FixedVersion"`
	Severity         string `json:"Severity"`
}

// severities maps Trivy's severities to statuses.
var severities = map[string]scan.Status{
	"UNKNOWN": scan.Unknown, "LOW": scan.Low, "MEDIUM": scan.Medium, "HIGH": scan.High, "CRITICAL": scan.Critical,
}

// ParseReport reads Trivy's JSON report: the status is the highest
// severity found (Clean for none), Rotten if the distribution is past its
// end of life; the report is kept as it is.
func ParseReport(buf []byte) (scan.Result, error) {
	var r Report
	if err := json.Unmarshal(buf, &r); err != nil {
		return scan.Result{}, fmt.Errorf("reading the Trivy report: %w", err)
	}
	result := scan.Result{Status: scan.Clean, Report: json.RawMessage(buf)}
	for _, res := range r.Results {
		for _, v := range res.Vulnerabilities {
			if v.VulnerabilityID == "" {
				return scan.Result{}, fmt.Errorf("reading the Trivy report: a vulnerability of %s in %s has no ID", v.PkgName, res.Target)
			}
			sev, ok := severities[v.Severity]
			if !ok {
				sev = scan.Unknown
			}
			if scan.Worse(sev, result.Status) {
				result.Status = sev
			}
			result.Findings = append(result.Findings, scan.Finding{ID: v.VulnerabilityID, Severity: sev, FixReleased: v.FixedVersion != ""})
		}
	}
	if r.Metadata.OS != nil && r.Metadata.OS.EOSL {
		result.Status = scan.Rotten
	}
	return result, nil
}
