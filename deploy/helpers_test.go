// Package deploy holds no code, only tests: they check the container,
// compose, Kubernetes and Prometheus files of the repository against the
// code (configuration variables, commands, ports, health check paths,
// metric names) and the documentation, since no container engine or
// cluster is at hand to run them.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"keppel/internal/config"
	"keppel/internal/test"
)

// repoRoot is the module root, seen from this package's directory.
const repoRoot = ".."

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	buf, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// yamlDocuments decodes every document of a multi-document YAML file.
func yamlDocuments[T any](t *testing.T, rel string) []T {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, rel)))
	var out []T
	for i := 0; i < 1000; i++ {
		var doc T
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", rel, i+1, err)
		}
		out = append(out, doc)
	}
	t.Fatalf("%s: more than 1000 documents", rel)
	return nil
}

// knownVariables are the environment variables that keppel reads: those
// of the configuration and the one that names the configuration file.
func knownVariables() []string {
	return append(config.EnvironmentVariables(), "KEPPEL_CONFIG_FILE")
}

var (
	docsOnce sync.Once
	docsText string
)

// operatorDocs is the text of the documents in which every variable that a
// deployment file sets must be explained.
func operatorDocs(t *testing.T) string {
	t.Helper()
	docsOnce.Do(func() {
		docsText = string(readFile(t, "docs/configuration.md")) + string(readFile(t, "docs/operator-guide.md"))
	})
	return docsText
}

// checkVariable reports a variable that keppel does not read or that the
// documentation does not mention.
func checkVariable(t *testing.T, where, name string) {
	t.Helper()
	if !strings.HasPrefix(name, "KEPPEL_") {
		return
	}
	if !slices.Contains(knownVariables(), name) {
		t.Errorf("%s sets %s, which keppel does not read", where, name)
		return
	}
	if !strings.Contains(operatorDocs(t), name) {
		t.Errorf("%s sets %s, which neither docs/configuration.md nor docs/operator-guide.md mentions", where, name)
	}
}

// keppelConfig is the server configuration.
type keppelConfig = config.Config

// loadConfig loads a configuration as a keppel process would, with the
// YAML text (if any) and the environment env.
func loadConfig(t *testing.T, where, yamlText string, env map[string]string) config.Config {
	t.Helper()
	path := ""
	if yamlText != "" {
		path = filepath.Join(t.TempDir(), "keppel.yaml")
		if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(path, func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		t.Fatalf("%s: the configuration does not load: %v", where, err)
	}
	return cfg
}

// portOf returns the port of a host:port address.
func portOf(t *testing.T, where, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %q is not host:port: %v", where, addr, err)
	}
	return port
}

var (
	commandsMu sync.Mutex
	// subcommands caches the subcommands of each command path.
	subcommands = map[string][]string{}
)

// checkCommand checks that args (as given to the keppel binary, up to the
// first flag) name a command of keppel, by asking the binary's completion
// for the subcommands at each level.
func checkCommand(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s runs keppel without a command", where)
		return
	}
	bin := test.BuildKeppel(t)
	for i, word := range args {
		if strings.HasPrefix(word, "-") {
			return
		}
		parent := args[:i]
		key := strings.Join(parent, " ")
		commandsMu.Lock()
		names, ok := subcommands[key]
		commandsMu.Unlock()
		if !ok {
			cmdArgs := append(append([]string{"__complete"}, parent...), "")
			out, err := exec.Command(bin, cmdArgs...).Output()
			if err != nil {
				t.Fatalf("keppel %s: %v", strings.Join(cmdArgs, " "), err)
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, ":") {
					break
				}
				name, _, _ := strings.Cut(line, "\t")
				names = append(names, name)
			}
			commandsMu.Lock()
			subcommands[key] = names
			commandsMu.Unlock()
		}
		if !slices.Contains(names, word) {
			if i > 0 && len(names) == 0 {
				return // a command with arguments, not subcommands
			}
			t.Errorf("%s runs `keppel %s`, but %q is not a command of `keppel %s` (it has: %s)",
				where, strings.Join(args, " "), word, key, strings.Join(names, ", "))
			return
		}
	}
}

var metricNamePattern = regexp.MustCompile(`Name:\s*"(keppel_[a-z0-9_]+)"`)

// registeredMetrics finds the names of the Prometheus metrics that the code
// creates (the Name of their options), in every non-test Go file of the
// module. Vectors without observations do not appear on /metrics, so a
// scrape would miss them.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			buf, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range metricNamePattern.FindAllSubmatch(buf, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !names["keppel_http_request_duration_seconds"] {
		t.Fatalf("found no metric names in the sources (found %v)", names)
	}
	return names
}
