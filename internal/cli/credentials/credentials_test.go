package credentials

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// These tests set environment variables, so they do not run in parallel.

func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	return dir
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:5000":        "127.0.0.1:5000",
		"https://registry.example/":    "registry.example",
		"127.0.0.1:5000":               "127.0.0.1:5000",
		"registry.example:443/path/to": "registry.example:443",
	} {
		if got, err := Host(in); err != nil || got != want {
			t.Errorf("Host(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "http://", "::"} {
		if got, err := Host(bad); err == nil {
			t.Errorf("Host(%q) = %q, want an error", bad, got)
		}
	}
}

// TestStoreInDockerConfig checks that a login lands in the docker config
// under DOCKER_CONFIG, where other OCI clients (here: go-containerregistry's
// keychain, which crane uses) find it.
func TestStoreInDockerConfig(t *testing.T) {
	dir := isolate(t)
	// Another registry's login and other settings stay as they are.
	configPath := filepath.Join(dir, "docker", "config.json")
	if err := os.MkdirAll(filepath.Dir(configPath), 0o700); err != nil {
		t.Fatal(err)
	}
	other := base64.StdEncoding.EncodeToString([]byte("bob:secret"))
	if err := os.WriteFile(configPath, []byte(`{"auths":{"other.example":{"auth":"`+other+`"}},"detachKeys":"ctrl-x"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	where, err := Store("127.0.0.1:5000", Login{Username: "alice", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if where != configPath {
		t.Errorf("stored in %q, want %q", where, configPath)
	}
	info, err := os.Stat(configPath)
	if err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Fatalf("docker config mode: %v %v", info.Mode(), err)
	}
	var cfg struct {
		Auths      map[string]struct{ Auth string } `json:"auths"`
		DetachKeys string                           `json:"detachKeys"`
	}
	raw, _ := os.ReadFile(configPath)
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Auths["127.0.0.1:5000"].Auth; got != base64.StdEncoding.EncodeToString([]byte("alice:pw")) {
		t.Errorf("stored auth %q in %s", got, raw)
	}
	if cfg.Auths["other.example"].Auth != other || cfg.DetachKeys != "ctrl-x" {
		t.Errorf("other settings changed: %s", raw)
	}

	reg, err := name.NewRegistry("127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	if ac, err := auth.Authorization(); err != nil || ac.Username != "alice" || ac.Password != "pw" {
		t.Errorf("keychain resolved %+v, %v", ac, err)
	}

	if l, found, err := Lookup("127.0.0.1:5000"); err != nil || !found || l != (Login{"alice", "pw"}) {
		t.Errorf("Lookup = %+v %v %v", l, found, err)
	}
	if _, found, err := Lookup("127.0.0.1:5001"); err != nil || found {
		t.Errorf("Lookup of another port = %v %v", found, err)
	}
	if found, err := Erase("127.0.0.1:5000"); err != nil || !found {
		t.Errorf("Erase = %v %v", found, err)
	}
	if found, err := Erase("127.0.0.1:5000"); err != nil || found {
		t.Errorf("second Erase = %v %v", found, err)
	}
	if _, found, _ := Lookup("127.0.0.1:5000"); found {
		t.Error("login still found after Erase")
	}
	if l, found, _ := Lookup("other.example"); !found || l.Username != "bob" {
		t.Errorf("the other registry's login is gone: %+v", l)
	}
}

// TestStoreThroughCredentialHelper checks that a docker config naming a
// credential helper gets the login through that helper, not in the file.
func TestStoreThroughCredentialHelper(t *testing.T) {
	dir := isolate(t)
	bin := filepath.Join(dir, "bin")
	vault := filepath.Join(dir, "vault")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// A helper that keeps one login in a file, speaking the helper protocol.
	helper := `#!/bin/sh
case "$1" in
store) cat > '` + vault + `' ;;
get) read host; if [ -f '` + vault + `' ]; then sed 's/"Secret"/"Secret"/' '` + vault + `'; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) rm -f '` + vault + `' ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-keppeltest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := os.MkdirAll(filepath.Join(dir, "docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker", "config.json"), []byte(`{"credsStore":"keppeltest"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	where, err := Store("127.0.0.1:5000", Login{Username: "alice", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if where != "credential helper docker-credential-keppeltest" {
		t.Errorf("stored in %q", where)
	}
	raw, err := os.ReadFile(vault)
	if err != nil || !strings.Contains(string(raw), `"Secret":"pw"`) {
		t.Fatalf("helper got %s (%v)", raw, err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "docker", "config.json"))
	if strings.Contains(string(cfg), "alice") || strings.Contains(string(cfg), base64.StdEncoding.EncodeToString([]byte("alice:pw"))) {
		t.Errorf("the login went into the config file as well: %s", cfg)
	}
	if l, found, err := Lookup("127.0.0.1:5000"); err != nil || !found || l != (Login{"alice", "pw"}) {
		t.Errorf("Lookup through the helper = %+v %v %v", l, found, err)
	}
	if found, err := Erase("127.0.0.1:5000"); err != nil || !found {
		t.Errorf("Erase = %v %v", found, err)
	}
	if _, err := os.Stat(vault); !os.IsNotExist(err) {
		t.Errorf("helper still holds the login: %v", err)
	}
}

func TestDefaultRegistry(t *testing.T) {
	isolate(t)
	if r, err := DefaultRegistry(); err != nil || r != "" {
		t.Fatalf("DefaultRegistry before anything = %q %v", r, err)
	}
	if err := SetDefaultRegistry("http://127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if r, err := DefaultRegistry(); err != nil || r != "http://127.0.0.1:5000" {
		t.Errorf("DefaultRegistry = %q %v", r, err)
	}
	if err := SetDefaultRegistry(""); err != nil {
		t.Fatal(err)
	}
	if r, err := DefaultRegistry(); err != nil || r != "" {
		t.Errorf("DefaultRegistry after forgetting = %q %v", r, err)
	}
}
