package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types used by the test manifests that the package does not name.
const (
	testOCIConfig      = "application/vnd.oci.image.config.v1+json"
	testOCILayer       = "application/vnd.oci.image.layer.v1.tar+gzip"
	testOCIForeign     = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	testDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	testEmptyConfig    = "application/vnd.oci.empty.v1+json"
	testArtifactType   = "application/vnd.example.sbom.v1+json"
	testSchema1Signed  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	testSchema1Payload = "application/vnd.docker.distribution.manifest.v1+json"
)

// obj is a JSON object under construction.
type obj = map[string]any

// descFor returns a descriptor object for the given content.
func descFor(mediaType, content string) obj {
	return obj{"mediaType": mediaType, "digest": digest.FromString(content).String(), "size": len(content)}
}

// with returns a copy of o with the given key set (or removed, for a nil value).
func with(o obj, key string, value any) obj {
	c := make(obj, len(o)+1)
	for k, v := range o {
		c[k] = v
	}
	if value == nil {
		delete(c, key)
	} else {
		c[key] = value
	}
	return c
}

func toJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	ociConfig    = descFor(testOCIConfig, "config")
	ociLayer1    = descFor(testOCILayer, "layer1")
	ociLayer2    = descFor(testOCILayer, "layer2")
	ociForeign   = with(descFor(testOCIForeign, "foreign"), "urls", []string{"https://example.com/layer"})
	dockerConfig = descFor(MediaTypeDockerConfig, "dconfig")
	dockerLayer  = descFor(testDockerLayer, "dlayer")
	dockerFor    = with(descFor(MediaTypeDockerForeignLayer, "dforeign"), "urls", []string{"https://example.com/d"})
	childImage   = descFor(MediaTypeOCIManifest, "child")
	childImage2  = descFor(MediaTypeOCIManifest, "child2")
	emptyConfig  = with(descFor(testEmptyConfig, "{}"), "data", []byte("{}"))

	ociManifest = obj{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIManifest,
		"config":        ociConfig,
		"layers":        []obj{ociLayer1, ociLayer2},
		"annotations":   obj{"org.opencontainers.image.title": "demo"},
	}
	ociIndex = obj{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIIndex,
		"manifests":     []obj{childImage, childImage2},
	}
	dockerManifest = obj{
		"schemaVersion": 2,
		"mediaType":     MediaTypeDockerManifest,
		"config":        dockerConfig,
		"layers":        []obj{dockerLayer},
	}
	dockerList = obj{
		"schemaVersion": 2,
		"mediaType":     MediaTypeDockerList,
		"manifests":     []obj{descFor(MediaTypeDockerManifest, "amd64"), descFor(MediaTypeDockerManifest, "arm64")},
	}
	artifactManifest = obj{
		"schemaVersion": 2,
		"mediaType":     MediaTypeOCIManifest,
		"artifactType":  testArtifactType,
		"config":        emptyConfig,
		"layers":        []obj{descFor("application/spdx+json", "sbom")},
		"subject":       descFor(MediaTypeOCIManifest, "subject"),
	}
	schema1Manifest = obj{
		"schemaVersion": 1,
		"name":          "acct/repo",
		"tag":           "latest",
		"architecture":  "amd64",
		"fsLayers":      []obj{{"blobSum": digest.FromString("x").String()}},
		"history":       []obj{{"v1Compatibility": "{}"}},
		"signatures":    []obj{{"signature": "abc"}},
	}
)

func digestsOf(descs []obj) []string {
	out := make([]string, len(descs))
	for i, d := range descs {
		out[i] = d["digest"].(string)
	}
	return out
}

func TestParseManifest(t *testing.T) {
	t.Parallel()
	type want struct {
		err          error
		mediaType    string
		blobs        []string
		manifests    []string
		config       bool
		subject      string
		artifactType string
	}
	ociWant := want{
		mediaType:    MediaTypeOCIManifest,
		blobs:        digestsOf([]obj{ociConfig, ociLayer1, ociLayer2}),
		config:       true,
		artifactType: testOCIConfig,
	}
	ociIndexWant := want{mediaType: MediaTypeOCIIndex, manifests: digestsOf([]obj{childImage, childImage2})}

	tests := []struct {
		name        string
		contentType string
		body        []byte
		want        want
	}{
		// The four manifest types.
		{"OCI manifest", MediaTypeOCIManifest, toJSON(t, ociManifest), ociWant},
		{"OCI index", MediaTypeOCIIndex, toJSON(t, ociIndex), ociIndexWant},
		{"Docker manifest", MediaTypeDockerManifest, toJSON(t, dockerManifest), want{
			mediaType: MediaTypeDockerManifest,
			blobs:     digestsOf([]obj{dockerConfig, dockerLayer}),
			config:    true,
		}},
		{"Docker list", MediaTypeDockerList, toJSON(t, dockerList), want{
			mediaType: MediaTypeDockerList,
			manifests: digestsOf(dockerList["manifests"].([]obj)),
		}},
		{"empty index", MediaTypeOCIIndex, toJSON(t, with(ociIndex, "manifests", []obj{})), want{mediaType: MediaTypeOCIIndex, manifests: []string{}}},
		{"OCI manifest without layers", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "layers", nil)), want{
			mediaType: MediaTypeOCIManifest, blobs: digestsOf([]obj{ociConfig}), config: true, artifactType: testOCIConfig,
		}},
		{"OCI manifest with sha512 digests", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "layers", []obj{
			{"mediaType": testOCILayer, "digest": digest.SHA512.FromString("l").String(), "size": 1},
		})), want{
			mediaType: MediaTypeOCIManifest, blobs: []string{ociConfig["digest"].(string), digest.SHA512.FromString("l").String()},
			config: true, artifactType: testOCIConfig,
		}},

		// Artifacts.
		{"artifact with artifactType and subject", MediaTypeOCIManifest, toJSON(t, artifactManifest), want{
			mediaType:    MediaTypeOCIManifest,
			blobs:        []string{emptyConfig["digest"].(string), digest.FromString("sbom").String()},
			config:       true,
			subject:      digest.FromString("subject").String(),
			artifactType: testArtifactType,
		}},
		{"index with artifactType and subject", MediaTypeOCIIndex, toJSON(t, with(with(ociIndex, "artifactType", testArtifactType), "subject", childImage)), want{
			mediaType:    MediaTypeOCIIndex,
			manifests:    ociIndexWant.manifests,
			subject:      childImage["digest"].(string),
			artifactType: testArtifactType,
		}},
		{"artifact with bad subject", MediaTypeOCIManifest, toJSON(t, with(artifactManifest, "subject", obj{"mediaType": MediaTypeOCIManifest, "digest": "sha256:nope", "size": 1})), want{err: ErrInvalidManifest}},
		{"artifact with subject without media type", MediaTypeOCIManifest, toJSON(t, with(artifactManifest, "subject", with(childImage, "mediaType", nil))), want{err: ErrInvalidManifest}},

		// External layers are validated, but not required to exist.
		{"OCI nondistributable layer", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "layers", []obj{ociForeign, ociLayer1})), want{
			mediaType: MediaTypeOCIManifest, blobs: digestsOf([]obj{ociConfig, ociLayer1}), config: true, artifactType: testOCIConfig,
		}},
		{"Docker foreign layer", MediaTypeDockerManifest, toJSON(t, with(dockerManifest, "layers", []obj{dockerFor, dockerLayer})), want{
			mediaType: MediaTypeDockerManifest, blobs: digestsOf([]obj{dockerConfig, dockerLayer}), config: true,
		}},
		{"foreign layer with bad digest", MediaTypeDockerManifest, toJSON(t, with(dockerManifest, "layers", []obj{with(dockerFor, "digest", "sha256:abc")})), want{err: ErrInvalidManifest}},

		// Embedded data.
		{"data matches", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "config", emptyConfig)), want{
			mediaType: MediaTypeOCIManifest, blobs: []string{emptyConfig["digest"].(string), ociLayer1["digest"].(string), ociLayer2["digest"].(string)},
			config: true, artifactType: testEmptyConfig,
		}},
		{"data does not match digest", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "config", with(emptyConfig, "data", []byte("[]")))), want{err: ErrInvalidManifest}},
		{"data does not match size", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "config", with(emptyConfig, "size", 3))), want{err: ErrInvalidManifest}},
		{"data is not base64", MediaTypeOCIManifest, replaceOnce(t, toJSON(t, with(ociManifest, "config", emptyConfig)), `"e30="`, `"{}"`), want{err: ErrInvalidManifest}},
		{"empty data", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "config", with(descFor(testOCIConfig, ""), "data", []byte{}))), want{
			mediaType: MediaTypeOCIManifest, blobs: []string{digest.FromString("").String(), ociLayer1["digest"].(string), ociLayer2["digest"].(string)},
			config: true, artifactType: testOCIConfig,
		}},

		// Media type resolution: Content-Type versus mediaType field.
		{"no Content-Type, mediaType field", "", toJSON(t, ociManifest), ociWant},
		{"Content-Type with parameters", MediaTypeOCIManifest + "; charset=utf-8", toJSON(t, ociManifest), ociWant},
		{"generic Content-Type, mediaType field wins", "application/json", toJSON(t, dockerManifest), want{
			mediaType: MediaTypeDockerManifest, blobs: digestsOf([]obj{dockerConfig, dockerLayer}), config: true,
		}},
		{"Content-Type only", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "mediaType", nil)), ociWant},
		{"index Content-Type only", MediaTypeOCIIndex, toJSON(t, with(ociIndex, "mediaType", nil)), ociIndexWant},
		{"neither, guessed from config", "", toJSON(t, with(ociManifest, "mediaType", nil)), ociWant},
		{"neither, guessed from manifests", "application/octet-stream", toJSON(t, with(ociIndex, "mediaType", nil)), ociIndexWant},
		{"neither, nothing to guess from", "", []byte(`{"schemaVersion":2}`), want{err: ErrInvalidManifest}},
		{"Content-Type contradicts mediaType", MediaTypeDockerManifest, toJSON(t, ociManifest), want{err: ErrInvalidManifest}},
		{"index Content-Type on a manifest", MediaTypeOCIIndex, toJSON(t, with(ociManifest, "mediaType", nil)), want{err: ErrInvalidManifest}},
		{"manifest Content-Type on an index", MediaTypeOCIManifest, toJSON(t, with(ociIndex, "mediaType", nil)), want{err: ErrInvalidManifest}},
		{"Docker Content-Type needs mediaType field", MediaTypeDockerManifest, toJSON(t, with(dockerManifest, "mediaType", nil)), want{err: ErrInvalidManifest}},
		{"Docker list Content-Type needs mediaType field", MediaTypeDockerList, toJSON(t, with(dockerList, "mediaType", nil)), want{err: ErrInvalidManifest}},
		{"malformed Content-Type", "application/", toJSON(t, ociManifest), want{err: ErrInvalidManifest}},
		{"unknown mediaType field", "", toJSON(t, with(ociManifest, "mediaType", "application/vnd.example+json")), want{err: ErrUnsupportedMediaType}},

		// Structural errors.
		{"index with layers", MediaTypeOCIIndex, toJSON(t, with(ociIndex, "layers", []obj{ociLayer1})), want{err: ErrInvalidManifest}},
		{"index with config", MediaTypeOCIIndex, toJSON(t, with(ociIndex, "config", ociConfig)), want{err: ErrInvalidManifest}},
		{"manifest with manifests", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "manifests", []obj{childImage})), want{err: ErrInvalidManifest}},
		{"manifest without config", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "config", nil)), want{err: ErrInvalidManifest}},
		{"Docker manifest without layers", MediaTypeDockerManifest, toJSON(t, with(dockerManifest, "layers", nil)), want{err: ErrInvalidManifest}},
		{"index child with bad digest", MediaTypeOCIIndex, toJSON(t, with(ociIndex, "manifests", []obj{with(childImage, "digest", "sha256:"+strings.Repeat("A", 64))})), want{err: ErrInvalidManifest}},
		{"layer with sha384 digest", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "layers", []obj{with(ociLayer1, "digest", digest.SHA384.FromString("x").String())})), want{err: ErrInvalidManifest}},
		{"layer without media type", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "layers", []obj{with(ociLayer1, "mediaType", nil)})), want{err: ErrInvalidManifest}},
		{"layer with malformed media type", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "layers", []obj{with(ociLayer1, "mediaType", "not a media type")})), want{err: ErrInvalidManifest}},
		{"layer with negative size", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "layers", []obj{with(ociLayer1, "size", -1)})), want{err: ErrInvalidManifest}},
		{"config without digest", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "config", with(ociConfig, "digest", nil))), want{err: ErrInvalidManifest}},
		{"schemaVersion 3", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "schemaVersion", 3)), want{err: ErrInvalidManifest}},
		{"schemaVersion missing", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "schemaVersion", nil)), want{err: ErrInvalidManifest}},
		{"schemaVersion as string", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "schemaVersion", "2")), want{err: ErrInvalidManifest}},

		// Keys are case-sensitive and unique, so that no parser reads the
		// document differently from the registry.
		{"key in other case", MediaTypeOCIManifest, replaceOnce(t, toJSON(t, ociManifest), `"layers"`, `"Layers"`), want{err: ErrInvalidManifest}},
		{"shadowing key in other case", MediaTypeOCIManifest, replaceOnce(t, toJSON(t, ociManifest), `"layers":`, `"layers":[],"LAYERS":`), want{err: ErrInvalidManifest}},
		{"descriptor key in other case", MediaTypeOCIManifest, replaceOnce(t, toJSON(t, ociManifest), `"digest"`, `"Digest"`), want{err: ErrInvalidManifest}},
		{"platform key in other case", MediaTypeOCIIndex, toJSON(t, with(ociIndex, "manifests", []obj{with(childImage, "platform", obj{"OS": "linux", "architecture": "amd64"})})), want{err: ErrInvalidManifest}},
		{"duplicate key", MediaTypeOCIManifest, replaceOnce(t, toJSON(t, ociManifest), `"layers":`, `"layers":[],"layers":`), want{err: ErrInvalidManifest}},
		{"duplicate descriptor key", MediaTypeOCIManifest, replaceOnce(t, toJSON(t, ociManifest), `"size":6`, `"size":6,"size":7`), want{err: ErrInvalidManifest}},
		{"duplicate annotation", MediaTypeOCIManifest, replaceOnce(t, toJSON(t, ociManifest), `"demo"`, `"demo","org.opencontainers.image.title":"other"`), want{err: ErrInvalidManifest}},
		{"annotation keys are free-form", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "annotations", obj{"Digest": "x", "MediaType": "y", "layers": "z"})), ociWant},
		{"unknown keys are fine", MediaTypeOCIManifest, toJSON(t, with(with(ociManifest, "x-extension", obj{"a": []any{1, obj{"b": nil}}}), "config", with(ociConfig, "Extra", true))), ociWant},
		{"platform", MediaTypeOCIIndex, toJSON(t, with(ociIndex, "manifests", []obj{with(childImage, "platform", obj{"os": "linux", "architecture": "arm64", "variant": "v8", "os.features": []string{"x"}})})), want{
			mediaType: MediaTypeOCIIndex, manifests: []string{childImage["digest"].(string)},
		}},

		// Docker schema1 is not supported, whatever it is labelled as.
		{"schema1 signed", testSchema1Signed, toJSON(t, schema1Manifest), want{err: ErrUnsupportedMediaType}},
		{"schema1 unsigned", testSchema1Payload, toJSON(t, with(schema1Manifest, "signatures", nil)), want{err: ErrUnsupportedMediaType}},
		{"schema1 without Content-Type", "", toJSON(t, schema1Manifest), want{err: ErrUnsupportedMediaType}},
		{"schema1 Content-Type on schema2 body", testSchema1Signed, toJSON(t, with(ociManifest, "mediaType", nil)), want{err: ErrUnsupportedMediaType}},
		{"schema1 fields with schemaVersion 2", MediaTypeDockerManifest, toJSON(t, with(dockerManifest, "fsLayers", []obj{})), want{err: ErrUnsupportedMediaType}},

		// Malformed documents.
		{"empty body", MediaTypeOCIManifest, nil, want{err: ErrInvalidManifest}},
		{"whitespace only", MediaTypeOCIManifest, []byte(" \n"), want{err: ErrInvalidManifest}},
		{"null", MediaTypeOCIManifest, []byte("null"), want{err: ErrInvalidManifest}},
		{"array", MediaTypeOCIManifest, []byte("[]"), want{err: ErrInvalidManifest}},
		{"string", MediaTypeOCIManifest, []byte(`"manifest"`), want{err: ErrInvalidManifest}},
		{"truncated", MediaTypeOCIManifest, toJSON(t, ociManifest)[:40], want{err: ErrInvalidManifest}},
		{"wrong field type", MediaTypeOCIManifest, toJSON(t, with(ociManifest, "layers", "none")), want{err: ErrInvalidManifest}},
		{"size overflows int64", MediaTypeOCIManifest, replaceOnce(t, toJSON(t, ociManifest), `"size":6`, `"size":99999999999999999999`), want{err: ErrInvalidManifest}},
		{"trailing whitespace is fine", MediaTypeOCIManifest, append(toJSON(t, ociManifest), " \r\n\t"...), ociWant},
		{"trailing garbage", MediaTypeOCIManifest, append(toJSON(t, ociManifest), "garbage"...), want{err: ErrInvalidManifest}},
		{"second document", MediaTypeOCIManifest, append(toJSON(t, ociManifest), toJSON(t, ociManifest)...), want{err: ErrInvalidManifest}},
		{"trailing closing brace", MediaTypeOCIManifest, append(toJSON(t, ociManifest), '}'), want{err: ErrInvalidManifest}},
		{"trailing closing bracket", MediaTypeOCIManifest, append(toJSON(t, ociManifest), " ]"...), want{err: ErrInvalidManifest}},
		{"trailing NUL", MediaTypeOCIManifest, append(toJSON(t, ociManifest), 0), want{err: ErrInvalidManifest}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseManifest(tc.contentType, tc.body)
			if tc.want.err != nil {
				if !errors.Is(err, tc.want.err) {
					t.Fatalf("got error %v, want %v", err, tc.want.err)
				}
				if p != nil {
					t.Errorf("got a result together with an error: %+v", p)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if p.MediaType != tc.want.mediaType {
				t.Errorf("MediaType = %q, want %q", p.MediaType, tc.want.mediaType)
			}
			if got := descriptorDigests(p.Blobs); !slices.Equal(got, tc.want.blobs) {
				t.Errorf("Blobs = %v, want %v", got, tc.want.blobs)
			}
			if got := descriptorDigests(p.Manifests); !slices.Equal(got, tc.want.manifests) {
				t.Errorf("Manifests = %v, want %v", got, tc.want.manifests)
			}
			if (p.Config != nil) != tc.want.config {
				t.Errorf("Config = %v, want present=%v", p.Config, tc.want.config)
			}
			if p.Config != nil && (len(p.Blobs) == 0 || p.Blobs[0].Digest != p.Config.Digest) {
				t.Errorf("the config %s is not the first blob", p.Config.Digest)
			}
			gotSubject := ""
			if p.Subject != nil {
				gotSubject = p.Subject.Digest.String()
			}
			if gotSubject != tc.want.subject {
				t.Errorf("Subject = %q, want %q", gotSubject, tc.want.subject)
			}
			if p.ArtifactType != tc.want.artifactType {
				t.Errorf("ArtifactType = %q, want %q", p.ArtifactType, tc.want.artifactType)
			}
		})
	}
}

func TestParseManifestAnnotations(t *testing.T) {
	t.Parallel()
	p, err := ParseManifest("", toJSON(t, ociManifest))
	if err != nil {
		t.Fatal(err)
	}
	if p.Annotations["org.opencontainers.image.title"] != "demo" || len(p.Annotations) != 1 {
		t.Errorf("Annotations = %v", p.Annotations)
	}
}

func TestParseManifestSizeLimit(t *testing.T) {
	t.Parallel()
	base := toJSON(t, ociManifest)
	// Pad the document with whitespace before the closing brace, which
	// keeps it valid JSON, to exactly the limit and one byte beyond it.
	pad := func(total int) []byte {
		b := make([]byte, 0, total)
		b = append(b, base[:len(base)-1]...)
		b = append(b, bytes.Repeat([]byte{' '}, total-len(base))...)
		return append(b, '}')
	}
	atLimit := pad(MaxManifestSize)
	if _, err := ParseManifest(MediaTypeOCIManifest, atLimit); err != nil {
		t.Errorf("manifest of exactly %d bytes rejected: %v", len(atLimit), err)
	}
	overLimit := pad(MaxManifestSize + 1)
	if _, err := ParseManifest(MediaTypeOCIManifest, overLimit); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("manifest of %d bytes: got %v, want ErrInvalidManifest", len(overLimit), err)
	}

	// A large manifest with many layers is still parsed in full.
	layers := make([]obj, 20000)
	for i := range layers {
		layers[i] = ociLayer1
	}
	big := toJSON(t, with(ociManifest, "layers", layers))
	if len(big) > MaxManifestSize {
		t.Fatalf("test manifest is too large: %d bytes", len(big))
	}
	p, err := ParseManifest("", big)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Blobs) != len(layers)+1 {
		t.Errorf("got %d blobs, want %d", len(p.Blobs), len(layers)+1)
	}
}

func TestMediaTypeHelpers(t *testing.T) {
	t.Parallel()
	for _, mt := range []string{MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList} {
		if !IsManifestMediaType(mt) {
			t.Errorf("IsManifestMediaType(%q) = false", mt)
		}
	}
	for _, mt := range []string{"", testSchema1Signed, MediaTypeDockerConfig, testOCILayer, "application/json"} {
		if IsManifestMediaType(mt) {
			t.Errorf("IsManifestMediaType(%q) = true", mt)
		}
	}
	if !IsIndexMediaType(MediaTypeOCIIndex) || !IsIndexMediaType(MediaTypeDockerList) ||
		IsIndexMediaType(MediaTypeOCIManifest) || IsIndexMediaType(MediaTypeDockerManifest) {
		t.Error("IsIndexMediaType misclassifies a manifest type")
	}
}

// replaceOnce replaces the first occurrence of old in body, which must exist.
func replaceOnce(t testing.TB, body []byte, old, replacement string) []byte {
	t.Helper()
	if !bytes.Contains(body, []byte(old)) {
		t.Fatalf("%s does not contain %s", body, old)
	}
	return bytes.Replace(body, []byte(old), []byte(replacement), 1)
}

func descriptorDigests(descs []imagespec.Descriptor) []string {
	out := make([]string, len(descs))
	for i, d := range descs {
		out[i] = d.Digest.String()
	}
	return out
}

func BenchmarkParseManifest(b *testing.B) {
	layers := make([]obj, 100)
	for i := range layers {
		layers[i] = ociLayer1
	}
	body := toJSON(b, with(ociManifest, "layers", layers))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseManifest(MediaTypeOCIManifest, body); err != nil {
			b.Fatal(err)
		}
	}
}
