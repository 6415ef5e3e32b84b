package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// updateGolden rewrites the golden files from the current output:
// go test ./cmd/keppel -run Golden -update-golden
var updateGolden = flag.Bool("update-golden", false, "rewrite the golden files of the CLI tests")

// normalizers make outputs comparable across runs: the registry's random
// port, times and generated secrets become fixed words.
var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`), "YYYY-MM-DD hh:mm:ss"},
	{regexp.MustCompile(`"(pushed_at|last_pulled_at|created_at|expires_at|last_used_at)": \d+`), `"$1": <time>`},
	{regexp.MustCompile(`(pushed_at|last_pulled_at|created_at|expires_at|last_used_at): \d+`), `$1: <time>`},
}

func normalize(s string, replace map[string]string) string {
	for from, to := range replace {
		s = strings.ReplaceAll(s, from, to)
	}
	for _, n := range normalizers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// checkGolden compares got with testdata/golden/<name> (or rewrites it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./cmd/keppel -run Golden -update-golden` to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update-golden if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// commandPaths lists every command of the tree (including cobra's help and
// completion commands) as argument lists.
func commandPaths(cmd *cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, c := range cmd.Commands() {
		if c.Hidden {
			continue
		}
		path := append(slices.Clone(prefix), c.Name())
		out = append(out, path)
		out = append(out, commandPaths(c, path)...)
	}
	return out
}

// TestHelpGolden: the --help text of every command is as recorded, and
// every recorded text belongs to a command.
func TestHelpGolden(t *testing.T) {
	isolateClient(t)
	root := newRootCommand()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	paths := append([][]string{{}}, commandPaths(root, nil)...)
	if len(paths) < 40 {
		t.Fatalf("only %d commands found", len(paths))
	}
	want := map[string]bool{}
	for _, path := range paths {
		name := "help/keppel.txt"
		if len(path) > 0 {
			name = "help/keppel_" + strings.Join(path, "_") + ".txt"
		}
		want[filepath.Base(name)] = true
		out, err := run(t, "", append(slices.Clone(path), "--help")...)
		if err != nil {
			t.Errorf("keppel %s --help: %v", strings.Join(path, " "), err)
			continue
		}
		if !strings.Contains(out, "Usage:") {
			t.Errorf("keppel %s --help printed no usage: %q", strings.Join(path, " "), out)
		}
		checkGolden(t, name, out)
	}
	if *updateGolden {
		return
	}
	files, err := os.ReadDir(filepath.Join("testdata", "golden", "help"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !want[f.Name()] {
			t.Errorf("testdata/golden/help/%s belongs to no command: remove it", f.Name())
		}
	}
}
