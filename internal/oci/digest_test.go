package oci

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestParseDigest(t *testing.T) {
	t.Parallel()
	hex64 := strings.Repeat("0123456789abcdef", 4)
	hex128 := strings.Repeat("0123456789abcdef", 8)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"sha256", "sha256:" + hex64, true},
		{"sha512", "sha512:" + hex128, true},
		{"sha256 of empty", digest.FromString("").String(), true},
		{"sha512 of empty", digest.SHA512.FromString("").String(), true},

		{"empty", "", false},
		{"no algorithm", hex64, false},
		{"no encoded part", "sha256:", false},
		{"only colon", ":", false},
		{"sha384", digest.SHA384.FromString("").String(), false},
		{"unknown algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e", false},
		{"upper-case algorithm", "SHA256:" + hex64, false},
		{"upper-case hex", "sha256:" + strings.ToUpper(hex64), false},
		{"bad hex", "sha256:" + hex64[:63] + "g", false},
		{"too short", "sha256:" + hex64[:63], false},
		{"too long", "sha256:" + hex64 + "0", false},
		{"sha512 length for sha256", "sha256:" + hex128, false},
		{"sha256 length for sha512", "sha512:" + hex64, false},
		{"trailing newline", "sha256:" + hex64 + "\n", false},
		{"leading space", " sha256:" + hex64, false},
		{"double colon", "sha256::" + hex64, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := ParseDigest(tc.in)
			switch {
			case tc.ok && err != nil:
				t.Errorf("ParseDigest(%q) failed: %v", tc.in, err)
			case tc.ok && d.String() != tc.in:
				t.Errorf("ParseDigest(%q) = %q", tc.in, d)
			case !tc.ok && err == nil:
				t.Errorf("ParseDigest(%q) = %q, want an error", tc.in, d)
			case !tc.ok && d != "":
				t.Errorf("ParseDigest(%q) returned %q together with an error", tc.in, d)
			}
		})
	}
}

func TestIsDigest(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"latest":                        false,
		"v1.2.3":                        false,
		"":                              false,
		"sha256:" + "abc":               true,
		digest.FromString("x").String(): true,
	}
	for ref, want := range tests {
		if got := IsDigest(ref); got != want {
			t.Errorf("IsDigest(%q) = %v, want %v", ref, got, want)
		}
	}
}
