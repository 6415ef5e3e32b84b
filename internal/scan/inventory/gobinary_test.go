package inventory

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// The module cache of the machine that runs the tests holds the modules of
// this repository, among them golang.org/x/sync in these versions. The test
// binary requires the first and replaces it with the second.
const (
	syncRequired = "v0.23.0"
	syncReplaced = "v0.25.0"
)

const testProgram = `package main

import (
	"fmt"
	"os"
%s)

func main() {
	fmt.Fprintln(os.Stdout, "hello")
%s}
`

// buildGoBinary builds a small Linux program with the Go toolchain that
// runs the tests, without network access. If withDependency is set, the
// program uses golang.org/x/sync from the module cache.
func buildGoBinary(t *testing.T, withDependency bool) ([]byte, error) {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH")
	}
	dir := t.TempDir()
	goMod := "module example.com/scanme\n\ngo 1.24\n"
	imports, body := "", ""
	if withDependency {
		goMod += "\nrequire golang.org/x/sync " + syncRequired + "\n\nreplace golang.org/x/sync => golang.org/x/sync " + syncReplaced + "\n"
		imports = "\n\t\"golang.org/x/sync/errgroup\"\n"
		body = "\tvar g errgroup.Group\n\tg.Go(func() error { return nil })\n\t_ = g.Wait()\n"
	}
	files := map[string]string{
		"go.mod":  goMod,
		"main.go": fmt.Sprintf(testProgram, imports, body),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goCmd, "build", "-trimpath", "-o", "app", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GOOS=linux", "CGO_ENABLED=0", "GOWORK=off", "GOTOOLCHAIN=local",
		"GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod -buildvcs=false",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, &buildError{err: err, output: string(out)}
	}
	return os.ReadFile(filepath.Join(dir, "app"))
}

type buildError struct {
	err    error
	output string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.output }

func TestGoBinary(t *testing.T) {
	t.Parallel()
	const location = "/usr/local/bin/app"
	withDependency := true
	bin, err := buildGoBinary(t, true)
	if err != nil {
		t.Logf("cannot build with golang.org/x/sync from the module cache, building without dependencies: %v", err)
		withDependency = false
		if bin, err = buildGoBinary(t, false); err != nil {
			t.Fatal(err)
		}
	}
	goVer := strings.TrimPrefix(strings.Fields(runtime.Version())[0], "go")
	want := []Package{{Type: TypeGoStdlib, Name: "stdlib", Source: "stdlib", Version: goVer, Location: location}}
	if withDependency {
		want = append([]Package{{Type: TypeGoModule, Name: "golang.org/x/sync", Source: "golang.org/x/sync", Version: syncReplaced, Location: location}}, want...)
	}

	base := gzipLayer(t, reg("etc/os-release", alpineOSRelease), dir("usr/local/bin/"), exe("usr/local/bin/app", bin))
	inv := extract(t, base)
	// The main module is built without a version ("(devel)"), so it is not
	// reported.
	checkPackages(t, inv.Packages, want)
	if inv.OS != alpineOS {
		t.Errorf("OS = %+v, want %+v", inv.OS, alpineOS)
	}

	t.Run("deleted", func(t *testing.T) {
		t.Parallel()
		inv := extract(t, base, gzipLayer(t, reg("usr/local/bin/.wh.app", "")))
		checkPackages(t, inv.Packages, nil)
	})
	t.Run("replaced by another file", func(t *testing.T) {
		t.Parallel()
		inv := extract(t, base, gzipLayer(t, exe("usr/local/bin/app", []byte("#!/bin/sh\necho hello\n"))))
		checkPackages(t, inv.Packages, nil)
	})
	t.Run("copied", func(t *testing.T) {
		t.Parallel()
		inv := extract(t, base, gzipLayer(t, exe("opt/app", bin)))
		var more []Package
		for _, p := range want {
			more = append(more, p)
			p.Location = "/opt/app"
			more = append(more, p)
		}
		checkPackages(t, inv.Packages, sortPackages(more))
	})
	t.Run("not executable", func(t *testing.T) {
		t.Parallel()
		// Outside the directories for binaries, only executables count.
		inv := extract(t, gzipLayer(t, reg("opt/app", string(bin))))
		checkPackages(t, inv.Packages, nil)
		inv = extract(t, gzipLayer(t, reg("usr/bin/app", string(bin))))
		if len(inv.Packages) != len(want) {
			t.Errorf("a binary in /usr/bin without an executable bit gives packages:\n%s", pkgList(inv.Packages))
		}
	})
	t.Run("over the file size limit", func(t *testing.T) {
		t.Parallel()
		limits := DefaultLimits()
		limits.MaxFileSize = int64(len(bin)) - 1
		inv, err := Extract(t.Context(), []Layer{base}, limits)
		if err != nil {
			t.Fatal(err)
		}
		checkPackages(t, inv.Packages, nil)
	})
	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		// The ELF headers are there, the build information is not.
		inv := extract(t, gzipLayer(t, exe("usr/local/bin/app", bin[:4096])))
		checkPackages(t, inv.Packages, nil)
	})
}

func TestBuildInfoPackages(t *testing.T) {
	t.Parallel()
	const location = "/app"
	bi := &debug.BuildInfo{
		GoVersion: "go1.21.3 X:boringcrypto",
		Path:      "example.com/app/cmd/app",
		Main:      debug.Module{Path: "example.com/app", Version: "v1.2.3"},
		Deps: []*debug.Module{
			{Path: "golang.org/x/text", Version: "v0.14.0"},
			{Path: "example.com/old", Version: "v1.0.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.0.1"}},
			{Path: "example.com/local", Version: "v0.0.0", Replace: &debug.Module{Path: "../local"}},
			nil,
			{Path: ""},
		},
	}
	mod := func(path, version string) Package {
		return Package{Type: TypeGoModule, Name: path, Source: path, Version: version, Location: location}
	}
	checkPackages(t, sortPackages(buildInfoPackages(bi, location)), []Package{
		mod("../local", ""),
		mod("example.com/app", "v1.2.3"),
		mod("example.com/fork", "v1.0.1"),
		mod("golang.org/x/text", "v0.14.0"),
		{Type: TypeGoStdlib, Name: "stdlib", Source: "stdlib", Version: "1.21.3", Location: location},
	})

	for _, version := range []string{"(devel)", ""} {
		bi.Main.Version = version
		for _, p := range buildInfoPackages(bi, location) {
			if p.Name == "example.com/app" {
				t.Errorf("main module with version %q reported", version)
			}
		}
	}
}

func TestGoVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"go1.21.3":                      "1.21.3",
		"go1.22rc1":                     "1.22rc1",
		"go1.21.3 X:boringcrypto":       "1.21.3",
		"devel go1.23-abcdef Thu Jan 1": "devel go1.23-abcdef Thu Jan 1",
		"":                              "",
	} {
		if got := goVersion(in); got != want {
			t.Errorf("goVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
