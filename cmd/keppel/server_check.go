package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
	"keppel/internal/config"
	"keppel/internal/consistency"
	"keppel/internal/server"
)

// errInconsistent is returned by `server check` when findings remain.
var errInconsistent = errors.New("the database and the storage disagree")

func newServerCheckCommand(loadConfig func() (config.Config, error)) *cobra.Command {
	var (
		repair  bool
		account string
	)
	cmd := &cobra.Command{
		Use:   "check [--repair] [--account NAME]",
		Short: "Check the metadata database against the content storage (read-only unless --repair)",
		Long: `Compare the metadata database with the content storage of every account (or
of one, with --account) and print where they disagree:

  missing_blob            a blob that the database records with content, whose
                          storage object is missing
  blob_size_mismatch      a blob whose storage object has another size
  missing_manifest_copy   a manifest whose storage copy is missing (the database
                          holds the manifest's content; the copy is for operators)
  orphaned_blob,          an object in the storage that the database does not
  orphaned_manifest_copy  refer to

Without --repair nothing is changed. The exit code is 1 when something is
found, 0 when the database and the storage agree. The database schema must
be current (see ` + "`keppel server migrate`" + `).

With --repair:
  * a blob of a primary account whose content is missing (or has another size)
    is recorded as broken, as the janitor's re-hash does: it is no longer
    served, the next push of the same blob replaces its content, and garbage
    collection removes it once nothing references it. Manifests are never
    deleted: a manifest that references the blob stays visible, and pulls of
    that blob fail until someone pushes it again.
  * a blob of a replica account forgets its content: the next pull fetches it
    from the upstream registry again.
  * a missing manifest copy is written again from the database.
  * an orphaned object is deleted once it has been unknown to the database for
    the janitor's GC grace period (janitor.gc_grace_period), with the same
    bookkeeping as the janitor's storage sweep; objects found for the first
    time are marked, and the next ` + "`keppel server check --repair`" + ` (or the janitor)
    after the time shown deletes them. Uploads in progress are never touched.
The exit code is 0 when everything found was repaired.

Afterwards, run ` + "`keppel server check`" + ` again: it should find nothing. See
docs/operator-guide.md, "Checking database against storage".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			// Read-only means the schema too: the check does not migrate.
			migrations, err := server.DatabaseMigrations(cmd.Context(), cfg)
			if err != nil {
				return fmt.Errorf("reading the schema version: %w", err)
			}
			for _, m := range migrations {
				if !m.Applied {
					return fmt.Errorf("the database schema is not current (%s is pending): run `keppel server migrate` first", m.Name)
				}
			}
			stores, err := server.OpenStores(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer stores.Close()
			rep, err := consistency.Check(cmd.Context(), stores.DB, stores.Storage, consistency.Options{
				Repair: repair, Account: account, GracePeriod: cfg.Janitor.GCGracePeriod,
			})
			if err != nil {
				return fmt.Errorf("checking the database against the storage: %w", err)
			}
			if err := printResult(cmd, rep, func(w io.Writer) error { return printCheckTable(w, rep, repair) }); err != nil {
				return err
			}
			return checkOutcome(rep, repair)
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "repair what is found (see above); without it nothing is changed")
	cmd.Flags().StringVar(&account, "account", "", "check only this account")
	return cmd
}

// printCheckTable prints the findings and a summary line for people.
func printCheckTable(w io.Writer, rep consistency.Report, repair bool) error {
	if len(rep.Findings) > 0 {
		header := []string{"KIND", "ACCOUNT", "REPOSITORY", "DIGEST", "STORAGE ID", "DETAIL"}
		if repair {
			header = append(header, "REPAIR")
		}
		output.Row(w, header...)
		for _, f := range rep.Findings {
			row := []string{string(f.Kind), f.Account, dash(f.Repository), dash(f.Digest), dash(f.StorageID), f.Detail}
			if repair {
				row = append(row, f.Repair)
			}
			output.Row(w, row...)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "checked %d accounts: %d blobs and %d manifest copies in the database, %d objects in the storage; %d findings",
		rep.Accounts, rep.Blobs, rep.ManifestCopies, rep.Objects, len(rep.Findings))
	if repair {
		fmt.Fprintf(w, ", %d repaired", len(rep.Findings)-rep.Unresolved())
	}
	fmt.Fprintln(w)
	if rep.KnownBroken > 0 {
		fmt.Fprintf(w, "%d blobs without content are recorded as broken: they are not served until they are pushed again\n", rep.KnownBroken)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// checkOutcome turns what remains unresolved into the command's error.
func checkOutcome(rep consistency.Report, repair bool) error {
	n := rep.Unresolved()
	switch {
	case n == 0:
		return nil
	case repair:
		return fmt.Errorf("%w: %d findings remain; orphaned objects within their grace period are deleted by the next "+
			"`keppel server check --repair` after the time shown, or by the janitor", errInconsistent, n)
	default:
		return fmt.Errorf("%w: %d findings; run `keppel server check --repair` to repair them "+
			"(what it does: `keppel server check --help`)", errInconsistent, n)
	}
}
