package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"keppel/internal/test"
)

// The README's quick start and tour are run from the README's own text:
// in the sections "Quick start" and "A 5-minute tour", every ```sh block
// runs (in one shell session, in a fresh directory) and a ```text block
// right after it is the output it must print. ```shell blocks (docker and
// podman, which need a daemon) are shown only. The quick start's second
// command is scripts/test.sh, which is what runs this test.

// codeBlock is a fenced block of the README.
type codeBlock struct {
	lang, body string
}

// readmeSection returns the text of the section with the heading, up to
// the next heading of the same level.
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", heading)
	}
	if i := strings.Index(after, "\n## "); i >= 0 {
		after = after[:i]
	}
	return after
}

func codeBlocks(section string) []codeBlock {
	var blocks []codeBlock
	var cur *codeBlock
	var body []string
	for _, line := range strings.Split(section, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &codeBlock{lang: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			body = nil
		case cur != nil && line == "```":
			cur.body = strings.Join(body, "\n")
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body = append(body, line)
		}
	}
	return blocks
}

// outputPattern turns an expected output line into a regular expression:
// "…" stands for anything, and a run of spaces for any run of spaces.
func outputPattern(line string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^\s*`)
	for i, part := range strings.Split(strings.TrimSpace(line), "…") {
		if i > 0 {
			b.WriteString(`.*`)
		}
		for j, word := range regexp.MustCompile(` {2,}`).Split(part, -1) {
			if j > 0 {
				b.WriteString(` +`)
			}
			b.WriteString(regexp.QuoteMeta(word))
		}
	}
	b.WriteString(`\s*$`)
	return regexp.MustCompile(b.String())
}

// matchOutput checks that every expected line matches a line of the
// output, in order.
func matchOutput(expected, output string) error {
	lines := strings.Split(output, "\n")
	next := 0
	for _, want := range strings.Split(strings.TrimSpace(expected), "\n") {
		re := outputPattern(want)
		found := false
		for next < len(lines) {
			line := lines[next]
			next++
			if re.MatchString(line) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("no line (after the ones matched before) matches %q", want)
		}
	}
	return nil
}

func TestOutputPattern(t *testing.T) {
	t.Parallel()
	if err := matchOutput("REPOSITORY  TAGS  SIZE\nlibrary/a  1  …\n\"name\": \"v1\",", "REPOSITORY   TAGS  SIZE\nlibrary/a    1     5 B\n  \"name\": \"v1\",\n"); err != nil {
		t.Error(err)
	}
	for _, c := range []struct{ want, got string }{
		{"a\nb", "b\na"},                    // order counts
		{"library/a  1", "library/a  12"},   // whole lines
		{"digest: sha256:…", "digest: md5"}, // literal parts count
	} {
		if err := matchOutput(c.want, c.got); err == nil {
			t.Errorf("%q matched %q", c.want, c.got)
		}
	}
}

// craneBinary finds crane: KEPPEL_CRANE_BIN (scripts/test.sh builds it) or
// the PATH.
func craneBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("KEPPEL_CRANE_BIN"); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("crane"); err == nil {
		return bin
	}
	if os.Getenv("KEPPEL_TEST_REQUIRE_CRANE") == "1" {
		t.Fatal("crane is required (KEPPEL_TEST_REQUIRE_CRANE=1) but neither KEPPEL_CRANE_BIN nor the PATH has it")
	}
	t.Skip("crane not found: set KEPPEL_CRANE_BIN or run scripts/test.sh, which builds it")
	return ""
}

// tourEnv is the environment of the README's commands: a fresh home (so
// that logins go to a docker config of the test), the test's binaries
// first on the PATH, no KEPPEL_* variable of the machine, and the Go
// caches of the machine (which live under the real home).
func tourEnv(t *testing.T, home, bin string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "KEPPEL_") || name == "HOME" || name == "DOCKER_CONFIG" || name == "XDG_CONFIG_HOME" || name == "PATH" {
			continue
		}
		env = append(env, kv)
	}
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	goEnv := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(goEnv) != 3 {
		t.Fatalf("go env printed %q", out)
	}
	return append(env, "HOME="+home, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOCACHE="+goEnv[0], "GOMODCACHE="+goEnv[1], "GOPATH="+goEnv[2])
}

// TestReadmeQuickStartAndTour runs the README's quick start and tour.
func TestReadmeQuickStartAndTour(t *testing.T) {
	crane := craneBinary(t)
	keppel := test.BuildKeppel(t)
	repoRoot, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)

	dir := t.TempDir()
	bin, home, work, data := filepath.Join(dir, "bin"), filepath.Join(dir, "home"), filepath.Join(dir, "work"), filepath.Join(dir, "data")
	for _, d := range []string{bin, home, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"keppel": keppel, "crane": crane} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	env := tourEnv(t, home, bin)
	addr := test.FreeAddress(t)
	// The README's commands name 127.0.0.1:5000; the test's server listens
	// on a free port, and outputs are compared with the README's address.
	toTest := strings.NewReplacer("127.0.0.1:5000", addr)
	toReadme := strings.NewReplacer(addr, "127.0.0.1:5000")

	// Quick start: the server command, then the test command.
	quick := codeBlocks(readmeSection(t, readme, "## Quick start"))
	if len(quick) < 2 || quick[0].lang != "sh" || quick[1].lang != "text" {
		t.Fatalf("the quick start should start with a sh block and the server's output: %+v", quick)
	}
	var commands []string
	for _, line := range strings.Split(quick[0].body, "\n") {
		if cmd, _, _ := strings.Cut(line, "  #"); strings.TrimSpace(cmd) != "" {
			commands = append(commands, strings.TrimSpace(cmd))
		}
	}
	if len(commands) != 2 || commands[1] != "scripts/test.sh" {
		t.Fatalf("the quick start should be two commands, the server's and scripts/test.sh: %q", commands)
	}
	serverLog := startReadmeServer(t, commands[0], repoRoot, append(env, "KEPPEL_DATA_DIR="+data, "KEPPEL_API_LISTEN_ADDRESS="+addr))
	if err := matchOutput(quick[1].body, toReadme.Replace(serverLog)); err != nil {
		t.Fatalf("the server's output: %v\n%s", err, serverLog)
	}
	password := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(serverLog)[1]

	// The tour, block by block, in one shell session: what a block exports
	// is there for the next.
	tour := codeBlocks(readmeSection(t, readme, "## A 5-minute tour"))
	state := filepath.Join(dir, "shell-state")
	ran := 0
	for i, b := range tour {
		if b.lang != "sh" {
			continue
		}
		script := toTest.Replace(strings.ReplaceAll(b.body, "<the printed password>", password))
		full := "set -eo pipefail\n[ -f '" + state + "' ] && source '" + state + "'\n" + script + "\ndeclare -px > '" + state + "'\n"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", full)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		cancel()
		ran++
		if err != nil {
			t.Fatalf("tour step\n%s\nfailed: %v\n%s", b.body, err, out)
		}
		if i+1 < len(tour) && tour[i+1].lang == "text" {
			if err := matchOutput(tour[i+1].body, toReadme.Replace(string(out))); err != nil {
				t.Errorf("tour step\n%s\nprinted\n%s\n%v", b.body, out, err)
			}
		}
	}
	if ran < 6 {
		t.Errorf("only %d steps of the tour ran", ran)
	}
}

// startReadmeServer runs the quick start's server command in the
// repository (as the README says) and returns its output once it is
// healthy; the server is stopped when the test ends.
func startReadmeServer(t *testing.T, command, dir string, env []string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "exec "+command)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // go run starts the server as a child
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	var addr string
	for _, kv := range env {
		if a, ok := strings.CutPrefix(kv, "KEPPEL_API_LISTEN_ADDRESS="); ok {
			addr = a
		}
	}
	deadline := time.Now().Add(3 * time.Minute) // go run compiles first
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("%s ended: %s", command, out.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/healthcheck"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(out.String(), "password:") {
				return out.String()
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not become healthy within 3 minutes: %s", command, out.String())
	return ""
}

// lockedBuffer is a buffer that a process writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
