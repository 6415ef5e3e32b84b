package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"keppel/internal/test"
)

// These tests set environment variables, so they do not run in parallel.

// isolateClient clears the client's environment and gives the test its own
// home, config directory and docker config, so that no login stored on the
// machine interferes. It returns the docker config file's path.
func isolateClient(t *testing.T) string {
	t.Helper()
	clearConfigEnv(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, "docker"))
	t.Setenv("KEPPEL_NEW_PASSWORD", "")
	return filepath.Join(home, "docker", "config.json")
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
	host, otherHost := strings.TrimPrefix(s.URL, "http://"), strings.TrimPrefix(other.URL, "http://")

	// Nothing stored, no password: the client says how to get one.
	wantRunError(t, "keppel login "+host, "", "user", "list", "--registry", s.URL)

	// A wrong password is not stored.
	wantRunError(t, "UNAUTHORIZED", "wrong\n", "login", host, "--username", "admin")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("login stored after a failed login: %v", err)
	}
	wantRunError(t, "no password", "", "login", host)
	wantRunError(t, "not a registry", test.AdminPassword+"\n", "login", "ftp://x")

	// The login goes into the docker config, under the host as docker keeps
	// it, where other clients find it.
	out := mustRun(t, test.AdminPassword+"\n", "login", host, "-u", "admin", "--password-stdin")
	if want := "logged in to " + s.URL + " as admin (login stored in " + path + ")\n"; out != want {
		t.Errorf("login printed %q, want %q", out, want)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("docker config mode %v, want 0600", info.Mode().Perm())
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Auths[host].Auth != base64.StdEncoding.EncodeToString([]byte("admin:"+test.AdminPassword)) {
		t.Errorf("docker config %s (%v)", raw, err)
	}
	reg, _ := name.NewRegistry(host)
	if auth, err := authn.DefaultKeychain.Resolve(reg); err != nil {
		t.Error(err)
	} else if ac, _ := auth.Authorization(); ac.Username != "admin" || ac.Password != test.AdminPassword {
		t.Errorf("docker keychain finds %+v", ac)
	}

	// Client commands use it when flags and environment say nothing: the
	// registry logged in to last is the default.
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

	// KEPPEL_PASSWORD works for login as well; a second login keeps the first.
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	mustRun(t, "", "login", "--registry", other.URL)
	t.Setenv("KEPPEL_PASSWORD", "")
	if out := mustRun(t, "", "tenant", "members", "tenant1"); !strings.Contains(out, "USER") {
		t.Errorf("tenant members with the stored login: %q", out)
	}
	mustRun(t, "", "user", "list", "--registry", s.URL)

	if out := mustRun(t, "", "logout"); out != "logged out of "+otherHost+"\n" {
		t.Errorf("logout printed %q", out)
	}
	if out := mustRun(t, "", "logout", otherHost); out != "not logged in to "+otherHost+"\n" {
		t.Errorf("second logout printed %q", out)
	}
	wantRunError(t, "no password", "", "user", "list", "--registry", other.URL)
	mustRun(t, "", "user", "list", "--registry", s.URL)
	if out := mustRun(t, "", "logout", s.URL); out != "logged out of "+host+"\n" {
		t.Errorf("logout %s printed %q", s.URL, out)
	}
	wantRunError(t, "no password", "", "user", "list", "--registry", s.URL)
}
