package oci

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrRangeNotSatisfiable is returned by ParseRange for a well-formed range
// that lies outside the content.
var ErrRangeNotSatisfiable = errors.New("range not satisfiable")

// ErrRangeInvalid is returned by ParseRange for a malformed Range header.
var ErrRangeInvalid = errors.New("invalid range")

// ByteRange is a resolved, non-empty byte range [Start, Start+Length).
type ByteRange struct {
	Start  int64
	Length int64
}

// ParseRange parses an HTTP Range header for content of the given size. Only
// a single range in bytes is supported ("bytes=a-b", "bytes=a-",
// "bytes=-n"). It returns ok=false when header is empty (the whole content).
// Positions too large for an int64 are well-formed and lie past the end of
// any content.
func ParseRange(header string, size int64) (r ByteRange, ok bool, err error) {
	if header == "" {
		return ByteRange{}, false, nil
	}
	spec, found := strings.CutPrefix(header, "bytes=")
	if !found {
		return ByteRange{}, false, fmt.Errorf("%w: %q does not start with bytes=", ErrRangeInvalid, header)
	}
	spec = strings.TrimSpace(spec)
	if strings.Contains(spec, ",") {
		return ByteRange{}, false, fmt.Errorf("%w: multiple ranges are not supported", ErrRangeInvalid)
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return ByteRange{}, false, fmt.Errorf("%w: %q has no dash", ErrRangeInvalid, header)
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)

	if first == "" {
		// suffix range: the last n bytes
		n, err := parseNonNegative(last)
		if err != nil {
			return ByteRange{}, false, fmt.Errorf("%w: %q: %w", ErrRangeInvalid, header, err)
		}
		if n == 0 || size <= 0 {
			return ByteRange{}, false, ErrRangeNotSatisfiable
		}
		n = min(n, size)
		return ByteRange{Start: size - n, Length: n}, true, nil
	}

	start, err := parseNonNegative(first)
	if err != nil {
		return ByteRange{}, false, fmt.Errorf("%w: %q: %w", ErrRangeInvalid, header, err)
	}
	end := size - 1
	if last != "" {
		end, err = parseNonNegative(last)
		if err != nil {
			return ByteRange{}, false, fmt.Errorf("%w: %q: %w", ErrRangeInvalid, header, err)
		}
		// Compare the digits, not the parsed values: both may have
		// saturated at math.MaxInt64.
		if compareDecimal(last, first) < 0 {
			return ByteRange{}, false, fmt.Errorf("%w: %q ends before it starts", ErrRangeInvalid, header)
		}
	}
	if start >= size {
		return ByteRange{}, false, ErrRangeNotSatisfiable
	}
	end = min(end, size-1)
	return ByteRange{Start: start, Length: end - start + 1}, true, nil
}

// parseNonNegative parses a string of decimal digits. A number too large for
// an int64 is still well-formed (a range end beyond any content, a page size
// beyond any limit), so it saturates at math.MaxInt64 instead of failing.
func parseNonNegative(s string) (int64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return math.MaxInt64, nil
	}
	return v, err
}

// compareDecimal compares two strings of decimal digits by their value, for
// any length.
func compareDecimal(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// MaxPageSize is the largest page that a listing returns in one response,
// whatever n asks for; larger listings continue through the Link header.
const MaxPageSize = 10000

// ErrPaginationInvalid is returned by ParsePagination for bad n or last.
var ErrPaginationInvalid = errors.New("invalid pagination parameters")

// Pagination is a validated page request of a tag or catalog listing.
type Pagination struct {
	// Limit is the number of entries to return.
	Limit int
	// Last is the entry after which the page starts ("" for the first page).
	Last string
	// Explicit reports whether the client asked for a page size with n.
	Explicit bool
}

// ParsePagination validates the n and last query parameters. hasN tells
// whether n was given at all (n= with an empty value is an error). A
// missing n gives MaxPageSize; larger values are cut to MaxPageSize.
func ParsePagination(n string, hasN bool, last string) (Pagination, error) {
	p := Pagination{Limit: MaxPageSize, Last: last}
	if hasN {
		v, err := parseNonNegative(n)
		if err != nil {
			return Pagination{}, fmt.Errorf("%w: n: %w", ErrPaginationInvalid, err)
		}
		p.Limit = int(min(v, MaxPageSize))
		p.Explicit = true
	}
	if len(last) > MaxRepositoryNameLength {
		return Pagination{}, fmt.Errorf("%w: last is longer than %d characters", ErrPaginationInvalid, MaxRepositoryNameLength)
	}
	for _, c := range []byte(last) {
		if c < 0x20 || c == 0x7f {
			return Pagination{}, fmt.Errorf("%w: last contains control characters", ErrPaginationInvalid)
		}
	}
	return p, nil
}
