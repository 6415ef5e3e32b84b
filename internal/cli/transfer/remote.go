package transfer

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/cli/progress"
)

// Options are what every transfer needs.
type Options struct {
	// Keychain finds the credentials for each registry; anonymous if nil.
	Keychain authn.Keychain
	// Transport carries the requests; remote.DefaultTransport if nil.
	Transport http.RoundTripper
	// Progress counts the bytes moved; nil shows nothing.
	Progress *progress.Bar
}

// remote returns the options for reading from registries.
func (o Options) remote(ctx context.Context) []remote.Option {
	t := o.transport()
	kc := o.Keychain
	if kc == nil {
		kc = authn.NewMultiKeychain() // resolves to anonymous
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(t)}
}

// write returns the options for one write to a registry, which reports its
// progress.
func (o Options) write(ctx context.Context) []remote.Option {
	opts := o.remote(ctx)
	if ch := o.Progress.Updates(); ch != nil {
		opts = append(opts, remote.WithProgress(ch))
	}
	return opts
}

// Copy copies src to dst: with platform nil an index whole, with all its
// children, or else only the image for the platform (dst then gets the
// image manifest, not an index). Blobs stream from registry to registry;
// on the same registry they are mounted across repositories. It returns
// dst's repository with the digest written.
func Copy(ctx context.Context, src, dst name.Reference, platform *v1.Platform, o Options) (name.Digest, error) {
	desc, err := remote.Get(src, o.remote(ctx)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("reading %s: %w", src, err)
	}
	t, digest, err := resolve(src, desc, platform)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.Push(dst, t, o.write(ctx)...); err != nil {
		return name.Digest{}, fmt.Errorf("writing %s: %w", dst, err)
	}
	o.Progress.Complete()
	return dst.Context().Digest(digest.String()), nil
}

// CopyTags copies every tag of the repository src to the same tag in dst,
// as Copy does, and returns what it wrote, in the order of the tag list.
func CopyTags(ctx context.Context, src, dst name.Repository, platform *v1.Platform, o Options) ([]name.Digest, error) {
	tags, err := remote.List(src, o.remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", src, err)
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("%s: %w", src, errNoTags)
	}
	var out []name.Digest
	for _, tag := range tags {
		d, err := Copy(ctx, src.Tag(tag), dst.Tag(tag), platform, o)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

var errNoTags = errors.New("the repository has no tags")

// resolve returns what to transfer for the platform: desc itself for nil,
// else the image of the index's child for that platform (or desc if it is
// an image of that platform).
func resolve(ref name.Reference, desc *remote.Descriptor, platform *v1.Platform) (remote.Taggable, v1.Hash, error) {
	if platform == nil {
		return desc, desc.Digest, nil
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("reading the index %s: %w", ref, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("reading the index %s: %w", ref, err)
		}
		child, err := selectPlatform(ref.String(), m, *platform)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		if child.MediaType.IsIndex() {
			nested, err := idx.ImageIndex(child.Digest)
			if err != nil {
				return nil, v1.Hash{}, fmt.Errorf("reading the index %s@%s: %w", ref.Context(), child.Digest, err)
			}
			return nested, child.Digest, nil
		}
		img, err := idx.Image(child.Digest)
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("reading the image %s@%s: %w", ref.Context(), child.Digest, err)
		}
		return img, child.Digest, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("reading the image %s: %w", ref, err)
	}
	// An image of another platform is refused; one without a platform in
	// its config (an artifact) is taken as it is.
	if cfg, err := img.ConfigFile(); err == nil && cfg.OS != "" {
		if p := cfg.Platform(); p != nil && !p.Satisfies(*platform) {
			return nil, v1.Hash{}, &PlatformError{Ref: ref.String(), Want: *platform, Available: []string{p.String()}}
		}
	}
	return desc, desc.Digest, nil
}

// imageOrIndex turns what resolve returned into an image or an index.
func imageOrIndex(t remote.Taggable) (v1.Image, v1.ImageIndex, error) {
	switch t := t.(type) {
	case *remote.Descriptor:
		if t.MediaType.IsIndex() {
			idx, err := t.ImageIndex()
			return nil, idx, err
		}
		img, err := t.Image()
		return img, nil, err
	case v1.ImageIndex:
		return nil, t, nil
	case v1.Image:
		return t, nil, nil
	}
	return nil, nil, fmt.Errorf("%T: %w", t, errNotImage)
}

var errNotImage = errors.New("neither an image nor an index")

// blobBytes adds up the sizes of the blobs of an image, or of every image
// of an index, for the total of a progress line.
func blobBytes(img v1.Image, idx v1.ImageIndex, depth int) int64 {
	if img != nil {
		m, err := img.Manifest()
		if err != nil {
			return 0
		}
		n := m.Config.Size
		for _, l := range m.Layers {
			n += l.Size
		}
		return n
	}
	m, err := idx.IndexManifest()
	if err != nil || depth > 4 {
		return 0
	}
	var n int64
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			if child, err := idx.ImageIndex(d.Digest); err == nil {
				n += blobBytes(nil, child, depth+1)
			}
		case d.MediaType.IsImage():
			if child, err := idx.Image(d.Digest); err == nil {
				n += blobBytes(child, nil, depth+1)
			}
		}
	}
	return n
}
