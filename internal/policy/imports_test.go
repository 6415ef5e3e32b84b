package policy

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the package pure logic: besides the standard library it
// may import only the models of the module and CEL.
func TestImports(t *testing.T) {
	t.Parallel()
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range pkg.Imports {
		switch {
		case path == "keppel/internal/models", strings.HasPrefix(path, "cel.dev/cel-go/"):
		case strings.HasPrefix(path, "keppel/") || strings.Contains(strings.Split(path, "/")[0], "."):
			t.Errorf("internal/policy must not import %s", path)
		}
		for _, forbidden := range []string{"net/http", "database/sql", "os"} {
			if path == forbidden {
				t.Errorf("internal/policy must not do I/O, but imports %s", path)
			}
		}
	}
}
