package scan_test

import (
	"testing"

	"keppel/internal/scan"
)

func TestMerge(t *testing.T) {
	for _, c := range []struct {
		in   []scan.Status
		want scan.Status
	}{
		{nil, scan.Unsupported},
		{[]scan.Status{scan.Clean, scan.Unsupported}, scan.Clean},
		{[]scan.Status{scan.Clean, scan.Low, scan.Unknown}, scan.Low},
		{[]scan.Status{scan.High, scan.Critical, scan.Medium}, scan.Critical},
		{[]scan.Status{scan.Critical, scan.Pending}, scan.Pending},
		{[]scan.Status{scan.Pending, scan.Error}, scan.Error},
		{[]scan.Status{scan.Error, scan.Rotten, scan.Clean}, scan.Rotten},
	} {
		if got := scan.Merge(c.in...); got != c.want {
			t.Errorf("Merge(%v) = %s, want %s", c.in, got, c.want)
		}
	}
	for _, s := range []scan.Status{scan.Pending, scan.Clean, scan.Unknown, scan.Low, scan.Medium, scan.High,
		scan.Critical, scan.Unsupported, scan.Error, scan.Rotten} {
		if !s.Valid() {
			t.Errorf("%s is not valid", s)
		}
	}
	if scan.Status("Severe").Valid() {
		t.Error("an unknown status is valid")
	}
	if !scan.Worse(scan.High, scan.Low) || scan.Worse(scan.Clean, scan.Unknown) {
		t.Error("Worse does not follow the severities")
	}
}
