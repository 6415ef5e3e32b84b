package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keppel/internal/config"
	"keppel/internal/test"
)

// These tests set environment variables, so they do not run in parallel.

// clearConfigEnv makes sure that no KEPPEL_* variable of the environment the
// tests run in changes the outcome (Load ignores empty values).
func clearConfigEnv(t *testing.T) {
	t.Helper()
	for _, name := range config.EnvironmentVariables() {
		t.Setenv(name, "")
	}
	for _, name := range []string{"KEPPEL_CONFIG_FILE", "KEPPEL_REGISTRY_URL", "KEPPEL_USERNAME", "KEPPEL_PASSWORD"} {
		t.Setenv(name, "")
	}
}

// run executes the CLI with the arguments and returns what it printed.
func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestAccountCommands(t *testing.T) {
	clearConfigEnv(t)
	s := test.NewServer(t, test.Options{StorageDriver: "memory"})
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)

	out, err := run(t, "", "account", "create", "library", "--auth-tenant-id", "tenant-x", "--registry", s.URL)
	if err != nil {
		t.Fatalf("account create: %v (output %q)", err, out)
	}
	if !strings.Contains(out, "library") || !strings.Contains(out, "tenant-x") {
		t.Errorf("account create printed %q", out)
	}

	// Idempotent for the same tenant; a trailing slash on the URL is fine.
	if out, err := run(t, "", "account", "create", "library", "--auth-tenant-id", "tenant-x", "--registry", s.URL+"/"); err != nil {
		t.Errorf("repeated account create: %v (output %q)", err, out)
	}

	out, err = run(t, "", "account", "list", "--json", "--registry", s.URL)
	if err != nil {
		t.Fatalf("account list: %v (output %q)", err, out)
	}
	var accounts []accountJSON
	if err := json.Unmarshal([]byte(out), &accounts); err != nil {
		t.Fatalf("account list --json printed %q: %v", out, err)
	}
	got := map[string]string{}
	for _, a := range accounts {
		got[a.Name] = a.AuthTenantID
	}
	if got["library"] != "tenant-x" || got["test"] != "tenant1" || len(got) != 2 {
		t.Errorf("account list = %+v", accounts)
	}

	out, err = run(t, "", "account", "list", "--registry", s.URL)
	if err != nil {
		t.Fatalf("account list: %v", err)
	}
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "library") || !strings.Contains(out, "active") {
		t.Errorf("account list table = %q", out)
	}

	// The password from standard input wins over the environment.
	t.Setenv("KEPPEL_PASSWORD", "wrong")
	if out, err := run(t, test.AdminPassword+"\n", "account", "list", "--password-stdin", "--registry", s.URL); err != nil {
		t.Errorf("account list --password-stdin: %v (output %q)", err, out)
	}
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)

	// The registry URL can come from the environment.
	t.Setenv("KEPPEL_REGISTRY_URL", s.URL)
	if out, err := run(t, "", "account", "list"); err != nil || !strings.Contains(out, "library") {
		t.Errorf("account list with KEPPEL_REGISTRY_URL: %v (output %q)", err, out)
	}
	t.Setenv("KEPPEL_REGISTRY_URL", "")

	failures := []struct {
		name     string
		password string
		stdin    string
		args     []string
		want     string
	}{
		{"wrong password", "wrong", "", []string{"account", "list", "--registry", s.URL}, "UNAUTHORIZED"},
		{"wrong password on create", "wrong", "", []string{"account", "create", "other", "--auth-tenant-id", "t", "--registry", s.URL}, "UNAUTHORIZED"},
		{"wrong password on stdin", test.AdminPassword, "wrong\n", []string{"account", "list", "--password-stdin", "--registry", s.URL}, "UNAUTHORIZED"},
		{"unknown user", test.AdminPassword, "", []string{"account", "list", "--username", "nobody", "--registry", s.URL}, "UNAUTHORIZED"},
		{"no password", "", "", []string{"account", "list", "--registry", s.URL}, "KEPPEL_PASSWORD"},
		{"other tenant", test.AdminPassword, "", []string{"account", "create", "library", "--auth-tenant-id", "tenant-y", "--registry", s.URL}, "CONFLICT"},
		{"invalid account name", test.AdminPassword, "", []string{"account", "create", "Bad", "--auth-tenant-id", "t", "--registry", s.URL}, "BAD_REQUEST"},
		{"invalid tenant", test.AdminPassword, "", []string{"account", "create", "fine", "--auth-tenant-id", "../x", "--registry", s.URL}, "BAD_REQUEST"},
		{"missing tenant", test.AdminPassword, "", []string{"account", "create", "fine", "--registry", s.URL}, "--auth-tenant-id"},
		{"missing name", test.AdminPassword, "", []string{"account", "create", "--auth-tenant-id", "t", "--registry", s.URL}, "arg"},
		{"bad registry URL", test.AdminPassword, "", []string{"account", "list", "--registry", "ftp://example.com"}, "--registry"},
		{"unreachable registry", test.AdminPassword, "", []string{"account", "list", "--registry", "http://127.0.0.1:1"}, "/keppel/v1/accounts"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KEPPEL_PASSWORD", tc.password)
			out, err := run(t, tc.stdin, tc.args...)
			if err == nil {
				t.Fatalf("the command succeeded (output %q)", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}

	// None of the failures changed anything.
	out, err = run(t, "", "account", "list", "--json", "--registry", s.URL)
	if err != nil {
		t.Fatal(err)
	}
	accounts = nil
	if err := json.Unmarshal([]byte(out), &accounts); err != nil {
		t.Fatal(err)
	}
	if len(accounts) != 2 {
		t.Errorf("after the failures: %+v", accounts)
	}
	for _, a := range accounts {
		if a.Name == "library" && a.AuthTenantID != "tenant-x" {
			t.Errorf("library changed its tenant: %+v", a)
		}
	}
}

func TestValidateConfig(t *testing.T) {
	clearConfigEnv(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	valid := write("valid.yaml", "api:\n  listen_address: 127.0.0.1:6000\n  public_fqdn: registry.example.com\ndata_dir: "+dir+"\n")
	unknownKey := write("unknown.yaml", "api:\n  listen_adress: 127.0.0.1:6000\n")
	badLevel := write("level.yaml", "log_level: loud\n")
	empty := write("empty.yaml", "")
	postgres := write("postgres.yaml", "database:\n  hostname: db\n")
	moving := write("moving.yaml", "storage:\n  driver: s3\n  s3:\n    endpoint: https://s3.example.com\n    bucket: keppel\n    secret_access_key: hidden\n    access_key_id: k\n  migrate_from:\n    driver: filesystem\n    path: /srv/old\n")

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantOut []string
		wantErr string
	}{
		{
			name:    "valid file",
			args:    []string{"server", "validate-config", "--config", valid},
			wantOut: []string{"configuration is valid", "127.0.0.1:6000", "http://registry.example.com", "SQLite", filepath.Join(dir, "keppel.db")},
		},
		{
			name:    "empty file gives the defaults",
			args:    []string{"server", "validate-config", "--config", empty},
			wantOut: []string{"configuration is valid", "http://127.0.0.1:5000", "filesystem"},
		},
		{
			name:    "PostgreSQL",
			args:    []string{"server", "validate-config", "--config", postgres},
			wantOut: []string{"configuration is valid", "PostgreSQL"},
		},
		{
			name:    "S3, moving from a filesystem",
			args:    []string{"server", "validate-config", "--config", moving},
			wantOut: []string{"S3 at https://s3.example.com (region ", "bucket keppel", "moving from:", "filesystem at /srv/old"},
		},
		{
			name:    "file from the environment",
			env:     map[string]string{"KEPPEL_CONFIG_FILE": valid},
			args:    []string{"server", "validate-config"},
			wantOut: []string{"127.0.0.1:6000"},
		},
		{
			name:    "environment overrides the file",
			env:     map[string]string{"KEPPEL_API_PUBLIC_URL": "https://env.example.com"},
			args:    []string{"server", "validate-config", "--config", valid},
			wantOut: []string{"https://env.example.com"},
		},
		{
			name:    "unknown key",
			args:    []string{"server", "validate-config", "--config", unknownKey},
			wantErr: "listen_adress",
		},
		{
			name:    "bad log level",
			args:    []string{"server", "validate-config", "--config", badLevel},
			wantErr: "log_level",
		},
		{
			name:    "bad environment value",
			env:     map[string]string{"KEPPEL_STORAGE_DRIVER": "s4"},
			args:    []string{"server", "validate-config", "--config", valid},
			wantErr: "storage.driver",
		},
		{
			name:    "missing file",
			args:    []string{"server", "validate-config", "--config", filepath.Join(dir, "missing.yaml")},
			wantErr: "missing.yaml",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			out, err := run(t, "", tc.args...)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("validate-config accepted the configuration (output %q)", out)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not mention %q", err, tc.wantErr)
				}
				if strings.Contains(out, "configuration is valid") {
					t.Errorf("output says valid: %q", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("validate-config: %v", err)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("output %q does not contain %q", out, want)
				}
			}
			if strings.Contains(out, "hidden") {
				t.Errorf("output %q shows a secret", out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "", "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "keppel ") || strings.TrimSpace(strings.TrimPrefix(out, "keppel ")) == "" {
		t.Errorf("version printed %q", out)
	}
}

func TestUnknownCommand(t *testing.T) {
	if _, err := run(t, "", "no-such-command"); err == nil {
		t.Error("an unknown command succeeded")
	}
}

func TestHostOf(t *testing.T) {
	tests := map[string]string{
		"http://127.0.0.1:5000":         "127.0.0.1:5000",
		"https://registry.example.com":  "registry.example.com",
		"https://registry.example.com/": "registry.example.com",
	}
	for in, want := range tests {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
}
