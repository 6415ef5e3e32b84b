package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the manifests the registry stores.
const (
	MediaTypeOCIManifest    = imagespec.MediaTypeImageManifest
	MediaTypeOCIIndex       = imagespec.MediaTypeImageIndex
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	// MediaTypeDockerForeignLayer is Docker's media type for layers (e.g.
	// Windows base layers) that are fetched from their URLs, not the registry.
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

	// Docker schema1 manifests, which are recognised only to be rejected.
	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// MaxManifestSize is the largest manifest accepted (4 MiB).
const MaxManifestSize = 4 << 20

// ErrInvalidManifest is wrapped by every manifest validation error.
var ErrInvalidManifest = errors.New("invalid manifest")

// ErrUnsupportedMediaType is returned for manifests of a type the registry does not store.
var ErrUnsupportedMediaType = errors.New("unsupported manifest media type")

// IsManifestMediaType reports whether mediaType is one of the manifest types the registry stores.
func IsManifestMediaType(mediaType string) bool {
	switch mediaType {
	case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList:
		return true
	}
	return false
}

// IsIndexMediaType reports whether mediaType is an index or manifest list.
func IsIndexMediaType(mediaType string) bool {
	return mediaType == MediaTypeOCIIndex || mediaType == MediaTypeDockerList
}

// IsExternalLayer reports whether a layer descriptor refers to content that
// is not pushed to the registry (non-distributable or foreign layers).
func IsExternalLayer(d imagespec.Descriptor) bool {
	return d.MediaType == MediaTypeDockerForeignLayer ||
		strings.HasPrefix(d.MediaType, "application/vnd.oci.image.layer.nondistributable.")
}

// ParsedManifest is what the registry needs to know about a manifest to store
// it and enforce referential integrity.
type ParsedManifest struct {
	MediaType string
	// Blobs are the referenced blobs that must exist in the repository
	// (config and layers, without external layers).
	Blobs []imagespec.Descriptor
	// Manifests are the child manifests of an index.
	Manifests []imagespec.Descriptor
	// Config is the config descriptor of an image manifest (nil for indexes).
	Config *imagespec.Descriptor
	// Subject is the manifest this one refers to (nil if none).
	Subject *imagespec.Descriptor
	// ArtifactType is the artifactType field, or for image manifests without
	// one, the config media type (as the referrers API reports it).
	ArtifactType string
	Annotations  map[string]string
}

// manifestFields is the union of the fields of all supported manifest types.
type manifestFields struct {
	SchemaVersion *int                   `json:"schemaVersion"`
	MediaType     string                 `json:"mediaType"`
	ArtifactType  string                 `json:"artifactType"`
	Config        *imagespec.Descriptor  `json:"config"`
	Layers        []imagespec.Descriptor `json:"layers"`
	Manifests     []imagespec.Descriptor `json:"manifests"`
	Subject       *imagespec.Descriptor  `json:"subject"`
	Annotations   map[string]string      `json:"annotations"`
	FSLayers      []json.RawMessage      `json:"fsLayers"`
	Blobs         []imagespec.Descriptor `json:"blobs"`
	Signatures    json.RawMessage        `json:"signatures"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, args...))
}

// ParseManifest validates a manifest body. contentType is the request's
// Content-Type header (may be empty); the returned media type is the one the
// manifest is stored and served with.
func ParseManifest(contentType string, body []byte) (*ParsedManifest, error) {
	if len(body) > MaxManifestSize {
		return nil, invalid("manifest is larger than %d bytes", MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var m manifestFields
	if err := dec.Decode(&m); err != nil {
		return nil, invalid("manifest is not valid JSON: %s", err.Error())
	}
	// Only JSON whitespace may follow the document. (Decoder.More is not
	// enough: it reports false for a stray "}" or "]".)
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, invalid("manifest has trailing data after the JSON document")
	}
	if err := checkKeys(body); err != nil {
		return nil, err
	}
	if isSchema1(contentType, m) {
		return nil, fmt.Errorf("%w: Docker schema1 manifests are not supported", ErrUnsupportedMediaType)
	}
	if m.SchemaVersion == nil || *m.SchemaVersion != 2 {
		return nil, invalid("schemaVersion must be 2")
	}

	mediaType, err := resolveMediaType(contentType, m)
	if err != nil {
		return nil, err
	}
	p := &ParsedManifest{MediaType: mediaType, Annotations: m.Annotations, ArtifactType: m.ArtifactType}
	if m.Subject != nil {
		if err := validateDescriptor("subject", *m.Subject); err != nil {
			return nil, err
		}
		p.Subject = m.Subject
	}

	if IsIndexMediaType(mediaType) {
		if m.Config != nil || m.Layers != nil {
			return nil, invalid("an index must not have config or layers")
		}
		for i, d := range m.Manifests {
			if err := validateDescriptor(fmt.Sprintf("manifests[%d]", i), d); err != nil {
				return nil, err
			}
		}
		p.Manifests = m.Manifests
		return p, nil
	}

	if m.Manifests != nil {
		return nil, invalid("an image manifest must not have a manifests list")
	}
	if m.Config == nil {
		return nil, invalid("config descriptor is missing")
	}
	if err := validateDescriptor("config", *m.Config); err != nil {
		return nil, err
	}
	p.Config = m.Config
	p.Blobs = append(p.Blobs, *m.Config)
	if m.Layers == nil && mediaType == MediaTypeDockerManifest {
		return nil, invalid("layers are missing")
	}
	for i, d := range m.Layers {
		if err := validateDescriptor(fmt.Sprintf("layers[%d]", i), d); err != nil {
			return nil, err
		}
		if !IsExternalLayer(d) {
			p.Blobs = append(p.Blobs, d)
		}
	}
	if p.ArtifactType == "" && mediaType == MediaTypeOCIManifest {
		p.ArtifactType = m.Config.MediaType
	}
	return p, nil
}

// isSchema1 reports whether the Content-Type or the body mark a manifest as
// Docker schema1 (signed or not), which is rejected as unsupported rather
// than as malformed.
func isSchema1(contentType string, m manifestFields) bool {
	if m.FSLayers != nil || m.Signatures != nil || (m.SchemaVersion != nil && *m.SchemaVersion == 1) {
		return true
	}
	ct, _, err := mime.ParseMediaType(contentType)
	return err == nil && (ct == mediaTypeDockerSchema1 || ct == mediaTypeDockerSchema1Signed)
}

func resolveMediaType(contentType string, m manifestFields) (string, error) {
	ct := ""
	if contentType != "" {
		parsed, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return "", invalid("malformed Content-Type %q", contentType)
		}
		ct = parsed
	}

	switch {
	case m.MediaType != "" && IsManifestMediaType(ct) && ct != m.MediaType:
		return "", invalid("mediaType %q does not match Content-Type %q", m.MediaType, ct)
	case m.MediaType != "":
		if !IsManifestMediaType(m.MediaType) {
			return "", fmt.Errorf("%w: %q", ErrUnsupportedMediaType, m.MediaType)
		}
		return m.MediaType, nil
	case IsManifestMediaType(ct):
		// Docker manifests always carry mediaType; OCI ones may omit it.
		if ct == MediaTypeDockerManifest || ct == MediaTypeDockerList {
			return "", invalid("mediaType field is required for %s", ct)
		}
		return ct, nil
	case m.Manifests != nil:
		return MediaTypeOCIIndex, nil
	case m.Config != nil:
		return MediaTypeOCIManifest, nil
	default:
		return "", invalid("cannot determine the manifest type: no mediaType field and no known Content-Type")
	}
}

func validateDescriptor(field string, d imagespec.Descriptor) error {
	if d.MediaType == "" {
		return invalid("%s: mediaType is missing", field)
	}
	if _, _, err := mime.ParseMediaType(d.MediaType); err != nil {
		return invalid("%s: malformed mediaType %q", field, d.MediaType)
	}
	if _, err := ParseDigest(string(d.Digest)); err != nil {
		return invalid("%s: %s", field, err.Error())
	}
	if d.Size < 0 {
		return invalid("%s: size must not be negative", field)
	}
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size {
			return invalid("%s: embedded data has %d bytes, size says %d", field, len(d.Data), d.Size)
		}
		if d.Digest.Algorithm().FromBytes(d.Data) != d.Digest {
			return invalid("%s: embedded data does not match the digest", field)
		}
	}
	return nil
}

// knownKeys are the JSON keys that ParseManifest (through manifestFields and
// imagespec.Descriptor) decodes into struct fields.
var knownKeys = []string{
	"schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests",
	"subject", "annotations", "fsLayers", "blobs", "signatures",
	"digest", "size", "urls", "data", "platform",
	"architecture", "os", "os.version", "os.features", "variant", "features",
}

// checkKeys rejects documents that parsers could read differently. Go's
// decoder matches struct field names case-insensitively and lets the last of
// duplicate keys win, while the specs' keys are case-sensitive and other
// parsers may keep the first duplicate. So a key that differs from a known
// key only in case, or a key that occurs twice in one object, would let the
// registry track other blobs than the ones a client pulls. body must be
// valid JSON.
func checkKeys(body []byte) error {
	type object struct {
		seen      map[string]bool
		freeForm  bool // keys are data (annotations), not field names
		expectKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*object // nil entries are arrays
	lastKey := ""
	valueDone := func() {
		if len(stack) > 0 && stack[len(stack)-1] != nil {
			stack[len(stack)-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalid("manifest is not valid JSON: %s", err.Error())
		}
		if len(stack) > 0 && stack[len(stack)-1] != nil && stack[len(stack)-1].expectKey {
			obj := stack[len(stack)-1]
			key, isKey := tok.(string)
			if !isKey { // the closing brace
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			if obj.seen[key] {
				return invalid("duplicate key %q", key)
			}
			obj.seen[key] = true
			if !obj.freeForm {
				for _, k := range knownKeys {
					if key != k && strings.EqualFold(key, k) {
						return invalid("key %q must be spelled %q", key, k)
					}
				}
			}
			obj.expectKey = false
			lastKey = key
			continue
		}
		switch tok {
		case json.Delim('{'):
			inObject := len(stack) > 0 && stack[len(stack)-1] != nil
			stack = append(stack, &object{
				seen:      make(map[string]bool),
				freeForm:  inObject && lastKey == "annotations",
				expectKey: true,
			})
		case json.Delim('['):
			stack = append(stack, nil)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}
