// Package transfer moves container images between registries, OCI image
// layouts and docker-style tarballs for the client commands: it chooses
// the image of a platform from an index, reads what `keppel push` takes and
// writes what `keppel pull` gives. Blobs are streamed, never held in memory.
package transfer

import (
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// AllPlatforms is the --platform value that selects an index whole.
const AllPlatforms = "all"

// ParsePlatform parses os/arch[/variant][:osversion]; "all" (or nothing)
// gives nil, which stands for every platform.
func ParsePlatform(s string) (*v1.Platform, error) {
	if s == "" || s == AllPlatforms {
		return nil, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", s, err)
	}
	if p.OS == "" || p.Architecture == "" || strings.Count(s, "/") > 2 {
		return nil, fmt.Errorf("platform %q: %w", s, errPlatformSyntax)
	}
	return p, nil
}

var errPlatformSyntax = errors.New("want os/arch[/variant] (like linux/arm64) or all")

// ErrNoSuchPlatform is what a PlatformError wraps.
var ErrNoSuchPlatform = errors.New("no image for the platform")

// PlatformError says that an index (or image) has no image for the
// platform asked for, and which platforms it has.
type PlatformError struct {
	// Ref is the image reference that was asked for.
	Ref string
	// Want is the platform that was asked for.
	Want v1.Platform
	// Available are the platforms that the index or image has.
	Available []string
}

// Error names the available platforms, so that the user can pick one.
func (e *PlatformError) Error() string {
	have := "none"
	if len(e.Available) > 0 {
		have = strings.Join(e.Available, ", ")
	}
	return fmt.Sprintf("%s has no image for platform %s; available platforms: %s (choose one with --platform, or --platform all)",
		e.Ref, e.Want.String(), have)
}

// Unwrap makes the error match ErrNoSuchPlatform.
func (e *PlatformError) Unwrap() error { return ErrNoSuchPlatform }

// platformString renders a descriptor's platform, or "unknown" for none.
func platformString(p *v1.Platform) string {
	if p == nil || (p.OS == "" && p.Architecture == "") {
		return "unknown"
	}
	return p.String()
}

// selectPlatform picks the child of an index for the platform: one that
// equals it, else the first one that satisfies it (linux/arm64 is satisfied
// by linux/arm64/v8).
func selectPlatform(ref string, m *v1.IndexManifest, want v1.Platform) (v1.Descriptor, error) {
	var first *v1.Descriptor
	for i, d := range m.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.Equals(want) {
			return d, nil
		}
		if first == nil && d.Platform.Satisfies(want) {
			first = &m.Manifests[i]
		}
	}
	if first != nil {
		return *first, nil
	}
	e := &PlatformError{Ref: ref, Want: want}
	for _, d := range m.Manifests {
		e.Available = append(e.Available, platformString(d.Platform))
	}
	return v1.Descriptor{}, e
}
