package transfer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Format is what Pull writes.
type Format string

// The formats Pull writes.
const (
	// FormatOCI is an OCI image layout directory.
	FormatOCI Format = "oci"
	// FormatTarball is a tarball as `docker save` writes it, for
	// `docker load`.
	FormatTarball Format = "tarball"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatOCI, FormatTarball:
		return f, nil
	}
	return "", fmt.Errorf("format %q: %w", s, errFormat)
}

var errFormat = errors.New("want oci or tarball")

var errTarballIndex = errors.New("a tarball holds one image: choose it with --platform, or pull the index with --format oci")

// The annotations on the entries of a layout's index.json, as docker save
// writes them: the full image name and the tag.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// DefaultTarballPlatform is the platform that a tarball pull takes from an
// index when none is given, as docker pull does: linux on this machine's
// architecture.
func DefaultTarballPlatform() *v1.Platform {
	return &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// Pull reads src and writes it to dest: for FormatOCI into the OCI image
// layout dest (created if missing, else added to, replacing an entry of the
// same name), an index whole if platform is nil; for FormatTarball into the
// file dest, which is written under another name and moved into place when
// complete, an image (of platform, which must be given for an index). It
// returns src's repository with the digest that was written.
func Pull(ctx context.Context, src name.Reference, dest string, format Format, platform *v1.Platform, o Options) (name.Digest, error) {
	o.Transport = o.Progress.Transport(o.transport())
	desc, err := remote.Get(src, o.remote(ctx)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("reading %s: %w", src, err)
	}
	if format == FormatTarball && platform == nil && desc.MediaType.IsIndex() {
		return name.Digest{}, fmt.Errorf("%s is an index of the platforms %s: %w",
			src, strings.Join(availablePlatforms(desc), ", "), errTarballIndex)
	}
	t, digest, err := resolve(src, desc, platform)
	if err != nil {
		return name.Digest{}, err
	}
	img, idx, err := imageOrIndex(t)
	if err != nil {
		return name.Digest{}, fmt.Errorf("reading %s: %w", src, err)
	}
	if o.Progress != nil {
		o.Progress.AddTotal(blobBytes(img, idx, 0))
	}
	switch format {
	case FormatOCI:
		err = writeLayout(dest, src, digest, img, idx)
	case FormatTarball:
		if img == nil {
			return name.Digest{}, fmt.Errorf("%s@%s is an index: a tarball holds images", src.Context(), digest)
		}
		err = writeTarball(dest, src, img)
	default:
		err = fmt.Errorf("format %q: %w", format, errFormat)
	}
	if err != nil {
		return name.Digest{}, err
	}
	o.Progress.Complete()
	return src.Context().Digest(digest.String()), nil
}

func (o Options) transport() http.RoundTripper {
	if o.Transport == nil {
		return remote.DefaultTransport
	}
	return o.Transport
}

// availablePlatforms lists the platforms of an index, for messages.
func availablePlatforms(desc *remote.Descriptor) []string {
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range m.Manifests {
		out = append(out, platformString(d.Platform))
	}
	return out
}

// writeLayout adds the image or index to the OCI layout dir.
func writeLayout(dir string, ref name.Reference, digest v1.Hash, img v1.Image, idx v1.ImageIndex) error {
	lp, err := openOrCreateLayout(dir)
	if err != nil {
		return err
	}
	annotations := map[string]string{annotationImageName: ref.Name()}
	if tag, ok := ref.(name.Tag); ok {
		annotations[annotationRefName] = tag.TagStr()
	}
	// A second pull of the same name replaces the entry of the first.
	matcher := match.Annotation(annotationImageName, ref.Name())
	if idx != nil {
		err = lp.ReplaceIndex(idx, matcher, layout.WithAnnotations(annotations))
	} else {
		err = lp.ReplaceImage(img, matcher, layout.WithAnnotations(annotations))
	}
	if err != nil {
		return fmt.Errorf("writing %s@%s into %s: %w", ref.Context(), digest, dir, err)
	}
	return nil
}

// openOrCreateLayout opens the layout dir, or makes a new one where there
// is nothing or an empty directory.
func openOrCreateLayout(dir string) (layout.Path, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reading %s: %w", dir, err)
	}
	if len(entries) == 0 {
		lp, err := layout.Write(dir, empty.Index)
		if err != nil {
			return "", fmt.Errorf("creating the layout %s: %w", dir, err)
		}
		return lp, nil
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return "", fmt.Errorf("%s is not empty and not an OCI image layout (no index.json): %w", dir, err)
	}
	return lp, nil
}

// writeTarball writes the image as a docker tarball to file, by way of a
// temporary file in the same directory, so that file is either complete or
// not changed.
func writeTarball(file string, ref name.Reference, img v1.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".keppel-pull-*.tar")
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	defer os.Remove(tmp.Name()) // nothing left after the rename
	if err := tarball.Write(ref, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}
