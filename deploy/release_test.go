package deploy

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReleaseBuildsAgree checks that .goreleaser.yaml,
// scripts/build-release.sh and the Dockerfile build the same way: static,
// with -trimpath, and with the variables that `keppel version` reports.
func TestReleaseBuildsAgree(t *testing.T) {
	t.Parallel()
	versionGo := string(readFile(t, "cmd/keppel/version.go"))
	sources := map[string]string{
		".goreleaser.yaml":         string(readFile(t, ".goreleaser.yaml")),
		"scripts/build-release.sh": string(readFile(t, "scripts/build-release.sh")),
		"Dockerfile":               string(readFile(t, "Dockerfile")),
	}
	for _, v := range []string{"version", "commit", "buildDate"} {
		if !regexp.MustCompile(`(?m)^\s+` + v + `\s+= `).MatchString(versionGo) {
			t.Fatalf("cmd/keppel/version.go has no variable %s", v)
		}
		for file, text := range sources {
			if !strings.Contains(text, "-X main."+v+"=") {
				t.Errorf("%s does not set main.%s", file, v)
			}
		}
	}
	for file, text := range sources {
		if !strings.Contains(text, "CGO_ENABLED=0") || !strings.Contains(text, "-trimpath") {
			t.Errorf("%s does not build a static binary with CGO_ENABLED=0 and -trimpath", file)
		}
	}

	type target struct {
		Goos   string `yaml:"goos"`
		Goarch string `yaml:"goarch"`
	}
	type goreleaserFile struct {
		Builds []struct {
			Goos   []string `yaml:"goos"`
			Goarch []string `yaml:"goarch"`
			Ignore []target `yaml:"ignore"`
		} `yaml:"builds"`
	}
	g := yamlDocuments[goreleaserFile](t, ".goreleaser.yaml")[0]
	if len(g.Builds) != 1 {
		t.Fatalf(".goreleaser.yaml has %d builds, want 1", len(g.Builds))
	}
	var goreleaser []string
	for _, goos := range g.Builds[0].Goos {
		for _, arch := range g.Builds[0].Goarch {
			if !slices.Contains(g.Builds[0].Ignore, target{goos, arch}) {
				goreleaser = append(goreleaser, goos+"/"+arch)
			}
		}
	}
	m := regexp.MustCompile(`platforms=\(([^)]*)\)`).FindStringSubmatch(sources["scripts/build-release.sh"])
	if m == nil {
		t.Fatal("scripts/build-release.sh has no platforms=(…) list")
	}
	script := strings.Fields(m[1])
	slices.Sort(goreleaser)
	slices.Sort(script)
	if !slices.Equal(goreleaser, script) {
		t.Errorf(".goreleaser.yaml builds %v, scripts/build-release.sh builds %v", goreleaser, script)
	}
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"} {
		if !slices.Contains(script, want) {
			t.Errorf("the release builds lack %s", want)
		}
	}
}
