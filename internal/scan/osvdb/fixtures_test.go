package osvdb

import (
	"archive/zip"
	"os"
	"path/filepath"
	"testing"
)

// The fixtures follow published advisories (IDs, packages, fixed versions,
// NVD vectors); fields that the tests need beyond that (severity labels,
// extra releases) are marked, and advisories made up for a rule have IDs
// that start with TEST-.

// Alpine's secdb: musl and openssl in v3.10.
const (
	alpineMusl = `{
  "schema_version": "1.6.0",
  "id": "ALPINE-CVE-2020-28928",
  "upstream": ["CVE-2020-28928"],
  "details": "In musl libc through 1.2.1, wcsnrtombs mishandles particular combinations of destination buffer size and source character limit, as demonstrated by an invalid write access (buffer overflow).\nSecond line.",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H"}],
  "affected": [{
    "package": {"ecosystem": "Alpine:v3.10", "name": "musl", "purl": "pkg:apk/alpine/musl?arch=source"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.22-r4"}]}]
  }]
}`
	alpineOpenSSL1547 = `{
  "id": "ALPINE-CVE-2019-1547",
  "upstream": ["CVE-2019-1547"],
  "details": "Normally in OpenSSL EC groups always have a co-factor present and this is used in side channel resistant code paths.",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N"}],
  "affected": [{
    "package": {"ecosystem": "Alpine:v3.10", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1d-r0"}]}]
  }]
}`
	alpineOpenSSL1563 = `{
  "id": "ALPINE-CVE-2019-1563",
  "upstream": ["CVE-2019-1563"],
  "summary": "Padding oracle in PKCS7_dataDecode and CMS_decrypt_set1_pkey",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"}],
  "affected": [{
    "package": {"ecosystem": "Alpine:v3.10", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1d-r0"}]}]
  }]
}`
	// Only for v3.11: must not match queries for v3.10.
	alpineOpenSSL3449 = `{
  "id": "ALPINE-CVE-2021-3449",
  "upstream": ["CVE-2021-3449"],
  "details": "An OpenSSL TLS server may crash if sent a maliciously crafted renegotiation ClientHello message from a client.",
  "affected": [{
    "package": {"ecosystem": "Alpine:v3.11", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1k-r0"}]}]
  }]
}`
)

// Debian's security tracker: DSA-4539-1 for openssl in buster and stretch.
const debianOpenSSL = `{
  "id": "DSA-4539-1",
  "summary": "openssl - security update",
  "upstream": ["CVE-2019-1563", "CVE-2019-1549", "CVE-2019-1547"],
  "affected": [
    {"package": {"ecosystem": "Debian:10", "name": "openssl"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1d-0+deb10u1"}]}]},
    {"package": {"ecosystem": "Debian:9", "name": "openssl"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.0l-1~deb9u1"}]}]}
  ]
}`

// Go's vulnerability database.
const (
	// Two introduced/fixed pairs for the standard library.
	goHTTP2 = `{
  "id": "GO-2022-0969",
  "aliases": ["CVE-2022-27664", "GHSA-69cg-p879-7622"],
  "summary": "Denial of service in net/http and golang.org/x/net/http2",
  "affected": [
    {"package": {"ecosystem": "Go", "name": "stdlib"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.18.6"}, {"introduced": "1.19.0"}, {"fixed": "1.19.1"}]}],
     "ecosystem_specific": {"imports": [{"path": "net/http"}]}},
    {"package": {"ecosystem": "Go", "name": "golang.org/x/net"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.0.0-20220906165146-f3363e06e74c"}]}]}
  ]
}`
	// The severity label is added for the tests.
	goText = `{
  "id": "GO-2020-0015",
  "aliases": ["CVE-2020-14040"],
  "summary": "Infinite loop when decoding some inputs in golang.org/x/text",
  "database_specific": {"severity": "moderate"},
  "affected": [{
    "package": {"ecosystem": "Go", "name": "golang.org/x/text"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.3.3"}]}]
  }]
}`
	goLastAffected = `{
  "id": "TEST-LAST-AFFECTED",
  "summary": "affects 1.0.0 up to and including 1.4.0",
  "affected": [{
    "package": {"ecosystem": "Go", "name": "example.com/lib"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"last_affected": "1.4.0"}]}],
    "ecosystem_specific": {"severity": "LOW"},
    "database_specific": {"severity": "CRITICAL"}
  }]
}`
	goVersions = `{
  "id": "TEST-VERSIONS",
  "aliases": ["TEST-VERSIONS", "CVE-0000-0002", "CVE-0000-0001", "CVE-0000-0002"],
  "database_specific": {"severity": "CRITICAL"},
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"}],
  "affected": [{
    "package": {"ecosystem": "Go", "name": "example.com/lib"},
    "versions": ["2.0.0", "2.0.1"]
  }]
}`
	goWithdrawn = `{
  "id": "TEST-WITHDRAWN",
  "withdrawn": "2023-01-01T00:00:00Z",
  "affected": [{
    "package": {"ecosystem": "Go", "name": "golang.org/x/text"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]
  }]
}`
)

// writeZip writes an archive with the given documents (name → content).
func writeZip(t testing.TB, path string, docs map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, content := range docs {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes a plain file, creating its folder.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixtureDir lays out a database with all fixtures: Alpine and Debian as
// all.zip, Go partly as all.zip and partly as plain documents.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	writeZip(t, filepath.Join(dir, "Alpine", "all.zip"), map[string]string{
		"ALPINE-CVE-2020-28928.json": alpineMusl,
		"ALPINE-CVE-2019-1547.json":  alpineOpenSSL1547,
		"ALPINE-CVE-2019-1563.json":  alpineOpenSSL1563,
		"ALPINE-CVE-2021-3449.json":  alpineOpenSSL3449,
		"README.txt":                 "not a document",
	})
	writeZip(t, filepath.Join(dir, "Debian", "all.zip"), map[string]string{
		"DSA-4539-1.json": debianOpenSSL,
	})
	writeZip(t, filepath.Join(dir, "Go", "all.zip"), map[string]string{
		"GO-2020-0015.json":       goText,
		"TEST-LAST-AFFECTED.json": goLastAffected,
		"TEST-WITHDRAWN.json":     goWithdrawn,
	})
	writeFile(t, filepath.Join(dir, "Go", "GO-2022-0969.json"), goHTTP2)
	writeFile(t, filepath.Join(dir, "Go", "TEST-VERSIONS.json"), goVersions)
	// Ignored: hidden files, files at the top, other extensions.
	writeFile(t, filepath.Join(dir, "Go", ".partial.json"), "{")
	writeFile(t, filepath.Join(dir, "Go", "notes.txt"), "{")
	writeFile(t, filepath.Join(dir, "top.json"), "{")
	writeFile(t, filepath.Join(dir, ".hidden", "x.json"), "{")
	return dir
}

// dbFromDocuments builds a DB from documents of one ecosystem folder without
// going through files.
func dbFromDocuments(t testing.TB, folder string, docs ...string) *DB {
	t.Helper()
	l := newLoader("")
	ed := newEcosystemDocs()
	for _, d := range docs {
		doc, err := decodeDocument([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		ed.add(compile(doc, l.in))
	}
	l.index(folder, ed)
	return l.db
}
