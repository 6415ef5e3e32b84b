package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// These are set at build time, e.g.
//
//	go build -ldflags "-X main.version=1.2.3 -X main.commit=$(git rev-parse HEAD) -X main.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/keppel
//
// Without them, version and commit come from the build information that the
// Go toolchain embeds (the main module's version, vcs.revision and
// vcs.modified; the latter two only with -buildvcs, the default in a git
// checkout).
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

// versionInfo describes the running binary.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	BuildDate string `json:"build_date,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// currentVersion combines the values set by -ldflags with the build
// information of the binary.
func currentVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return resolveVersion(version, commit, buildDate, bi)
}

// resolveVersion prefers the values given at link time and falls back to
// bi (which may be nil) for those that are empty.
func resolveVersion(ver, rev, date string, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{
		Version:   ver,
		Commit:    rev,
		BuildDate: date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	if (v.Version == "" || v.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = strings.TrimPrefix(bi.Main.Version, "v")
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.Commit != "" {
		return v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String formats v as one line, e.g.
// "keppel 1.2.3 (commit abc1234, go1.26.8, linux/amd64)".
func (v versionInfo) String() string {
	parts := make([]string, 0, 4)
	if v.Commit != "" {
		c := v.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if v.Modified {
			c += ", modified"
		}
		parts = append(parts, "commit "+c)
	}
	if v.BuildDate != "" {
		parts = append(parts, "built "+v.BuildDate)
	}
	parts = append(parts, v.GoVersion, v.Platform)
	return fmt.Sprintf("keppel %s (%s)", v.Version, strings.Join(parts, ", "))
}

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and platform of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout(), currentVersion(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printVersion(w io.Writer, v versionInfo, output string) error {
	switch output {
	case "text", "":
		_, err := fmt.Fprintln(w, v.String())
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	default:
		return fmt.Errorf("--output %q is not one of: text, json", output)
	}
}
