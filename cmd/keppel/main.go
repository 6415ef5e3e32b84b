// Command keppel is the Keppel registry: its server and its client commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "keppel:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "keppel",
		Short:         "A multi-tenant OCI container image registry",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand(), withAccountManagement(newAccountCommand()), newUserCommand(), newTenantCommand(), newQuotaCommand(), newLoginCommand(), newLogoutCommand(), newBenchCommand(), newValidateCommand(), newVulnerabilitiesCommand(), newPushCommand(), newPullCommand(), newCopyCommand(), newVersionCommand(), newHealthcheckCommand())
	return root
}
