package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

func newTenantCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Inspect auth tenants"}
	cmd.AddCommand(newTenantMembersCommand())
	return cmd
}

func newTenantMembersCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "members TENANT",
		Short: "List the users with a role in an auth tenant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Members map[string]string `json:"members"`
			}
			if err := flags.call(cmd, http.MethodGet, "/keppel/v1/tenants/"+url.PathEscape(args[0])+"/members", nil, &out); err != nil {
				return err
			}
			if f := formatOf(cmd); f != output.Table {
				return output.Write(cmd.OutOrStdout(), f, out.Members, nil)
			}
			users := make([]string, 0, len(out.Members))
			for u := range out.Members {
				users = append(users, u)
			}
			slices.Sort(users)
			tw := output.NewTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "USER\tROLE")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\n", u, out.Members[u])
			}
			return tw.Flush()
		},
	}
	flags.register(cmd)
	return cmd
}
