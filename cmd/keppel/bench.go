package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"keppel/internal/loadgen"
)

func newBenchCommand() *cobra.Command {
	var (
		cfg       loadgen.Config
		scenarios string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark a registry on loopback over the raw OCI API",
		Long: `Benchmark a registry on loopback (Keppel, or any OCI registry such as the
CNCF Distribution registry) with plain net/http and the Docker token flow.

Scenarios (` + "`--scenario all`" + ` runs them in this order):
` + scenarioHelp() + `
Each scenario pushes what it needs before its timed part. Parallel scenarios
use --clients workers, the others one. A scenario ends after --duration or
--max-ops operations, whichever comes first. With --pid, the server's CPU
seconds (utime+stime from /proc/<pid>/stat) during the timed part and its
peak RSS (VmHWM) are reported too.

Only loopback registries (127.0.0.0/8, ::1) are accepted. The password
comes from --password or KEPPEL_PASSWORD; a registry without auth needs
none.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Password == "" {
				cfg.Password = os.Getenv("KEPPEL_PASSWORD")
			}
			names, err := loadgen.ParseScenarios(scenarios)
			if err != nil {
				return err
			}
			if cfg.Duration > loadgen.MaxDuration {
				return fmt.Errorf("--duration is capped at %s", loadgen.MaxDuration)
			}
			if err := loadgen.CheckLoopback(cfg.Registry); err != nil {
				return fmt.Errorf("--registry: %w", err)
			}
			cfg.Sizes = loadgen.DefaultSizes()
			cfg.Progress = cmd.ErrOrStderr()
			results, runErr := loadgen.Run(cmd.Context(), cfg, names)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"registry": cfg.Registry, "results": results}); err != nil {
					return err
				}
			} else if len(results) > 0 {
				if err := loadgen.WriteText(cmd.OutOrStdout(), results); err != nil {
					return err
				}
			}
			if runErr != nil {
				return runErr
			}
			for _, r := range results {
				if r.Errors > 0 {
					return errors.New("some operations failed")
				}
			}
			return nil
		},
	}
	cmd.AddCommand(newBenchCompareCommand())
	f := cmd.Flags()
	f.StringVar(&cfg.Registry, "registry", defaultRegistry, "base URL of the registry (loopback only)")
	f.StringVar(&cfg.Username, "username", envOr("KEPPEL_USERNAME", "admin"), "user for the token flow (default: env KEPPEL_USERNAME or admin)")
	f.StringVar(&cfg.Password, "password", "", "password for the token flow (default: env KEPPEL_PASSWORD)")
	f.StringVar(&cfg.Repo, "repo", "bench/load", "repository to work in (<account>/<name>); the tag list and catalog scenarios add <repo>-tags and <repo>-cat-NNNN")
	f.StringVar(&scenarios, "scenario", "all", "comma-separated scenarios, or all")
	f.IntVar(&cfg.Clients, "clients", 32, "workers of the parallel scenarios")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "timed part of each scenario (at most "+loadgen.MaxDuration.String()+")")
	f.Int64Var(&cfg.MaxOps, "max-ops", 1_000_000, "operations per scenario at most")
	f.IntVar(&cfg.PID, "pid", 0, "PID of the server process, to report its CPU seconds and peak RSS")
	f.BoolVar(&cfg.NoVerify, "no-verify", false, "do not hash pulled blobs (measures the server rather than the client)")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func scenarioHelp() string {
	var b strings.Builder
	for _, name := range loadgen.Scenarios() {
		fmt.Fprintf(&b, "  %-22s %s\n", name, loadgen.Describe(name))
	}
	return b.String()
}
