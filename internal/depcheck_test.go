package internal_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The dependency rules of the design (packages point down, drivers are
// chosen only in the composition root). Every path names a package and,
// where it makes sense, the packages below it. Packages that do not exist
// yet are simply not matched.
var (
	// leafPackages import no package of the module.
	leafPackages = []string{
		"keppel/internal/oci",
		"keppel/internal/errcode",
		"keppel/internal/config",
		"keppel/internal/models",
	}

	// storeTrees are the metadata and content store layers, which must not
	// depend on anything above them.
	storeTrees = []string{"keppel/internal/db", "keppel/internal/storage"}
	// storeForbidden are the packages (with subtrees) that store layers must
	// not depend on.
	storeForbidden = []string{"keppel/internal/api", "keppel/internal/config", "keppel/internal/server"}

	// driverTrees are the concrete drivers of the store interfaces.
	driverTrees = []string{
		"keppel/internal/db/sqlite",
		"keppel/internal/db/postgres",
		"keppel/internal/storage/fs",
		"keppel/internal/storage/memory",
		"keppel/internal/storage/s3",
		"keppel/internal/storage/swift",
	}
	// driverUsers may depend on concrete drivers (test files may as well;
	// `go list` does not count their imports in Deps).
	driverUsers = []string{"keppel/cmd", "keppel/internal/server", "keppel/internal/test"}

	// narrowPackages may depend only on the listed packages of the module
	// (besides themselves): tools that work on the store interfaces alone.
	narrowPackages = map[string][]string{
		"keppel/internal/consistency": {"keppel/internal/db", "keppel/internal/storage", "keppel/internal/models"},
	}

	// forbiddenPathParts must not occur in any package path of the module.
	forbiddenPathParts = []string{"/util", "/common"}
)

// goPackage is the part of a `go list -json` record that the rules need.
type goPackage struct {
	ImportPath string
	// Deps are all packages that the package's non-test files depend on,
	// directly or indirectly.
	Deps  []string
	Error *struct{ Err string }
}

// inTree reports whether path is root or a package below it.
func inTree(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

func inAnyTree(path string, roots []string) bool {
	return slices.ContainsFunc(roots, func(root string) bool { return inTree(path, root) })
}

func isModulePackage(path string) bool {
	return inTree(path, "keppel")
}

// dependencyViolations applies the rules to the given packages and returns
// one message per violation.
func dependencyViolations(pkgs []goPackage) []string {
	var out []string
	for _, p := range pkgs {
		if !isModulePackage(p.ImportPath) {
			continue
		}
		for _, part := range forbiddenPathParts {
			if strings.Contains(strings.TrimPrefix(p.ImportPath, "keppel"), part) {
				out = append(out, fmt.Sprintf("%s: package path contains %q", p.ImportPath, part))
			}
		}
		for _, dep := range p.Deps {
			if !isModulePackage(dep) {
				continue
			}
			if slices.Contains(leafPackages, p.ImportPath) {
				out = append(out, fmt.Sprintf("%s depends on %s, but is a leaf package", p.ImportPath, dep))
				continue
			}
			if inAnyTree(p.ImportPath, storeTrees) && inAnyTree(dep, storeForbidden) {
				out = append(out, fmt.Sprintf("%s depends on %s, but store layers must not depend on %s",
					p.ImportPath, dep, strings.Join(storeForbidden, ", ")))
			}
			if allowed, narrow := narrowPackages[p.ImportPath]; narrow && !slices.Contains(allowed, dep) {
				out = append(out, fmt.Sprintf("%s depends on %s, but may only depend on %s",
					p.ImportPath, dep, strings.Join(allowed, ", ")))
				continue
			}
			if inAnyTree(dep, driverTrees) && !inAnyTree(p.ImportPath, driverUsers) && !sameDriver(p.ImportPath, dep) {
				out = append(out, fmt.Sprintf("%s depends on the concrete driver %s, but only %s may",
					p.ImportPath, dep, strings.Join(driverUsers, ", ")))
			}
		}
	}
	slices.Sort(out)
	return out
}

// sameDriver reports whether both packages belong to the same driver (a
// driver may consist of several packages).
func sameDriver(a, b string) bool {
	for _, root := range driverTrees {
		if inTree(a, root) && inTree(b, root) {
			return true
		}
	}
	return false
}

// listModulePackages runs `go list` over the whole module. Packages that do
// not compile (for example while someone is writing them) are still listed
// with the imports of their parsable files.
func listModulePackages(t *testing.T) []goPackage {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH")
	}
	cmd := exec.Command(goCmd, "list", "-e", "-deps", "-json=ImportPath,Deps,Error", "keppel/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list failed: %v\n%s", err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(stdout))
	for {
		var p goPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("cannot decode the output of go list: %v", err)
		}
		if p.Error != nil && isModulePackage(p.ImportPath) {
			t.Logf("note: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestDependencyDirection(t *testing.T) {
	t.Parallel()
	pkgs := listModulePackages(t)
	// Guard against checking nothing at all (a wrong pattern, say).
	if !slices.ContainsFunc(pkgs, func(p goPackage) bool { return p.ImportPath == "keppel/internal/oci" }) {
		t.Fatalf("go list did not report keppel/internal/oci among %d packages", len(pkgs))
	}
	for _, v := range dependencyViolations(pkgs) {
		t.Error(v)
	}
}

// TestDependencyRules proves that the rule checker catches each kind of
// violation on a made-up import graph, and accepts a graph that follows the
// rules.
func TestDependencyRules(t *testing.T) {
	t.Parallel()
	clean := []goPackage{
		{ImportPath: "keppel/cmd/keppel", Deps: []string{"keppel/internal/server", "keppel/internal/db/sqlite", "github.com/spf13/cobra"}},
		{ImportPath: "keppel/internal/server", Deps: []string{"keppel/internal/config", "keppel/internal/db", "keppel/internal/db/postgres", "keppel/internal/db/sqlite", "keppel/internal/storage/fs", "keppel/internal/storage/memory", "keppel/internal/registry"}},
		{ImportPath: "keppel/internal/test", Deps: []string{"keppel/internal/server", "keppel/internal/storage/memory"}},
		{ImportPath: "keppel/internal/registry", Deps: []string{"keppel/internal/db", "keppel/internal/storage", "keppel/internal/oci"}},
		{ImportPath: "keppel/internal/api/oci", Deps: []string{"keppel/internal/registry", "keppel/internal/errcode", "keppel/internal/oci"}},
		{ImportPath: "keppel/internal/db", Deps: []string{"keppel/internal/models", "keppel/internal/oci"}},
		{ImportPath: "keppel/internal/db/sqlite", Deps: []string{"keppel/internal/db", "keppel/internal/db/sqlite/migrations", "modernc.org/sqlite"}},
		{ImportPath: "keppel/internal/db/sqlite/migrations"},
		{ImportPath: "keppel/internal/storage/fs", Deps: []string{"keppel/internal/storage"}},
		{ImportPath: "keppel/internal/oci", Deps: []string{"github.com/opencontainers/go-digest", "encoding/json"}},
		{ImportPath: "keppel/internal/models"},
		{ImportPath: "keppel/internal/consistency", Deps: []string{"keppel/internal/db", "keppel/internal/storage", "keppel/internal/models", "context"}},
		{ImportPath: "github.com/example/util", Deps: []string{"github.com/example/common"}},
	}
	if v := dependencyViolations(clean); len(v) != 0 {
		t.Errorf("a clean graph has violations: %q", v)
	}
	if v := dependencyViolations(nil); len(v) != 0 {
		t.Errorf("an empty graph has violations: %q", v)
	}

	tests := []struct {
		name   string
		broken goPackage
		want   string
	}{
		{"leaf imports a sibling", goPackage{ImportPath: "keppel/internal/oci", Deps: []string{"keppel/internal/errcode"}}, "but is a leaf package"},
		{"leaf imports the module root", goPackage{ImportPath: "keppel/internal/models", Deps: []string{"keppel"}}, "but is a leaf package"},
		{"config imports models", goPackage{ImportPath: "keppel/internal/config", Deps: []string{"keppel/internal/models"}}, "but is a leaf package"},
		{"db imports config", goPackage{ImportPath: "keppel/internal/db", Deps: []string{"keppel/internal/config"}}, "store layers must not"},
		{"db driver imports api", goPackage{ImportPath: "keppel/internal/db/postgres", Deps: []string{"keppel/internal/api/keppelv1"}}, "store layers must not"},
		{"storage driver imports server", goPackage{ImportPath: "keppel/internal/storage/memory", Deps: []string{"keppel/internal/server"}}, "store layers must not"},
		{"storage suite imports api middleware", goPackage{ImportPath: "keppel/internal/storage/storagetest", Deps: []string{"keppel/internal/api/middleware"}}, "store layers must not"},
		{"registry imports a db driver", goPackage{ImportPath: "keppel/internal/registry", Deps: []string{"keppel/internal/db/sqlite"}}, "concrete driver keppel/internal/db/sqlite"},
		{"api imports a storage driver", goPackage{ImportPath: "keppel/internal/api/oci", Deps: []string{"keppel/internal/storage/fs"}}, "concrete driver keppel/internal/storage/fs"},
		{"driver subpackage", goPackage{ImportPath: "keppel/internal/janitor", Deps: []string{"keppel/internal/db/postgres/migrations"}}, "concrete driver keppel/internal/db/postgres/migrations"},
		{"driver imports another driver", goPackage{ImportPath: "keppel/internal/storage/fs", Deps: []string{"keppel/internal/storage/memory"}}, "concrete driver keppel/internal/storage/memory"},
		{"server lookalike", goPackage{ImportPath: "keppel/internal/serverless", Deps: []string{"keppel/internal/storage/memory"}}, "concrete driver"},
		{"consistency imports the registry", goPackage{ImportPath: "keppel/internal/consistency", Deps: []string{"keppel/internal/registry"}}, "may only depend on"},
		{"package named util", goPackage{ImportPath: "keppel/internal/util"}, `contains "/util"`},
		{"package named utils", goPackage{ImportPath: "keppel/pkg/utils/strings"}, `contains "/util"`},
		{"package named common", goPackage{ImportPath: "keppel/internal/api/common"}, `contains "/common"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			graph := append(slices.Clone(clean), tc.broken)
			v := dependencyViolations(graph)
			if len(v) != 1 || !strings.Contains(v[0], tc.want) {
				t.Errorf("got violations %q, want exactly one containing %q", v, tc.want)
			}
		})
	}
}
