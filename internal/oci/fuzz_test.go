package oci

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzParseManifest checks that ParseManifest never panics, that it fails
// only with its documented errors, and that everything it accepts is
// consistent: every referenced digest parses, no external layer is required
// as a blob, and the manifest parses again with the media type it is stored
// under.
func FuzzParseManifest(f *testing.F) {
	for _, seed := range []struct {
		contentType string
		manifest    obj
	}{
		{MediaTypeOCIManifest, ociManifest},
		{MediaTypeOCIIndex, ociIndex},
		{MediaTypeDockerManifest, dockerManifest},
		{MediaTypeDockerList, dockerList},
		{MediaTypeOCIManifest, artifactManifest},
		{"", with(ociManifest, "layers", []obj{ociForeign, ociLayer1})},
		{MediaTypeDockerManifest, with(dockerManifest, "layers", []obj{dockerFor, dockerLayer})},
		{MediaTypeOCIManifest, with(ociManifest, "mediaType", nil)},
		{"application/json", with(ociIndex, "mediaType", nil)},
		{testSchema1Signed, schema1Manifest},
	} {
		f.Add(seed.contentType, toJSON(f, seed.manifest))
	}
	f.Add(MediaTypeOCIManifest, []byte(`{"schemaVersion":2}}`))

	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		p, err := ParseManifest(contentType, body)
		if err != nil {
			if p != nil {
				t.Fatalf("result %+v returned together with error %v", p, err)
			}
			if !errors.Is(err, ErrInvalidManifest) && !errors.Is(err, ErrUnsupportedMediaType) {
				t.Fatalf("undocumented error: %v", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not one valid JSON document")
		}
		if len(body) > MaxManifestSize {
			t.Fatalf("accepted a manifest of %d bytes", len(body))
		}
		if !IsManifestMediaType(p.MediaType) {
			t.Fatalf("accepted unsupported media type %q", p.MediaType)
		}
		checkDescriptor := func(field string, d imagespec.Descriptor) {
			t.Helper()
			if _, err := ParseDigest(d.Digest.String()); err != nil {
				t.Fatalf("%s: accepted digest that does not parse: %v", field, err)
			}
			if d.Size < 0 {
				t.Fatalf("%s: accepted negative size %d", field, d.Size)
			}
			if d.MediaType == "" {
				t.Fatalf("%s: accepted empty media type", field)
			}
			if d.Data != nil && d.Digest != digest.FromBytes(d.Data) && d.Digest != digest.SHA512.FromBytes(d.Data) {
				t.Fatalf("%s: accepted data that does not match %s", field, d.Digest)
			}
		}
		for _, d := range p.Blobs {
			checkDescriptor("blob", d)
			if IsExternalLayer(d) {
				t.Fatalf("external layer %s is listed as a blob", d.Digest)
			}
		}
		for _, d := range p.Manifests {
			checkDescriptor("manifest", d)
		}
		if p.Subject != nil {
			checkDescriptor("subject", *p.Subject)
		}
		if IsIndexMediaType(p.MediaType) {
			if p.Config != nil || len(p.Blobs) != 0 {
				t.Fatalf("index %s has config or blobs", p.MediaType)
			}
		} else {
			if len(p.Manifests) != 0 {
				t.Fatalf("image manifest %s has child manifests", p.MediaType)
			}
			if p.Config == nil || len(p.Blobs) == 0 || p.Blobs[0].Digest != p.Config.Digest {
				t.Fatalf("image manifest without its config as the first blob: %+v", p)
			}
		}

		// The registry serves and re-validates the manifest with the media
		// type it resolved, so that must give the same result.
		again, err := ParseManifest(p.MediaType, body)
		if err != nil {
			t.Fatalf("manifest accepted as %s is rejected with that Content-Type: %v", p.MediaType, err)
		}
		if again.MediaType != p.MediaType || len(again.Blobs) != len(p.Blobs) || len(again.Manifests) != len(p.Manifests) {
			t.Fatalf("re-parse differs: %+v vs %+v", again, p)
		}
	})
}

// FuzzParseDigest checks that every accepted digest is a canonical sha256 or
// sha512 digest.
func FuzzParseDigest(f *testing.F) {
	f.Add(digest.FromString("").String())
	f.Add(digest.SHA512.FromString("").String())
	f.Add(digest.SHA384.FromString("").String())
	f.Add("sha256:" + strings.Repeat("A", 64))
	f.Add("sha256:")
	f.Add("md5:d41d8cd98f00b204e9800998ecf8427e")
	f.Add("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564")

	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			if d != "" {
				t.Fatalf("digest %q returned together with error %v", d, err)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDigest(%q) = %q", s, d)
		}
		var hexLen int
		switch d.Algorithm() {
		case digest.SHA256:
			hexLen = 64
		case digest.SHA512:
			hexLen = 128
		default:
			t.Fatalf("accepted algorithm %q", d.Algorithm())
		}
		enc := d.Encoded()
		if len(enc) != hexLen || strings.Trim(enc, "0123456789abcdef") != "" {
			t.Fatalf("accepted non-canonical encoding %q", enc)
		}
		if !IsDigest(s) || ValidTag(s) {
			t.Fatalf("digest %q is mistaken for a tag", s)
		}
	})
}

// FuzzRepositoryNameAndTag checks SplitRepositoryName and ValidTag: an
// accepted name splits into a valid account and a repository that re-join to
// the input, and accepted names and tags never contain anything that could
// escape a path or be confused with another part of a reference.
func FuzzRepositoryNameAndTag(f *testing.F) {
	f.Add("acct/repo", "latest")
	f.Add("acct/foo/bar-baz/a.b__c", "v1.2.3-rc_1")
	f.Add("keppel-foo/repo", "_x")
	f.Add("v2/repo", ".hidden")
	f.Add("acct/../repo", "a:b")
	f.Add("acct//repo/", strings.Repeat("t", 129))
	f.Add("Acct/Repo", "sha256:abc")

	f.Fuzz(func(t *testing.T, full, tag string) {
		account, repo, ok := SplitRepositoryName(full)
		if ok {
			if account+"/"+repo != full {
				t.Fatalf("SplitRepositoryName(%q) = %q, %q, which does not re-join", full, account, repo)
			}
			if !ValidAccountName(account) {
				t.Fatalf("SplitRepositoryName(%q) accepted invalid account %q", full, account)
			}
			if len(full) > MaxRepositoryNameLength || repo == "" {
				t.Fatalf("SplitRepositoryName(%q) accepted a name of bad length", full)
			}
			for _, c := range strings.Split(full, "/") {
				if c == "" || c == "." || c == ".." {
					t.Fatalf("SplitRepositoryName(%q) accepted path component %q", full, c)
				}
			}
			if strings.Trim(full, "abcdefghijklmnopqrstuvwxyz0123456789._-/") != "" {
				t.Fatalf("SplitRepositoryName(%q) accepted a character outside the grammar", full)
			}
		} else if account != "" || repo != "" {
			t.Fatalf("SplitRepositoryName(%q) = %q, %q on failure", full, account, repo)
		}

		if ValidTag(tag) {
			if len(tag) == 0 || len(tag) > 128 {
				t.Fatalf("ValidTag accepted %q of length %d", tag, len(tag))
			}
			if IsDigest(tag) || strings.ContainsAny(tag, "/@:") || tag[0] == '.' || tag[0] == '-' {
				t.Fatalf("ValidTag accepted ambiguous tag %q", tag)
			}
			if _, err := ParseDigest(tag); err == nil {
				t.Fatalf("%q is both a tag and a digest", tag)
			}
		}
	})
}

// FuzzParseRange checks that an accepted range always lies inside the
// content and is not empty, and that errors are always one of the two
// documented kinds.
func FuzzParseRange(f *testing.F) {
	for _, h := range []string{"", "bytes=0-0", "bytes=0-", "bytes=-1", "bytes=10-5", "bytes=0-1,2-3",
		"bytes=0-99999999999999999999", "bytes=-99999999999999999999", "bytes= 1 - 2", "items=0-1"} {
		f.Add(h, int64(100))
	}
	f.Add("bytes=-1", int64(0))
	f.Add("bytes=-1", int64(-1))
	f.Add("bytes=9223372036854775806-", int64(math.MaxInt64))

	f.Fuzz(func(t *testing.T, header string, size int64) {
		r, ok, err := ParseRange(header, size)
		checkRangeAgainstModel(t, header, size, r, err)
		if err != nil {
			if ok || r != (ByteRange{}) {
				t.Fatalf("ParseRange(%q, %d) = %+v, %v together with error %v", header, size, r, ok, err)
			}
			invalid, unsatisfiable := errors.Is(err, ErrRangeInvalid), errors.Is(err, ErrRangeNotSatisfiable)
			if invalid == unsatisfiable {
				t.Fatalf("ParseRange(%q, %d): error %v is not exactly one documented kind", header, size, err)
			}
			return
		}
		if !ok {
			if header != "" || r != (ByteRange{}) {
				t.Fatalf("ParseRange(%q, %d) = %+v, not ok, without error", header, size, r)
			}
			return
		}
		if r.Start < 0 || r.Length <= 0 || r.Start >= size || r.Length > size-r.Start {
			t.Fatalf("ParseRange(%q, %d) = %+v, outside [0,%d)", header, size, r, size)
		}
	})
}

// checkRangeAgainstModel compares ParseRange with a straightforward model in
// arbitrary-precision arithmetic for headers of the plain forms
// "bytes=a-b", "bytes=a-" and "bytes=-n" (ASCII digits, no spaces).
func checkRangeAgainstModel(t *testing.T, header string, size int64, r ByteRange, err error) {
	t.Helper()
	m := plainRangeRx.FindStringSubmatch(header)
	if m == nil {
		return
	}
	first, last := m[1], m[2]
	num := func(s string) *big.Int {
		v, _ := new(big.Int).SetString(s, 10)
		return v
	}
	bigSize := big.NewInt(size)
	one := big.NewInt(1)
	var wantErr error
	var start, end *big.Int // inclusive
	switch {
	case first == "" && last == "":
		wantErr = ErrRangeInvalid
	case first == "":
		n := num(last)
		if n.Sign() == 0 || size <= 0 {
			wantErr = ErrRangeNotSatisfiable
			break
		}
		if n.Cmp(bigSize) > 0 {
			n = bigSize
		}
		start = new(big.Int).Sub(bigSize, n)
		end = new(big.Int).Sub(bigSize, one)
	default:
		start = num(first)
		end = new(big.Int).Sub(bigSize, one)
		if last != "" {
			if e := num(last); e.Cmp(start) < 0 {
				wantErr = ErrRangeInvalid
				break
			} else if e.Cmp(end) < 0 {
				end = e
			}
		}
		if start.Cmp(bigSize) >= 0 {
			wantErr = ErrRangeNotSatisfiable
		}
	}
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("ParseRange(%q, %d) = %+v, %v, want %v", header, size, r, err, wantErr)
		}
		return
	}
	length := new(big.Int).Sub(end, start)
	length.Add(length, one)
	if err != nil || !start.IsInt64() || r.Start != start.Int64() || !length.IsInt64() || r.Length != length.Int64() {
		t.Fatalf("ParseRange(%q, %d) = %+v, %v, want start %s length %s", header, size, r, err, start, length)
	}
}

var plainRangeRx = regexp.MustCompile(`^bytes=([0-9]*)-([0-9]*)$`)

// FuzzParsePagination checks that accepted page requests stay within the
// page size limit and keep the last marker unchanged.
func FuzzParsePagination(f *testing.F) {
	f.Add("10", true, "acct/repo")
	f.Add("", true, "")
	f.Add("", false, "")
	f.Add("-1", true, "x")
	f.Add("99999999999999999999", true, "a\nb")
	f.Add("0", true, strings.Repeat("a", 256))

	f.Fuzz(func(t *testing.T, n string, hasN bool, last string) {
		p, err := ParsePagination(n, hasN, last)
		if err != nil {
			if !errors.Is(err, ErrPaginationInvalid) {
				t.Fatalf("undocumented error: %v", err)
			}
			if p != (Pagination{}) {
				t.Fatalf("result %+v returned together with error %v", p, err)
			}
			return
		}
		if p.Limit < 0 || p.Limit > MaxPageSize {
			t.Fatalf("ParsePagination(%q, %v, %q): limit %d out of bounds", n, hasN, last, p.Limit)
		}
		if p.Last != last || p.Explicit != hasN {
			t.Fatalf("ParsePagination(%q, %v, %q) = %+v", n, hasN, last, p)
		}
		if !hasN && p.Limit != MaxPageSize {
			t.Fatalf("ParsePagination without n: limit %d", p.Limit)
		}
		if len(last) > MaxRepositoryNameLength || strings.ContainsFunc(last, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("ParsePagination accepted last=%q", last)
		}
	})
}
