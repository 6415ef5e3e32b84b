package osvdb

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// MaxDocumentSize bounds the size of one OSV document. Larger documents are
// skipped and reported by DB.Skipped.
const MaxDocumentSize = 16 << 20

// ErrMalformedDocument is wrapped by the error of Open for a document that
// is not an OSV document.
var ErrMalformedDocument = errors.New("malformed OSV document")

// errTooLarge is returned by readDocument for a document larger than
// MaxDocumentSize.
var errTooLarge = fmt.Errorf("larger than %d bytes", MaxDocumentSize)

// Open loads every advisory below dir: the OSV documents in the archives
// <dir>/<Ecosystem>/*.zip (osv.dev publishes all.zip) and the plain documents
// <dir>/<Ecosystem>/*.json. Within an ecosystem folder, archives are read
// before plain documents, each set in name order, and a later document
// replaces an earlier one with the same ID, so that a plain document can
// update or withdraw an advisory of an archive. Names that start with a dot
// are ignored, so a file can be written under such a name and renamed into
// place once complete.
//
// An empty dir gives an empty DB; a missing dir, an archive that cannot be
// read or a malformed document is an error that names the file. Withdrawn
// advisories are left out.
func Open(dir string) (*DB, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("osvdb: reading the advisory directory: %w", err)
	}
	l := newLoader(dir)
	for _, ent := range entries {
		name := ent.Name()
		if ignored(name) {
			continue
		}
		// Stat follows symbolic links to ecosystem folders.
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("osvdb: %w", err)
		}
		if !fi.IsDir() {
			continue
		}
		if err := l.loadEcosystem(name); err != nil {
			return nil, err
		}
	}
	return l.db, nil
}

// ignored reports whether a directory entry is left alone.
func ignored(name string) bool {
	return strings.HasPrefix(name, ".")
}

// loader builds a DB.
type loader struct {
	root string
	in   interner
	db   *DB
	buf  bytes.Buffer
}

func newLoader(root string) *loader {
	return &loader{
		root: root,
		in:   interner{},
		db:   &DB{index: map[packageKey][]*entry{}, stats: map[string]int{}},
	}
}

// ecosystemDocs collects the advisories of one ecosystem folder, a later one
// replacing an earlier one with the same ID.
type ecosystemDocs struct {
	byID  map[string]*compiled
	order []string
}

func newEcosystemDocs() *ecosystemDocs {
	return &ecosystemDocs{byID: map[string]*compiled{}}
}

func (d *ecosystemDocs) add(c *compiled) {
	if _, ok := d.byID[c.id]; !ok {
		d.order = append(d.order, c.id)
	}
	d.byID[c.id] = c
}

// loadEcosystem reads the folder <root>/<name>.
func (l *loader) loadEcosystem(name string) error {
	entries, err := os.ReadDir(filepath.Join(l.root, name))
	if err != nil {
		return fmt.Errorf("osvdb: %w", err)
	}
	var archives, plain []string
	for _, ent := range entries {
		switch n := ent.Name(); {
		case ignored(n) || ent.IsDir():
		case strings.HasSuffix(n, ".zip"):
			archives = append(archives, n)
		case strings.HasSuffix(n, ".json"):
			plain = append(plain, n)
		}
	}
	docs := newEcosystemDocs()
	for _, n := range archives {
		if err := l.readArchive(path.Join(name, n), docs); err != nil {
			return err
		}
	}
	for _, n := range plain {
		if err := l.readPlain(path.Join(name, n), docs); err != nil {
			return err
		}
	}
	l.index(name, docs)
	return nil
}

// index adds the advisories of an ecosystem folder to the DB.
func (l *loader) index(name string, docs *ecosystemDocs) {
	count := 0
	for _, id := range docs.order {
		c := docs.byID[id]
		if c.withdrawn {
			continue
		}
		count++
		for _, ce := range c.entries {
			l.db.index[ce.key] = append(l.db.index[ce.key], ce.e)
		}
	}
	l.db.stats[name] = count
}

// readArchive reads the documents of a zip archive; rel is its path below
// the root, with forward slashes.
func (l *loader) readArchive(rel string, docs *ecosystemDocs) error {
	zr, err := zip.OpenReader(filepath.Join(l.root, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("osvdb: %s: %w", rel, err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		file := rel + ":" + f.Name
		if f.UncompressedSize64 > MaxDocumentSize {
			l.skip(file, errTooLarge)
			continue
		}
		if err := l.readArchived(file, f, docs); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) readArchived(file string, f *zip.File, docs *ecosystemDocs) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("osvdb: %s: %w", file, err)
	}
	defer rc.Close()
	return l.readDocument(file, rc, docs)
}

// readPlain reads a plain JSON document; rel is its path below the root.
func (l *loader) readPlain(rel string, docs *ecosystemDocs) error {
	f, err := os.Open(filepath.Join(l.root, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("osvdb: %w", err)
	}
	defer f.Close()
	return l.readDocument(rel, f, docs)
}

// readDocument reads, decodes and compiles one document.
func (l *loader) readDocument(file string, r io.Reader, docs *ecosystemDocs) error {
	l.buf.Reset()
	n, err := l.buf.ReadFrom(io.LimitReader(r, MaxDocumentSize+1))
	if err != nil {
		return fmt.Errorf("osvdb: %s: %w", file, err)
	}
	if n > MaxDocumentSize {
		l.skip(file, errTooLarge)
		return nil
	}
	doc, err := decodeDocument(l.buf.Bytes())
	if err != nil {
		return fmt.Errorf("osvdb: %s: %w: %w", file, ErrMalformedDocument, err)
	}
	docs.add(compile(doc, l.in))
	return nil
}

func (l *loader) skip(file string, reason error) {
	l.db.skipped = append(l.db.skipped, Skip{File: file, Reason: reason.Error()})
}
