package osvdb

import (
	"cmp"
	"testing"
)

// FuzzDocument feeds arbitrary documents and query versions through
// decoding, compiling and matching: nothing may panic, and Match must return
// sorted findings without duplicates, each for a package of the document.
func FuzzDocument(f *testing.F) {
	for _, seed := range []struct{ doc, version string }{
		{alpineMusl, "1.1.22-r3"},
		{alpineOpenSSL1547, "garbage"},
		{debianOpenSSL, "1.1.1c-1"},
		{debianOpenSSL, "x:"},
		{goHTTP2, "go1.19.0"},
		{goText, "v0.3.0"},
		{goLastAffected, "1.4.0"},
		{goVersions, "2.0.1"},
		{goWithdrawn, "0.1.0"},
		{`{"id": "X", "affected": [{"package": {"ecosystem": "PyPI", "name": "p"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0rc1"}, {"fixed": "1.0.post1"}]}]}]}`, "1.0"},
		{`{"id": "X", "affected": [{"package": {"ecosystem": "Maven", "name": "g:a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "2.0-SNAPSHOT"}]}]}]}`, "1.9"},
	} {
		f.Add([]byte(seed.doc), seed.version)
	}
	f.Fuzz(func(t *testing.T, data []byte, version string) {
		doc, err := decodeDocument(data)
		if err != nil {
			return
		}
		l := newLoader("")
		docs := newEcosystemDocs()
		docs.add(compile(doc, l.in))
		l.index("Fuzz", docs)
		var qs []Query
		for _, a := range doc.Affected {
			qs = append(qs, Query{a.Package.Ecosystem, a.Package.Name, version})
			for _, v := range a.Versions {
				qs = append(qs, Query{a.Package.Ecosystem, a.Package.Name, v})
			}
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					qs = append(qs, Query{a.Package.Ecosystem, a.Package.Name, cmp.Or(e.Introduced, e.Fixed, e.LastAffected)})
				}
			}
		}
		got := l.db.Match(qs)
		for i, fi := range got {
			if fi.ID != doc.ID {
				t.Fatalf("finding %q for document %q", fi.ID, doc.ID)
			}
			if doc.Withdrawn != "" {
				t.Fatalf("finding for a withdrawn document: %+v", fi)
			}
			if i > 0 && compareQueries(got[i-1].Query, fi.Query) >= 0 {
				t.Fatalf("findings not sorted or not unique: %+v, %+v", got[i-1], fi)
			}
		}
	})
}
