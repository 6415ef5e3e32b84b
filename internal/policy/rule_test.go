package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// image returns a typical image manifest input with n layers.
func image(n int) ManifestInput {
	layers := make([]Layer, n)
	for i := range layers {
		layers[i] = Layer{MediaType: ociLayer, Digest: fmt.Sprintf("sha256:%064x", i), Size: int64(1000 * (i + 1))}
	}
	return ManifestInput{
		RepoName:  "prod/app",
		MediaType: ociManifest,
		Labels: map[string]string{
			"org.opencontainers.image.source": "https://example.com/app",
			"maintainer":                      "team@example.com",
		},
		Layers:      layers,
		Annotations: map[string]string{"org.opencontainers.image.created": "2025-01-01T00:00:00Z"},
	}
}

func TestCompileRuleRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		expr    string
		wantErr string
	}{
		{"syntax error", `labels[`, "Syntax error"},
		{"undeclared variable", `tags.size() > 0`, "undeclared reference to 'tags'"},
		{"wrong operand types", `repo_name > 5`, "found no matching overload"},
		{"string result", `repo_name`, "must evaluate to bool, but evaluates to string"},
		{"int result", `size(layers)`, "must evaluate to bool, but evaluates to int"},
		{"dyn result", `layers[0].size`, "must evaluate to bool, but evaluates to dyn"},
		{"too long", `true || ` + strings.Repeat(`repo_name == "x" || `, 250) + `false`, "at most 4096 are allowed"},
		{"nested comprehensions over cost", `layers.all(a, layers.all(b, layers.all(c, a.size + b.size + c.size < 1000000)))`,
			"too expensive"},
		{"quadratic string work over cost", `annotations.all(k, annotations.all(j, annotations[k] != annotations[j]))`,
			"too expensive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := CompileRule(tt.expr)
			if err == nil {
				t.Fatalf("CompileRule accepted %q", tt.expr)
			}
			if r != nil || !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got (%v, %q), want an ErrInvalidRule containing %q", r, err, tt.wantErr)
			}
		})
	}
}

func TestRuleCheck(t *testing.T) {
	t.Parallel()
	unlabelled := image(2)
	unlabelled.Labels = nil
	index := ManifestInput{RepoName: "prod/app", MediaType: ociIndex}
	artifact := ManifestInput{RepoName: "sboms/app", MediaType: ociManifest, ArtifactType: "application/spdx+json",
		Layers: []Layer{{MediaType: "application/spdx+json", Digest: "sha256:00", Size: 10}}}

	tests := []struct {
		name string
		expr string
		in   ManifestInput
		// want is "" if the rule must hold, "false" if it must evaluate to
		// false, or a substring of the runtime error.
		want string
	}{
		{"label required: present", `"org.opencontainers.image.source" in labels`, image(1), ""},
		{"label required: missing", `"org.opencontainers.image.source" in labels`, unlabelled, "false"},
		{"label value", `labels["maintainer"].endsWith("@example.com")`, image(1), ""},
		{"labels of indexes are empty", `media_type == "` + ociIndex + `" || "maintainer" in labels`, index, ""},
		{"index fails label rule", `"maintainer" in labels`, index, "false"},
		{"layer count ok", `size(layers) <= 3`, image(3), ""},
		{"layer count exceeded", `size(layers) <= 3`, image(4), "false"},
		{"layer sizes", `layers.all(l, l.size <= 5000)`, image(5), ""},
		{"layer size exceeded", `layers.all(l, l.size <= 5000)`, image(6), "false"},
		{"layer media types", `layers.all(l, l.media_type.startsWith("application/vnd.oci.image.layer."))`, image(2), ""},
		{"layer digests", `layers.exists(l, l.digest == "sha256:` + strings.Repeat("0", 64) + `")`, image(1), ""},
		{"media type allowed", `media_type in ["` + ociManifest + `", "` + ociIndex + `"]`, index, ""},
		{"media type refused", `media_type != "application/vnd.docker.distribution.manifest.v1+json"`,
			ManifestInput{MediaType: "application/vnd.docker.distribution.manifest.v1+json"}, "false"},
		{"repo name without account", `repo_name.matches("^prod/[a-z]+$")`, image(1), ""},
		{"annotations", `has(annotations.org) || "org.opencontainers.image.created" in annotations`, image(1), ""},
		{"artifact type", `artifact_type == "" || artifact_type.startsWith("application/")`, artifact, ""},
		{"artifact repo", `artifact_type != "" && repo_name.startsWith("sboms/")`, artifact, ""},
		{"string extension", `repo_name.lowerAscii() == repo_name`, image(1), ""},
		{"missing map key", `labels["com.example.team"] == "infra"`, image(1), "no such key: com.example.team"},
		{"missing layer", `layers[0].size > 0`, index, "index out of bounds: 0"},
		{"division by zero", `size(layers) / size(labels) > 0`, index, "division by zero"},
		{"over-cost at run time", `layers.all(a, layers.all(b, a.size >= 0))`, image(2000), "cost limit exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := CompileRule(tt.expr)
			if err != nil {
				t.Fatalf("CompileRule: %v", err)
			}
			if r.String() != tt.expr {
				t.Errorf("String() = %q", r.String())
			}
			err = r.Check(tt.in)
			switch tt.want {
			case "":
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			case "false":
				var rerr *RuleError
				if !errors.As(err, &rerr) || rerr.Err != nil || rerr.Rule != tt.expr {
					t.Fatalf("got %v, want a *RuleError for a false rule", err)
				}
				if want := fmt.Sprintf("manifest does not satisfy the validation rule %q", tt.expr); err.Error() != want {
					t.Errorf("message is %q, want %q", err, want)
				}
			default:
				var rerr *RuleError
				if !errors.As(err, &rerr) || rerr.Err == nil {
					t.Fatalf("got %v, want a *RuleError with a runtime error", err)
				}
				if !strings.Contains(err.Error(), "could not be checked against the validation rule") ||
					!strings.Contains(err.Error(), tt.want) {
					t.Errorf("message %q does not contain %q", err, tt.want)
				}
			}
			if !errors.Is(err, ErrRuleNotSatisfied) {
				t.Errorf("errors.Is(%v, ErrRuleNotSatisfied) is false", err)
			}
		})
	}
}

func TestEmptyRule(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{"", "  \n\t"} {
		r, err := CompileRule(expr)
		if r != nil || err != nil {
			t.Fatalf("CompileRule(%q) = (%v, %v), want (nil, nil)", expr, r, err)
		}
		if err := r.Check(image(1)); err != nil {
			t.Errorf("a nil rule refused a manifest: %v", err)
		}
		if r.String() != "" {
			t.Error("a nil rule has an expression")
		}
	}
}

func TestRuleErrorShortensLongRules(t *testing.T) {
	t.Parallel()
	expr := `repo_name == "` + strings.Repeat("ü", 300) + `"`
	r, err := CompileRule(expr)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Check(image(0))
	msg := err.Error()
	if len(msg) > 300 || !strings.HasSuffix(msg, `…"`) || !strings.Contains(msg, `repo_name == \"üü`) {
		t.Errorf("message not shortened as expected: %s", msg)
	}
	if !strings.Contains(err.(*RuleError).Rule, strings.Repeat("ü", 300)) {
		t.Error("RuleError.Rule must hold the whole rule")
	}
}

func TestCompileRuleCache(t *testing.T) {
	t.Parallel()
	expr := `size(layers) < 42 && repo_name != "cache-test"`
	r1, err := CompileRule(expr)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := CompileRule(expr)
	if err != nil {
		t.Fatal(err)
	}
	if r1 != r2 {
		t.Error("the second compile did not come from the cache")
	}
	// Concurrent compiles and checks of many rules keep the cache bounded.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r, err := CompileRule(fmt.Sprintf("size(layers) < %d", g*1000+i+2))
				if err != nil {
					t.Error(err)
					return
				}
				if err := r.Check(image(1)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := ruleCache.len(); n > 256 {
		t.Errorf("cache holds %d rules", n)
	}
}

func TestLRUCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	c := newLRUCache[int](2)
	c.put("a", 1)
	c.put("b", 2)
	c.get("a")
	c.put("c", 3)
	if _, ok := c.get("b"); ok {
		t.Error("b should have been evicted")
	}
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Error("a should still be cached")
	}
	c.put("a", 4)
	if v, _ := c.get("a"); v != 4 || c.len() != 2 {
		t.Error("put did not replace the value")
	}
}
