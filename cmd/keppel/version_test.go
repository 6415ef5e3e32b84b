package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveVersion(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "keppel", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "keppel", Version: "(devel)"}}
	platform := runtime.GOOS + "/" + runtime.GOARCH

	tests := []struct {
		name           string
		ver, rev, date string
		bi             *debug.BuildInfo
		want           versionInfo
		line           string
	}{
		{
			name: "ldflags win over build information",
			ver:  "1.2.3", rev: "abcdef1234567890", date: "2026-01-02T03:04:05Z", bi: vcs,
			want: versionInfo{Version: "1.2.3", Commit: "abcdef1234567890", BuildDate: "2026-01-02T03:04:05Z", GoVersion: "go1.26.8", Platform: platform},
			line: "keppel 1.2.3 (commit abcdef123456, built 2026-01-02T03:04:05Z, go1.26.8, " + platform + ")",
		},
		{
			name: "build information fills what ldflags left out",
			ver:  "dev", bi: vcs,
			want: versionInfo{Version: "1.4.0", Commit: "0123456789abcdef0123456789abcdef01234567", Modified: true, GoVersion: "go1.26.8", Platform: platform},
			line: "keppel 1.4.0 (commit 0123456789ab, modified, go1.26.8, " + platform + ")",
		},
		{
			name: "a development build without VCS information",
			ver:  "dev", bi: devel,
			want: versionInfo{Version: "dev", GoVersion: "go1.26.8", Platform: platform},
			line: "keppel dev (go1.26.8, " + platform + ")",
		},
		{
			name: "no build information at all",
			ver:  "dev",
			want: versionInfo{Version: "dev", GoVersion: runtime.Version(), Platform: platform},
			line: "keppel dev (" + runtime.Version() + ", " + platform + ")",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := resolveVersion(tc.ver, tc.rev, tc.date, tc.bi)
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.String() != tc.line {
				t.Errorf("got line %q, want %q", got.String(), tc.line)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := run(t, "", "version")
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if !strings.HasPrefix(out, "keppel ") || !strings.Contains(out, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version printed %q", out)
	}

	out, err = run(t, "", "version", "--output", "json")
	if err != nil {
		t.Fatalf("version --output json: %v", err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version --output json printed %q: %v", out, err)
	}
	for _, key := range []string{"version", "go_version", "platform"} {
		if s, _ := v[key].(string); s == "" {
			t.Errorf("JSON output %q lacks %s", out, key)
		}
	}

	if _, err := run(t, "", "version", "--output", "yaml"); err == nil {
		t.Error("version --output yaml was accepted")
	}
}

func TestPrintVersionJSON(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	v := versionInfo{Version: "1.2.3", Commit: "abc", GoVersion: "go1.26.8", Platform: "linux/arm64"}
	if err := printVersion(&buf, v, "json"); err != nil {
		t.Fatal(err)
	}
	var got versionInfo
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil || got != v {
		t.Errorf("JSON %q decodes to %+v (%v), want %+v", buf.String(), got, err, v)
	}
}
