package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keppel/internal/test"
)

// These tests set environment variables, so they do not run in parallel.

// isolateClient clears the client's environment and gives the test its own
// config directory, so that no stored login of the machine interferes.
func isolateClient(t *testing.T) string {
	t.Helper()
	clearConfigEnv(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("KEPPEL_NEW_PASSWORD", "")
	path, err := credentialsPath()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, home) {
		t.Fatalf("credentials path %s is outside the test's home %s", path, home)
	}
	return path
}

func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := run(t, stdin, args...)
	if err != nil {
		t.Fatalf("keppel %s: %v (output %q)", strings.Join(args, " "), err, out)
	}
	return out
}

func wantRunError(t *testing.T, want, stdin string, args ...string) {
	t.Helper()
	out, err := run(t, stdin, args...)
	if err == nil {
		t.Fatalf("keppel %s succeeded (output %q)", strings.Join(args, " "), out)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("keppel %s: error %q does not mention %q", strings.Join(args, " "), err, want)
	}
}

func TestLoginLogout(t *testing.T) {
	path := isolateClient(t)
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	other := test.NewServer(t, test.Options{StorageDriver: "memory"})

	// Nothing stored, no password: the client says how to get one.
	wantRunError(t, "keppel login", "", "user", "list", "--registry", s.URL)

	// A wrong password is not stored.
	wantRunError(t, "UNAUTHORIZED", "wrong\n", "login", "--registry", s.URL, "--username", "admin")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("credentials stored after a failed login: %v", err)
	}
	wantRunError(t, "no password", "", "login", "--registry", s.URL)
	wantRunError(t, "--registry", test.AdminPassword+"\n", "login", "--registry", "ftp://x")

	out := mustRun(t, test.AdminPassword+"\n", "login", "--registry", s.URL+"/", "--username", "admin")
	if !strings.Contains(out, "logged in") || !strings.Contains(out, path) {
		t.Errorf("login printed %q", out)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v, want 0600", info.Mode().Perm())
	}
	var stored storedLogin
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &stored); err != nil || stored != (storedLogin{Registry: s.URL, Username: "admin", Password: test.AdminPassword}) {
		t.Errorf("stored login %s (%v)", raw, err)
	}

	// Client commands use it when flags and environment say nothing.
	if out := mustRun(t, "", "user", "list"); !strings.Contains(out, "admin") {
		t.Errorf("user list with the stored login: %q", out)
	}
	if out := mustRun(t, "", "account", "show", "test", "--registry", s.URL); !strings.Contains(out, "tenant1") {
		t.Errorf("account show with the stored login: %q", out)
	}
	// The stored password goes neither to another registry nor with another user name.
	wantRunError(t, "no password", "", "user", "list", "--registry", other.URL)
	t.Setenv("KEPPEL_REGISTRY_URL", other.URL)
	wantRunError(t, "no password", "", "user", "list")
	t.Setenv("KEPPEL_REGISTRY_URL", "")
	wantRunError(t, "no password", "", "user", "list", "--username", "alice")
	// The environment wins over the stored password.
	t.Setenv("KEPPEL_PASSWORD", "wrong")
	wantRunError(t, "UNAUTHORIZED", "", "user", "list")
	t.Setenv("KEPPEL_PASSWORD", "")

	// A credentials file that others can read is refused.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	wantRunError(t, "chmod 600", "", "user", "list")
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	if out := mustRun(t, "", "logout"); !strings.Contains(out, "logged out") {
		t.Errorf("logout printed %q", out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("credentials still stored after logout: %v", err)
	}
	if out := mustRun(t, "", "logout"); !strings.Contains(out, "not logged in") {
		t.Errorf("second logout printed %q", out)
	}
	wantRunError(t, "no password", "", "user", "list", "--registry", s.URL)

	// KEPPEL_PASSWORD works for login as well.
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	mustRun(t, "", "login", "--registry", other.URL)
	t.Setenv("KEPPEL_PASSWORD", "")
	if out := mustRun(t, "", "tenant", "members", "tenant1"); !strings.Contains(out, "USER") {
		t.Errorf("tenant members with the stored login: %q", out)
	}
}
