package osvdb

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/osv-scalibr/semantic"
	"golang.org/x/mod/semver"
)

// schemeSemver is the scheme of SEMVER ranges. Other ranges compare by the
// scheme of their ecosystem, named like the ecosystem ("Alpine", "Debian").
const schemeSemver = "SEMVER"

// ecosystemBase strips the release from an ecosystem: "Alpine:v3.10" →
// "Alpine".
func ecosystemBase(ecosystem string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return base
}

var (
	// apkVersion is the syntax of Alpine package versions (and of the
	// distributions that use apk).
	apkVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)
	// dpkgVersion is the syntax of Debian package versions: an optional
	// epoch, and an upstream version that starts with a digit.
	dpkgVersion = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$`)
)

// validVersion rejects versions that the lenient parsers of the semantic
// package would accept but that are not versions of the scheme, so that
// garbage is not compared as if it were a very old version.
func validVersion(scheme, v string) bool {
	switch scheme {
	case "Go", schemeSemver:
		return semver.IsValid("v" + strings.TrimPrefix(v, "v"))
	case "Alpine", "Alpaquita", "BellSoft Hardened Containers", "Chainguard", "MinimOS", "Wolfi":
		return apkVersion.MatchString(v)
	case "Debian", "Ubuntu":
		return dpkgVersion.MatchString(v)
	default:
		return v != ""
	}
}

// parseVersion parses a version by the rules of a scheme. Errors wrap
// semantic.ErrUnsupportedEcosystem for schemes that cannot be compared and
// semantic.ErrInvalidVersion for versions that do not parse.
func parseVersion(scheme, v string) (semantic.Version, error) {
	if !validVersion(scheme, v) {
		return nil, fmt.Errorf("%w: %q in %s", semantic.ErrInvalidVersion, v, scheme)
	}
	if scheme == schemeSemver {
		return semantic.ParseSemverVersion(v), nil
	}
	parsed, err := semantic.Parse(v, scheme)
	if err != nil {
		return nil, fmt.Errorf("parsing version %q in %s: %w", v, scheme, err)
	}
	return parsed, nil
}

// normalizeListedVersion brings a version from an advisory's versions list
// into the form in which query versions are compared with it.
func normalizeListedVersion(base, v string) string {
	if base == "Go" {
		return strings.TrimPrefix(v, "v")
	}
	return v
}

// normalizeQueryVersion brings a query's version into the form used in
// advisories: Go versions without a leading "v" (or "go" for the toolchain).
func normalizeQueryVersion(q Query) string {
	v := strings.TrimSpace(q.Version)
	if ecosystemBase(q.Ecosystem) != "Go" {
		return v
	}
	if q.Name == "stdlib" || q.Name == "toolchain" {
		v = strings.TrimPrefix(v, "go")
	}
	return strings.TrimPrefix(v, "v")
}

// eventKind is the kind of a range event. The order of the constants is the
// order of events at equal versions.
type eventKind uint8

const (
	eventIntroduced eventKind = iota
	eventLastAffected
	eventFixed
)

// introducedZero is the version of an introduced event that stands for "all
// versions".
const introducedZero = "0"

type event struct {
	kind    eventKind
	version string
}

func (e event) isIntroducedZero() bool {
	return e.kind == eventIntroduced && e.version == introducedZero
}

// versionRange is a range of an affected entry, with its events sorted by
// version.
type versionRange struct {
	scheme string
	events []event
}

// compileRange turns an OSV range into a versionRange. It reports false for
// ranges that cannot be evaluated: types other than ECOSYSTEM and SEMVER,
// ecosystems without comparison rules, versions that do not parse, and
// ranges that introduce nothing.
func compileRange(base string, r osvRange, in interner) (versionRange, bool) {
	var scheme string
	switch r.Type {
	case "ECOSYSTEM":
		scheme = base
	case "SEMVER":
		scheme = schemeSemver
	default:
		return versionRange{}, false
	}
	if scheme != schemeSemver {
		if _, err := semantic.Parse("0", scheme); errors.Is(err, semantic.ErrUnsupportedEcosystem) {
			return versionRange{}, false
		}
	}
	type parsedEvent struct {
		event
		v semantic.Version // nil for introducedZero
	}
	var evs []parsedEvent
	introduces := false
	for _, e := range r.Events {
		var ev event
		switch {
		case e.Introduced != "":
			ev = event{kind: eventIntroduced, version: e.Introduced}
			introduces = true
		case e.Fixed != "":
			ev = event{kind: eventFixed, version: e.Fixed}
		case e.LastAffected != "":
			ev = event{kind: eventLastAffected, version: e.LastAffected}
		default:
			continue // limit events only matter to GIT ranges
		}
		if scheme == "Go" || scheme == schemeSemver {
			ev.version = strings.TrimPrefix(ev.version, "v")
		}
		pe := parsedEvent{event: ev}
		if !ev.isIntroducedZero() {
			v, err := parseVersion(scheme, ev.version)
			if err != nil {
				return versionRange{}, false
			}
			pe.v = v
		}
		pe.version = in.get(pe.version)
		evs = append(evs, pe)
	}
	if !introduces {
		return versionRange{}, false
	}
	slices.SortStableFunc(evs, func(a, b parsedEvent) int {
		var c int
		switch {
		case a.v == nil && b.v == nil:
			c = 0
		case a.v == nil:
			c = -1
		case b.v == nil:
			c = 1
		default:
			c, _ = a.v.Compare(b.v) // same scheme: cannot fail
		}
		return cmp.Or(c, cmp.Compare(a.kind, b.kind))
	})
	vr := versionRange{scheme: in.get(scheme), events: make([]event, len(evs))}
	for i, pe := range evs {
		vr.events[i] = pe.event
	}
	return vr, true
}

// contains evaluates the range for a version, following the OSV schema's
// algorithm: walking the events in order, an introduced event at or below v
// makes it affected, a fixed event at or below v or a last_affected event
// below v makes it unaffected. When v is affected, fix is the fixed event
// that ends its interval ("" if the interval ends with a last_affected event
// or not at all).
func (r versionRange) contains(v semantic.Version) (affected bool, fix string, err error) {
	// fixable is whether the interval that v lies in can still end with a
	// fix: not when a last_affected event at v closed it.
	fixable := false
	for _, ev := range r.events {
		if ev.isIntroducedZero() {
			affected, fixable = true, true
			continue
		}
		c, err := v.CompareStr(ev.version)
		if err != nil {
			return false, "", fmt.Errorf("comparing with %q: %w", ev.version, err)
		}
		if c < 0 {
			// This event and all after it lie above v: they change nothing.
			if affected && fixable && ev.kind == eventFixed {
				fix = ev.version
			}
			return affected, fix, nil
		}
		switch ev.kind {
		case eventIntroduced:
			affected, fixable = true, true
		case eventFixed:
			affected = false
		case eventLastAffected:
			fixable = false
			if c > 0 {
				affected = false
			}
		}
	}
	return affected, "", nil
}

// preparedQuery is a query with its version parsed by each scheme that it
// has been compared in.
type preparedQuery struct {
	base    string
	version string
	parsed  map[string]parsedVersion
}

type parsedVersion struct {
	v   semantic.Version
	err error
}

func newPreparedQuery(q Query) *preparedQuery {
	return &preparedQuery{
		base:    ecosystemBase(q.Ecosystem),
		version: normalizeQueryVersion(q),
		parsed:  make(map[string]parsedVersion, 2),
	}
}

func (pq *preparedQuery) parse(scheme string) (semantic.Version, error) {
	p, ok := pq.parsed[scheme]
	if !ok {
		p.v, p.err = parseVersion(scheme, pq.version)
		pq.parsed[scheme] = p
	}
	return p.v, p.err
}

// matches reports whether the entry affects the query's version, and the
// version that fixes it. A query version that does not parse matches
// nothing; in ecosystems whose versions cannot be compared, only the listed
// versions match.
func (pq *preparedQuery) matches(e *entry) (bool, string) {
	if _, err := pq.parse(pq.base); err != nil && !errors.Is(err, semantic.ErrUnsupportedEcosystem) {
		return false, ""
	}
	affected := slices.Contains(e.versions, pq.version)
	for _, r := range e.ranges {
		v, err := pq.parse(r.scheme)
		if err != nil {
			return false, ""
		}
		in, fix, err := r.contains(v)
		if err != nil || !in {
			continue
		}
		if fix != "" {
			return true, fix
		}
		affected = true
	}
	return affected, ""
}
