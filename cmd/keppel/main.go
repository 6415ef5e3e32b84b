// Command keppel is the Keppel registry: its server and its client commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		msg := err.Error()
		if strings.HasPrefix(msg, "unknown command") {
			msg += "\nRun `keppel --help` for the list of commands."
		}
		fmt.Fprintln(os.Stderr, "keppel:", msg)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "keppel",
		Short: "A multi-tenant OCI container image registry",
		Long: `Keppel is a multi-tenant OCI container image registry. ` + "`keppel server`" + ` runs it;
the other commands are its clients.

Get started:
  keppel server                                   run a registry on 127.0.0.1:5000
  keppel login 127.0.0.1:5000 -u admin            log in with the printed password
  keppel account create library --auth-tenant-id default
  keppel copy SOURCE 127.0.0.1:5000/library/app:v1

Client commands talk to --registry (or KEPPEL_REGISTRY_URL, or the registry
logged in to last) as --username with KEPPEL_PASSWORD or the stored login.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), withAccountManagement(newAccountCommand()), newUserCommand(), newTenantCommand(), newQuotaCommand(), newLoginCommand(), newLogoutCommand(), newBenchCommand(), newValidateCommand(), newVulnerabilitiesCommand(), newLsCommand(), newCatalogCommand(), newTagsCommand(), newManifestCommand(), newDeleteCommand(), newPushCommand(), newPullCommand(), newCopyCommand(), newVersionCommand(), newHealthcheckCommand())
	addOutputFlags(root)
	groupCommands(root)
	addUsageHints(root)
	return root
}

// commandGroups sorts the top-level commands for the help text.
var commandGroups = []struct {
	group    cobra.Group
	commands []string
}{
	{cobra.Group{ID: "images", Title: "Images:"}, []string{"push", "pull", "copy", "ls", "catalog", "tags", "manifest", "delete", "validate", "vulnerabilities"}},
	{cobra.Group{ID: "manage", Title: "Accounts, users and quotas:"}, []string{"login", "logout", "account", "user", "tenant", "quota"}},
	{cobra.Group{ID: "run", Title: "Running the registry:"}, []string{"server", "healthcheck", "bench", "version"}},
}

func groupCommands(root *cobra.Command) {
	for _, g := range commandGroups {
		root.AddGroup(&g.group)
		for _, c := range root.Commands() {
			if slices.Contains(g.commands, c.Name()) {
				c.GroupID = g.group.ID
			}
		}
	}
}

// addUsageHints makes argument and flag errors of every command say where
// the usage is.
func addUsageHints(cmd *cobra.Command) {
	hint := func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath())
	}
	cmd.SetFlagErrorFunc(hint)
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return hint(c, err)
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		addUsageHints(c)
	}
}
