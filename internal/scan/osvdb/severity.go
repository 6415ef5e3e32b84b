package osvdb

import (
	"encoding/json"
	"strings"

	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// severityOf returns the severity of an affected package: from the highest
// CVSS base score among the vectors if one could be computed, else from the
// most severe of the labels.
func severityOf(vectors []osvSeverity, labels ...Severity) (Severity, float64) {
	var score float64
	for _, v := range vectors {
		if s, ok := cvssScore(v); ok {
			score = max(score, s)
		}
	}
	if score > 0 {
		return severityOfScore(score), score
	}
	best := SeverityUnknown
	for _, l := range labels {
		best = max(best, l)
	}
	return best, 0
}

// cvssScore computes the base score of a CVSS_V3 or CVSS_V4 vector. Other
// types and vectors that do not parse give false.
func cvssScore(s osvSeverity) (float64, bool) {
	vector := strings.TrimSpace(s.Score)
	switch s.Type {
	case "CVSS_V3":
		switch {
		case strings.HasPrefix(vector, "CVSS:3.1/"):
			c, err := gocvss31.ParseVector(vector)
			if err != nil {
				return 0, false
			}
			return c.BaseScore(), true
		case strings.HasPrefix(vector, "CVSS:3.0/"):
			c, err := gocvss30.ParseVector(vector)
			if err != nil {
				return 0, false
			}
			return c.BaseScore(), true
		}
	case "CVSS_V4":
		c, err := gocvss40.ParseVector(vector)
		if err != nil {
			return 0, false
		}
		return c.Score(), true
	}
	return 0, false
}

// severityOfScore is the qualitative rating of a CVSS score.
func severityOfScore(score float64) Severity {
	switch {
	case score >= 9.0:
		return SeverityCritical
	case score >= 7.0:
		return SeverityHigh
	case score >= 4.0:
		return SeverityMedium
	case score > 0:
		return SeverityLow
	default:
		return SeverityUnknown
	}
}

// severityLabel reads the "severity" string of a database_specific or
// ecosystem_specific object. Anything else (no object, no such key, a value
// that is not a string, an unknown label) gives SeverityUnknown.
func severityLabel(raw json.RawMessage) Severity {
	if len(raw) == 0 {
		return SeverityUnknown
	}
	var obj struct {
		Severity json.RawMessage `json:"severity"`
	}
	if json.Unmarshal(raw, &obj) != nil || len(obj.Severity) == 0 {
		return SeverityUnknown
	}
	var label string
	if json.Unmarshal(obj.Severity, &label) != nil {
		return SeverityUnknown
	}
	return parseSeverityLabel(label)
}

// parseSeverityLabel maps the labels that advisory databases use.
func parseSeverityLabel(label string) Severity {
	switch strings.ToUpper(strings.TrimSpace(label)) {
	case "LOW":
		return SeverityLow
	case "MODERATE", "MEDIUM":
		return SeverityMedium
	case "HIGH":
		return SeverityHigh
	case "CRITICAL":
		return SeverityCritical
	default:
		return SeverityUnknown
	}
}
