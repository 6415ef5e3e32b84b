package osvdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// osvDocument is the part of an OSV document that the database uses.
type osvDocument struct {
	ID               string          `json:"id"`
	Aliases          []string        `json:"aliases"`
	Upstream         []string        `json:"upstream"`
	Summary          string          `json:"summary"`
	Details          string          `json:"details"`
	Withdrawn        string          `json:"withdrawn"`
	Severity         []osvSeverity   `json:"severity"`
	Affected         []osvAffected   `json:"affected"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type osvSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type osvAffected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Severity          []osvSeverity   `json:"severity"`
	Ranges            []osvRange      `json:"ranges"`
	Versions          []string        `json:"versions"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
	DatabaseSpecific  json.RawMessage `json:"database_specific"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Events []osvEvent `json:"events"`
}

type osvEvent struct {
	Introduced   string `json:"introduced"`
	Fixed        string `json:"fixed"`
	LastAffected string `json:"last_affected"`
	Limit        string `json:"limit"`
}

// errNoID is returned for a document without an ID.
var errNoID = errors.New("document has no id")

// decodeDocument parses one OSV document.
func decodeDocument(data []byte) (*osvDocument, error) {
	var doc osvDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("decoding OSV document: %w", err)
	}
	if doc.ID == "" {
		return nil, errNoID
	}
	return &doc, nil
}

// maxSummaryLength bounds a summary taken from an advisory's details.
const maxSummaryLength = 200

// summaryOf returns the document's summary, or else the first line of its
// details, shortened to maxSummaryLength bytes at a rune boundary.
func summaryOf(doc *osvDocument) string {
	if s := strings.TrimSpace(doc.Summary); s != "" {
		return s
	}
	s := strings.TrimSpace(doc.Details)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) > maxSummaryLength {
		cut := maxSummaryLength
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// compiled is an advisory in the form in which the database keeps it.
type compiled struct {
	id        string
	withdrawn bool
	entries   []compiledEntry
}

type compiledEntry struct {
	key packageKey
	e   *entry
}

// interner shares equal strings between the advisories of one load.
type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

// compile reduces a document to what matching needs. Affected entries
// without a package, and ranges that cannot be evaluated (GIT ranges, ranges
// in ecosystems whose versions cannot be compared, ranges with versions that
// do not parse), are left out.
func compile(doc *osvDocument, in interner) *compiled {
	c := &compiled{id: doc.ID, withdrawn: doc.Withdrawn != ""}
	if c.withdrawn {
		return c
	}
	adv := &advisory{
		id:      in.get(doc.ID),
		aliases: aliasesOf(doc, in),
		summary: summaryOf(doc),
	}
	topLabel := severityLabel(doc.DatabaseSpecific)
	for _, a := range doc.Affected {
		if a.Package.Ecosystem == "" || a.Package.Name == "" {
			continue
		}
		e := &entry{adv: adv}
		e.severity, e.score = severityOf(
			slices.Concat(doc.Severity, a.Severity),
			topLabel,
			severityLabel(a.EcosystemSpecific),
			severityLabel(a.DatabaseSpecific),
		)
		base := ecosystemBase(a.Package.Ecosystem)
		for _, v := range a.Versions {
			e.versions = append(e.versions, in.get(normalizeListedVersion(base, v)))
		}
		for _, r := range a.Ranges {
			if vr, ok := compileRange(base, r, in); ok {
				e.ranges = append(e.ranges, vr)
			}
		}
		if len(e.versions) == 0 && len(e.ranges) == 0 {
			continue
		}
		c.entries = append(c.entries, compiledEntry{
			key: packageKey{ecosystem: in.get(a.Package.Ecosystem), name: in.get(a.Package.Name)},
			e:   e,
		})
	}
	return c
}

// aliasesOf returns the document's aliases and upstream IDs, sorted and
// without duplicates or the document's own ID.
func aliasesOf(doc *osvDocument, in interner) []string {
	var out []string
	for _, a := range slices.Concat(doc.Aliases, doc.Upstream) {
		if a != "" && a != doc.ID {
			out = append(out, in.get(a))
		}
	}
	slices.Sort(out)
	return slices.Clip(slices.Compact(out))
}
