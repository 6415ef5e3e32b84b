package transfer

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Manifest is an image or an index that can be pushed.
type Manifest interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

// Source is what `keppel push` reads: one image or one index.
type Source struct {
	// Manifest is the image or index to push.
	Manifest Manifest
	// Kind says what the source was, for messages.
	Kind string
	// tmp is a directory to remove when done.
	tmp string
}

// Close removes what the source unpacked.
func (s *Source) Close() error {
	if s.tmp == "" {
		return nil
	}
	if err := os.RemoveAll(s.tmp); err != nil {
		return fmt.Errorf("removing the unpacked layout: %w", err)
	}
	return nil
}

// ErrUnknownSource is returned for sources that are neither an OCI image
// layout nor a tarball that push can read.
var ErrUnknownSource = errors.New("not an OCI image layout (a directory with index.json) nor a tarball of docker save or of an OCI image layout")

// Open reads a source: an OCI image layout directory, or a tar file of
// `docker save` or of an OCI image layout. A layout with one entry in its
// index.json gives that image or index; a layout with several gives
// index.json itself as an index of them all. A tarball of an OCI layout
// is unpacked into a temporary directory (under tmpDir, or the system's
// if empty) that Close removes.
func Open(source, tmpDir string) (*Source, error) {
	info, err := os.Stat(source)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", source, err)
	}
	if info.IsDir() {
		m, err := openLayout(source)
		if err != nil {
			return nil, err
		}
		return &Source{Manifest: m, Kind: "OCI image layout"}, nil
	}
	names, err := tarNames(source)
	if err != nil {
		return nil, err
	}
	switch {
	case names["index.json"]:
		// An OCI layout, which docker save also writes since Docker 25:
		// pushed as it is, with the digests it has.
		dir, err := os.MkdirTemp(tmpDir, "keppel-push-*")
		if err != nil {
			return nil, fmt.Errorf("unpacking %s: %w", source, err)
		}
		s := &Source{Kind: "OCI image layout tarball", tmp: dir}
		if err := unpackLayout(source, dir); err != nil {
			_ = s.Close()
			return nil, err
		}
		if s.Manifest, err = openLayout(dir); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		return s, nil
	case names["manifest.json"]:
		img, err := openDockerTarball(source)
		if err != nil {
			return nil, err
		}
		return &Source{Manifest: img, Kind: "docker tarball"}, nil
	}
	return nil, fmt.Errorf("%s: %w", source, ErrUnknownSource)
}

// openLayout reads an OCI image layout.
func openLayout(dir string) (Manifest, error) {
	lp, err := layout.FromPath(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrUnknownSource)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the layout %s: %w", dir, err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading the layout %s: %w", dir, err)
	}
	m, err := root.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, "index.json"), err)
	}
	if len(m.Manifests) != 1 {
		if len(m.Manifests) == 0 {
			return nil, fmt.Errorf("the layout %s: %w", dir, errEmptyLayout)
		}
		return root, nil
	}
	d := m.Manifests[0]
	switch {
	case d.MediaType.IsIndex():
		idx, err := root.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading the index %s in %s: %w", d.Digest, dir, err)
		}
		return idx, nil
	case d.MediaType.IsImage():
		img, err := root.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading the image %s in %s: %w", d.Digest, dir, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("the layout %s lists %s of media type %q: %w", dir, d.Digest, d.MediaType, errNotImage)
}

var errEmptyLayout = errors.New("index.json lists no image")

// tarNames lists the regular files in a tar file (with "./" cleaned off).
func tarNames(file string) (map[string]bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		return nil, fmt.Errorf("%s: %w", file, errCompressed)
	}
	names := map[string]bool{}
	tr := tar.NewReader(br)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w (%w)", file, ErrUnknownSource, err)
		}
		if h.Typeflag == tar.TypeReg {
			names[cleanTarName(h.Name)] = true
		}
	}
}

var errCompressed = errors.New("the tarball is compressed: decompress it first (gunzip), push takes a plain tar file")

func cleanTarName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// layoutFile matches the files of an OCI layout that unpackLayout writes;
// nothing else (and no path that leaves the directory) is written.
var layoutFile = regexp.MustCompile(`^(index\.json|oci-layout|blobs/[a-z0-9]+/[a-f0-9]{32,128})$`)

// unpackLayout streams the files of an OCI layout out of a tar file into
// dir.
func unpackLayout(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", file, err)
		}
		n := cleanTarName(h.Name)
		if h.Typeflag != tar.TypeReg || !layoutFile.MatchString(n) {
			continue
		}
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(n)), tr); err != nil {
			return fmt.Errorf("unpacking %s from %s: %w", n, file, err)
		}
	}
}

func writeFile(p string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// openDockerTarball reads the one image of a `docker save` tarball.
func openDockerTarball(file string) (v1.Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("reading manifest.json of %s: %w", file, err)
	}
	if len(m) != 1 {
		var tags []string
		for _, d := range m {
			tags = append(tags, d.RepoTags...)
		}
		return nil, fmt.Errorf("%s holds %d images (%s): %w", file, len(m), strings.Join(tags, ", "), errManyImages)
	}
	img, err := tarball.Image(opener, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the image in %s: %w", file, err)
	}
	return img, nil
}

var errManyImages = errors.New("push takes a tarball of one image: docker save one image")

// Push pushes the source to dst and returns dst's repository with the
// digest that was pushed.
func Push(ctx context.Context, src *Source, dst name.Reference, o Options) (name.Digest, error) {
	d, err := src.Manifest.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("reading the %s: %w", src.Kind, err)
	}
	if err := remote.Push(dst, src.Manifest, o.write(ctx)...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing to %s: %w", dst, err)
	}
	o.Progress.Complete()
	return dst.Context().Digest(d.String()), nil
}
