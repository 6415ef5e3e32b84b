package oci

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	const huge = "99999999999999999999" // more than math.MaxInt64
	tests := []struct {
		header string
		size   int64
		want   ByteRange
		ok     bool
		err    error
	}{
		// No header: the whole content.
		{"", 100, ByteRange{}, false, nil},
		{"", 0, ByteRange{}, false, nil},

		// bytes=a-b
		{"bytes=0-0", 100, ByteRange{0, 1}, true, nil},
		{"bytes=0-99", 100, ByteRange{0, 100}, true, nil},
		{"bytes=10-19", 100, ByteRange{10, 10}, true, nil},
		{"bytes=99-99", 100, ByteRange{99, 1}, true, nil},
		{"bytes=50-1000", 100, ByteRange{50, 50}, true, nil},
		{"bytes=0-" + huge, 100, ByteRange{0, 100}, true, nil},
		{"bytes=0-9223372036854775807", 100, ByteRange{0, 100}, true, nil},
		{"bytes=00010-00019", 100, ByteRange{10, 10}, true, nil},
		{"bytes= 10 - 19 ", 100, ByteRange{10, 10}, true, nil},
		{"bytes=100-100", 100, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=100-200", 100, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=0-0", 0, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=20-10", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=" + huge + "-1", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=" + huge + "0-" + huge, 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=" + huge + "-" + huge, 100, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=000" + huge + "-" + huge, 100, ByteRange{}, false, ErrRangeNotSatisfiable},

		// bytes=a-
		{"bytes=0-", 100, ByteRange{0, 100}, true, nil},
		{"bytes=99-", 100, ByteRange{99, 1}, true, nil},
		{"bytes=100-", 100, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=0-", 0, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=" + huge + "-", 100, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=9223372036854775806-", math.MaxInt64, ByteRange{math.MaxInt64 - 1, 1}, true, nil},

		// bytes=-n (suffix)
		{"bytes=-1", 100, ByteRange{99, 1}, true, nil},
		{"bytes=-10", 100, ByteRange{90, 10}, true, nil},
		{"bytes=-100", 100, ByteRange{0, 100}, true, nil},
		{"bytes=-500", 100, ByteRange{0, 100}, true, nil},
		{"bytes=-" + huge, 100, ByteRange{0, 100}, true, nil},
		{"bytes=-0", 100, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=-1", 0, ByteRange{}, false, ErrRangeNotSatisfiable},
		{"bytes=-1", -1, ByteRange{}, false, ErrRangeNotSatisfiable},

		// Malformed headers.
		{"bytes=", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=-", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=5", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=a-b", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=0x10-20", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=-5-10", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=1-2-3", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=--1", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=+1-2", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=1.5-2", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=0-1,5-6", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=0-1, 5-6", 100, ByteRange{}, false, ErrRangeInvalid},
		{"items=0-1", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes 0-1", 100, ByteRange{}, false, ErrRangeInvalid},
		{"0-1", 100, ByteRange{}, false, ErrRangeInvalid},
		{" bytes=0-1", 100, ByteRange{}, false, ErrRangeInvalid},
		{"bytes=٣-5", 100, ByteRange{}, false, ErrRangeInvalid},
	}
	for _, tc := range tests {
		r, ok, err := ParseRange(tc.header, tc.size)
		switch {
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("ParseRange(%q, %d): error %v, want %v", tc.header, tc.size, err, tc.err)
		case tc.err == nil && err != nil:
			t.Errorf("ParseRange(%q, %d): unexpected error %v", tc.header, tc.size, err)
		case r != tc.want || ok != tc.ok:
			t.Errorf("ParseRange(%q, %d) = %+v, %v, want %+v, %v", tc.header, tc.size, r, ok, tc.want, tc.ok)
		}
		// The two error kinds must stay distinguishable: they map to
		// different HTTP answers.
		if errors.Is(err, ErrRangeInvalid) && errors.Is(err, ErrRangeNotSatisfiable) {
			t.Errorf("ParseRange(%q, %d): error %v is both invalid and not satisfiable", tc.header, tc.size, err)
		}
	}
}

func TestCompareDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"0", "0", 0},
		{"1", "0", 1},
		{"0", "1", -1},
		{"007", "7", 0},
		{"10", "9", 1},
		{"99999999999999999999", "100000000000000000000", -1},
		{"00100000000000000000000", "99999999999999999999", 1},
		{"", "0", 0},
	}
	for _, tc := range tests {
		if got := compareDecimal(tc.a, tc.b); got != tc.want {
			t.Errorf("compareDecimal(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParsePagination(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    string
		hasN bool
		last string
		want Pagination
		ok   bool
	}{
		{"defaults", "", false, "", Pagination{Limit: MaxPageSize}, true},
		{"n ignored without hasN", "abc", false, "", Pagination{Limit: MaxPageSize}, true},
		{"n", "10", true, "", Pagination{Limit: 10, Explicit: true}, true},
		{"n zero", "0", true, "", Pagination{Limit: 0, Explicit: true}, true},
		{"n leading zeros", "007", true, "", Pagination{Limit: 7, Explicit: true}, true},
		{"n at limit", "10000", true, "", Pagination{Limit: MaxPageSize, Explicit: true}, true},
		{"n above limit", "10001", true, "", Pagination{Limit: MaxPageSize, Explicit: true}, true},
		{"n huge", "99999999999999999999999999", true, "", Pagination{Limit: MaxPageSize, Explicit: true}, true},
		{"last", "5", true, "acct/repo", Pagination{Limit: 5, Last: "acct/repo", Explicit: true}, true},
		{"last tag", "", false, "v1.2.3", Pagination{Limit: MaxPageSize, Last: "v1.2.3"}, true},
		{"last at max length", "", false, strings.Repeat("a", MaxRepositoryNameLength), Pagination{Limit: MaxPageSize, Last: strings.Repeat("a", MaxRepositoryNameLength)}, true},

		{"n empty", "", true, "", Pagination{}, false},
		{"n negative", "-1", true, "", Pagination{}, false},
		{"n plus sign", "+1", true, "", Pagination{}, false},
		{"n not a number", "ten", true, "", Pagination{}, false},
		{"n with space", " 10", true, "", Pagination{}, false},
		{"n fraction", "1.5", true, "", Pagination{}, false},
		{"last too long", "", false, strings.Repeat("a", MaxRepositoryNameLength+1), Pagination{}, false},
		{"last with newline", "", false, "a\nb", Pagination{}, false},
		{"last with NUL", "", false, "a\x00", Pagination{}, false},
		{"last with DEL", "", false, "a\x7f", Pagination{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePagination(tc.n, tc.hasN, tc.last)
			if tc.ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if p != tc.want {
					t.Errorf("got %+v, want %+v", p, tc.want)
				}
				return
			}
			if !errors.Is(err, ErrPaginationInvalid) {
				t.Errorf("got %+v, %v, want ErrPaginationInvalid", p, err)
			}
		})
	}
}
