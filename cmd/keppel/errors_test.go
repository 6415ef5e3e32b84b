package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"keppel/internal/test"
)

// TestErrorsExitNonZero runs the real binary: a failing command prints
// nothing on standard output, one message on standard error that says what
// to do, and exits with status 1.
func TestErrorsExitNonZero(t *testing.T) {
	bin := test.BuildKeppel(t) // before isolateClient, which changes HOME and thus Go's caches
	isolateClient(t)
	closed := "http://" + test.FreeAddress(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, "Run `keppel --help`"},
		{[]string{"tags"}, "accepts 1 arg(s), received 0 (see `keppel tags --help`)"},
		{[]string{"ls", "--bogus"}, "unknown flag: --bogus (see `keppel ls --help`)"},
		{[]string{"ls", "-o", "xml"}, "use one of table, json, yaml"},
		{[]string{"ls", "--registry", closed}, "no password for admin at " + strings.TrimPrefix(closed, "http://") + ": run `keppel login"},
		{[]string{"manifest", "app"}, "write ACCOUNT/REPOSITORY[:TAG|@DIGEST]"},
		{[]string{"login", "ftp://x"}, "give its URL"},
	} {
		cmd := exec.CommandContext(t.Context(), bin, c.args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("keppel %s: %v, want exit status 1", strings.Join(c.args, " "), err)
		}
		if stdout.Len() != 0 {
			t.Errorf("keppel %s printed on stdout: %q", strings.Join(c.args, " "), stdout.String())
		}
		if msg := stderr.String(); !strings.HasPrefix(msg, "keppel: ") || !strings.Contains(msg, c.want) {
			t.Errorf("keppel %s printed on stderr %q, want a message with %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
}
