package builtin

import (
	"testing"
	"time"

	"keppel/internal/scan/inventory"
	"keppel/internal/scan/osvdb"
)

func TestQueries(t *testing.T) {
	inv := inventory.Inventory{
		OS: inventory.OS{ID: "alpine", VersionID: "3.10.9"},
		Packages: []inventory.Package{
			{Type: "apk", Name: "libcrypto1.1", Source: "openssl", Version: "1.1.1c-r0"},
			{Type: "apk", Name: "musl", Version: "1.1.22-r3"},
			{Type: "go-stdlib", Name: "stdlib", Source: "stdlib", Version: "1.21.3"},
			{Type: "go-module", Name: "golang.org/x/net", Source: "golang.org/x/net", Version: "v0.17.0"},
			{Type: "rpm", Name: "bash", Version: "5.1"},
		},
	}
	got, unknown := queries(inv)
	if unknown != 0 {
		t.Errorf("unknown = %d", unknown)
	}
	ubuntu := inventory.Inventory{OS: inventory.OS{ID: "ubuntu", VersionID: "22.04"},
		Packages: []inventory.Package{{Type: "dpkg", Name: "openssl", Version: "3.0.2-0ubuntu1"}, {Type: "go-stdlib", Name: "stdlib", Version: "1.21.3"}}}
	if qs, unknown := queries(ubuntu); unknown != 1 || len(qs) != 1 {
		t.Errorf("ubuntu: %d queries, %d unknown; want 1 and 1", len(qs), unknown)
	}
	want := []osvdb.Query{
		{Ecosystem: "Alpine:v3.10", Name: "openssl", Version: "1.1.1c-r0"},
		{Ecosystem: "Alpine:v3.10", Name: "musl", Version: "1.1.22-r3"},
		{Ecosystem: "Go", Name: "stdlib", Version: "1.21.3"},
		{Ecosystem: "Go", Name: "golang.org/x/net", Version: "v0.17.0"},
	}
	if len(got) != len(want) {
		t.Fatalf("queries = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("query %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, c := range []struct {
		os   inventory.OS
		want string
	}{
		{inventory.OS{ID: "debian", VersionID: "10"}, "Debian:10"},
		{inventory.OS{ID: "debian", VersionID: "12.4"}, "Debian:12"},
		{inventory.OS{ID: "ubuntu", VersionID: "22.04"}, ""},
		{inventory.OS{ID: "debian"}, ""},
	} {
		if got := debianEcosystem(c.os); got != c.want {
			t.Errorf("debianEcosystem(%+v) = %q, want %q", c.os, got, c.want)
		}
	}
	if got := alpineEcosystem(inventory.OS{ID: "alpine", VersionID: "3"}); got != "" {
		t.Errorf("alpineEcosystem of a bad version = %q", got)
	}
}

func TestEndOfLife(t *testing.T) {
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct {
		os   inventory.OS
		now  string
		want bool
	}{
		{inventory.OS{ID: "alpine", VersionID: "3.10.9"}, "2021-04-30", false},
		{inventory.OS{ID: "alpine", VersionID: "3.10.9"}, "2021-05-01", true},
		{inventory.OS{ID: "alpine", VersionID: "3.22.1"}, "2030-01-01", false}, // not in the table
		{inventory.OS{ID: "debian", VersionID: "10"}, "2024-07-01", true},
		{inventory.OS{ID: "debian", VersionID: "12"}, "2024-07-01", false},
		{inventory.OS{ID: "ubuntu", VersionID: "14.04"}, "2030-01-01", false},
		{inventory.OS{ID: "alpine", VersionID: "edge"}, "2030-01-01", false},
	} {
		if got := endOfLife(c.os, day(c.now)); got != c.want {
			t.Errorf("endOfLife(%+v, %s) = %v, want %v", c.os, c.now, got, c.want)
		}
	}
}

func TestSeverityStatus(t *testing.T) {
	for sev, want := range map[osvdb.Severity]string{
		osvdb.SeverityUnknown: "Unknown", osvdb.SeverityLow: "Low", osvdb.SeverityMedium: "Medium",
		osvdb.SeverityHigh: "High", osvdb.SeverityCritical: "Critical",
	} {
		if got := string(severityStatus(sev)); got != want {
			t.Errorf("severityStatus(%s) = %s, want %s", sev, got, want)
		}
	}
}
