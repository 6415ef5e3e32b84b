package osvdb

import (
	"strings"
	"testing"
)

// ev builds range events from "introduced=0", "fixed=1.2.3", "last_affected=1.4.0".
func ev(specs ...string) []osvEvent {
	var out []osvEvent
	for _, s := range specs {
		kind, v, _ := strings.Cut(s, "=")
		switch kind {
		case "introduced":
			out = append(out, osvEvent{Introduced: v})
		case "fixed":
			out = append(out, osvEvent{Fixed: v})
		case "last_affected":
			out = append(out, osvEvent{LastAffected: v})
		case "limit":
			out = append(out, osvEvent{Limit: v})
		default:
			panic(s)
		}
	}
	return out
}

func TestRangeContains(t *testing.T) {
	t.Parallel()
	type check struct {
		version  string
		affected bool
		fix      string
	}
	cases := []struct {
		name   string
		eco    string
		typ    string
		events []osvEvent
		checks []check
	}{
		{
			name:   "introduced 0, fixed",
			eco:    "Alpine",
			typ:    "ECOSYSTEM",
			events: ev("introduced=0", "fixed=1.1.22-r4"),
			checks: []check{
				{"0.1", true, "1.1.22-r4"},
				{"1.1.22-r3", true, "1.1.22-r4"},
				{"1.1.22", true, "1.1.22-r4"},
				{"1.1.22-r4", false, ""},
				{"1.1.22a-r0", false, ""},
				{"1.1.24-r2", false, ""},
			},
		},
		{
			name:   "Alpine suffixes",
			eco:    "Alpine",
			typ:    "ECOSYSTEM",
			events: ev("introduced=1.2.0_rc1", "fixed=1.2.0-r1"),
			checks: []check{
				{"1.2.0_beta3", false, ""},
				{"1.2.0_rc1", true, "1.2.0-r1"},
				{"1.2.0_rc2-r5", true, "1.2.0-r1"},
				{"1.2.0-r0", true, "1.2.0-r1"},
				{"1.2.0-r1", false, ""},
				{"1.2.0_p1-r0", false, ""},
			},
		},
		{
			name:   "two pairs, given out of order",
			eco:    "Go",
			typ:    "SEMVER",
			events: ev("fixed=1.19.1", "introduced=1.19.0", "fixed=1.18.6", "introduced=0"),
			checks: []check{
				{"1.0.0", true, "1.18.6"},
				{"1.18.6", false, ""},
				{"1.18.10", false, ""},
				{"1.19.0-rc.1", false, ""},
				{"1.19.0", true, "1.19.1"},
				{"1.19.1", false, ""},
				{"1.20.0", false, ""},
			},
		},
		{
			name:   "introduced without a fix",
			eco:    "Debian",
			typ:    "ECOSYSTEM",
			events: ev("introduced=1.1.0"),
			checks: []check{
				{"1.0.2u-1", false, ""},
				{"1.1.0", true, ""},
				{"1:0.1", true, ""},
			},
		},
		{
			name:   "Debian revisions and tildes",
			eco:    "Debian",
			typ:    "ECOSYSTEM",
			events: ev("introduced=0", "fixed=1.1.1d-0+deb10u1"),
			checks: []check{
				{"1.1.1c-1", true, "1.1.1d-0+deb10u1"},
				{"1.1.1d-0~rc1", true, "1.1.1d-0+deb10u1"},
				{"1.1.1d-0", true, "1.1.1d-0+deb10u1"},
				{"1.1.1d-0+deb10u1", false, ""},
				{"1.1.1d-0+deb10u1~1", true, "1.1.1d-0+deb10u1"},
			},
		},
		{
			name:   "last_affected, then another introduced with a fix",
			eco:    "Go",
			typ:    "SEMVER",
			events: ev("introduced=1.0.0", "last_affected=1.4.0", "introduced=2.0.0", "fixed=2.1.0", "limit=3.0.0"),
			checks: []check{
				{"0.9.0", false, ""},
				{"1.4.0", true, ""},
				{"1.4.1", false, ""},
				{"2.0.5", true, "2.1.0"},
				{"2.1.0", false, ""},
			},
		},
		{
			name:   "a fix after last_affected does not fix what is not affected",
			eco:    "Go",
			typ:    "SEMVER",
			events: ev("introduced=0", "last_affected=1.4.0", "fixed=2.0.0"),
			checks: []check{
				{"1.4.0", true, ""},
				{"1.5.0", false, ""},
				{"2.0.0", false, ""},
			},
		},
		{
			name:   "introduced and fixed at the same version affect nothing",
			eco:    "Go",
			typ:    "SEMVER",
			events: ev("fixed=1.0.0", "introduced=1.0.0"),
			checks: []check{
				{"0.5.0", false, ""},
				{"1.0.0", false, ""},
				{"1.5.0", false, ""},
			},
		},
		{
			name:   "Go ECOSYSTEM ranges with v",
			eco:    "Go",
			typ:    "ECOSYSTEM",
			events: ev("introduced=v1.0.0", "fixed=v1.2.3"),
			checks: []check{
				{"1.2.2", true, "1.2.3"},
				{"1.2.3", false, ""},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, ok := compileRange(tc.eco, osvRange{Type: tc.typ, Events: tc.events}, interner{})
			if !ok {
				t.Fatal("range not compiled")
			}
			for _, c := range tc.checks {
				pq := newPreparedQuery(Query{Ecosystem: tc.eco, Name: "p", Version: c.version})
				v, err := pq.parse(r.scheme)
				if err != nil {
					t.Fatalf("parsing %q: %v", c.version, err)
				}
				affected, fix, err := r.contains(v)
				if err != nil {
					t.Fatal(err)
				}
				if affected != c.affected || fix != c.fix {
					t.Errorf("%s: got affected=%t fix=%q, want %t %q", c.version, affected, fix, c.affected, c.fix)
				}
			}
		})
	}
}

func TestCompileRangeRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		eco  string
		r    osvRange
	}{
		{"GIT ranges", "Go", osvRange{Type: "GIT", Events: ev("introduced=0", "fixed=abc123")}},
		{"unknown ecosystem", "Nonesuch", osvRange{Type: "ECOSYSTEM", Events: ev("introduced=0")}},
		{"unparsable event", "Alpine", osvRange{Type: "ECOSYSTEM", Events: ev("introduced=0", "fixed=not a version")}},
		{"unparsable SEMVER event", "npm", osvRange{Type: "SEMVER", Events: ev("introduced=1.x")}},
		{"nothing introduced", "Go", osvRange{Type: "SEMVER", Events: ev("fixed=1.0.0")}},
		{"no events", "Go", osvRange{Type: "SEMVER"}},
	}
	for _, tc := range cases {
		if _, ok := compileRange(tc.eco, tc.r, interner{}); ok {
			t.Errorf("%s: range was compiled", tc.name)
		}
	}
}

func TestValidVersion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		scheme, version string
		want            bool
	}{
		{"Alpine", "1.1.22-r4", true},
		{"Alpine", "1.1.1d-r0", true},
		{"Alpine", "2.4.1_git20210101-r0", true},
		{"Alpine", "1.2.3_rc1_p2~abc1-r10", true},
		{"Alpine", "garbage", false},
		{"Alpine", "", false},
		{"Alpine", "1.0-r1-x", false},
		{"Wolfi", "1.0-r0", true},
		{"Debian", "1.1.1d-0+deb10u1", true},
		{"Debian", "1:2.30-2~bpo10+1", true},
		{"Debian", "x:1.0", false},
		{"Debian", "garbage", false},
		{"Ubuntu", "1.1.1f-1ubuntu2.16", true},
		{"Go", "1.2.3", true},
		{"Go", "v1.2.3", true},
		{"Go", "v0.0.0-20220906165146-f3363e06e74c", true},
		{"Go", "v2.0.0+incompatible", true},
		{"Go", "1.21", true},
		{"Go", "go1.21.0", false},
		{"Go", "not-a-version", false},
		{schemeSemver, "1.0.0-alpha.1", true},
		{schemeSemver, "1.x", false},
		{"PyPI", "1.0", true},
		{"PyPI", "", false},
	}
	for _, tc := range cases {
		if got := validVersion(tc.scheme, tc.version); got != tc.want {
			t.Errorf("validVersion(%s, %q) = %t, want %t", tc.scheme, tc.version, got, tc.want)
		}
	}
}

func TestNormalizeQueryVersion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		q    Query
		want string
	}{
		{Query{"Go", "stdlib", "go1.21.3"}, "1.21.3"},
		{Query{"Go", "toolchain", "go1.21.3"}, "1.21.3"},
		{Query{"Go", "stdlib", "v1.21.3"}, "1.21.3"},
		{Query{"Go", "example.com/m", "v1.2.3"}, "1.2.3"},
		{Query{"Go", "example.com/m", "go1.2.3"}, "go1.2.3"},
		{Query{"Alpine:v3.10", "musl", "v1.0"}, "v1.0"},
		{Query{"Debian:10", "openssl", " 1.1.1c-1 "}, "1.1.1c-1"},
	}
	for _, tc := range cases {
		if got := normalizeQueryVersion(tc.q); got != tc.want {
			t.Errorf("normalizeQueryVersion(%v) = %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestListedVersionsInUnsupportedEcosystems(t *testing.T) {
	t.Parallel()
	db := dbFromDocuments(t, "Nonesuch", `{"id": "TEST-LISTED", "affected": [{
		"package": {"ecosystem": "Nonesuch", "name": "p"},
		"versions": ["1.0"],
		"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}`)
	for version, want := range map[string]int{"1.0": 1, "2.0": 0} {
		if got := db.Match([]Query{{"Nonesuch", "p", version}}); len(got) != want {
			t.Errorf("%s: %d findings, want %d", version, len(got), want)
		}
	}
}
