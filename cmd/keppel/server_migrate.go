package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
	"keppel/internal/config"
	"keppel/internal/server"
)

// migrationJSON is one migration as `server migrate` prints it.
type migrationJSON struct {
	Version   int64  `json:"version"`
	Name      string `json:"name"`
	Applied   bool   `json:"applied"`
	AppliedAt string `json:"applied_at,omitempty"`
}

func newServerMigrateCommand(loadConfig func() (config.Config, error)) *cobra.Command {
	var status bool
	cmd := &cobra.Command{
		Use:   "migrate [--status]",
		Short: "Apply pending database schema migrations and exit (--status: only list them)",
		Long: `Bring the schema of the metadata database (SQLite or PostgreSQL, as
configured) up to date and print the migrations that were applied, or that
the schema is current.

Servers and janitors migrate on start as well; this command lets you migrate
before you roll out a new version (several processes may migrate at once:
PostgreSQL migrations take an advisory lock). With --status it lists every
migration this program knows and whether the database has it, and changes
nothing. See docs/operator-guide.md, "Schema migrations".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			if status {
				all, err := server.DatabaseMigrations(cmd.Context(), cfg)
				if err != nil {
					return fmt.Errorf("reading the schema version: %w", err)
				}
				return printMigrations(cmd, all, true)
			}
			applied, err := server.MigrateDatabase(cmd.Context(), cfg)
			if err != nil {
				if len(applied) > 0 {
					_ = printMigrations(cmd, applied, false) // show what did get applied
				}
				return fmt.Errorf("migrating the database: %w", err)
			}
			return printMigrations(cmd, applied, false)
		},
	}
	cmd.Flags().BoolVar(&status, "status", false, "list the migrations and whether the database has them; change nothing")
	return cmd
}

// printMigrations prints the migrations: all known ones (status) or those
// just applied.
func printMigrations(cmd *cobra.Command, ms []server.Migration, status bool) error {
	list := make([]migrationJSON, 0, len(ms))
	pending := 0
	for _, m := range ms {
		j := migrationJSON{Version: m.Version, Name: m.Name, Applied: m.Applied}
		if !m.AppliedAt.IsZero() {
			j.AppliedAt = m.AppliedAt.UTC().Format(time.RFC3339)
		}
		if !m.Applied {
			pending++
		}
		list = append(list, j)
	}
	return printResult(cmd, list, func(w io.Writer) error {
		switch {
		case !status && len(list) == 0:
			fmt.Fprintln(w, "the database schema is current: no migration was applied")
			return nil
		case !status:
			for _, m := range list {
				fmt.Fprintf(w, "applied %s\n", m.Name)
			}
			fmt.Fprintf(w, "%d migrations applied; the database schema is current\n", len(list))
			return nil
		}
		output.Row(w, "VERSION", "NAME", "APPLIED AT")
		for _, m := range list {
			output.Row(w, fmt.Sprint(m.Version), m.Name, orPending(m.AppliedAt, m.Applied))
		}
		if pending == 0 {
			fmt.Fprintln(w, "\nthe database schema is current")
		} else {
			fmt.Fprintf(w, "\n%d migrations are pending: run `keppel server migrate` to apply them\n", pending)
		}
		return nil
	})
}

func orPending(at string, applied bool) string {
	switch {
	case !applied:
		return "pending"
	case at == "":
		return "yes"
	default:
		return at
	}
}
