package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

// withAccountManagement adds the show and delete subcommands to the account
// command.
func withAccountManagement(cmd *cobra.Command) *cobra.Command {
	cmd.AddCommand(newAccountShowCommand(), newAccountDeleteCommand())
	return cmd
}

func accountPath(name string) string { return "/keppel/v1/accounts/" + url.PathEscape(name) }

func newAccountShowCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show an account with its policies",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Account json.RawMessage `json:"account"`
			}
			if err := flags.call(cmd, http.MethodGet, accountPath(args[0]), nil, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if f := formatOf(cmd); f != output.Table {
				return output.Write(w, f, out.Account, nil)
			}
			var a struct {
				accountJSON
				RBACPolicies []json.RawMessage `json:"rbac_policies"`
				TagPolicies  []json.RawMessage `json:"tag_policies"`
				GCPolicies   []json.RawMessage `json:"gc_policies"`
				Validation   *struct {
					RuleForManifest string `json:"rule_for_manifest"`
				} `json:"validation"`
				Managed bool `json:"managed"`
			}
			if err := json.Unmarshal(out.Account, &a); err != nil {
				return fmt.Errorf("decoding response: %w", err)
			}
			state := a.State
			if state == "" {
				state = "active"
			}
			tw := output.NewTable(w)
			fmt.Fprintf(tw, "name:\t%s\n", a.Name)
			fmt.Fprintf(tw, "auth tenant:\t%s\n", a.AuthTenantID)
			fmt.Fprintf(tw, "state:\t%s\n", state)
			fmt.Fprintf(tw, "managed:\t%t\n", a.Managed)
			fmt.Fprintf(tw, "RBAC policies:\t%d\n", len(a.RBACPolicies))
			fmt.Fprintf(tw, "tag policies:\t%d\n", len(a.TagPolicies))
			fmt.Fprintf(tw, "GC policies:\t%d\n", len(a.GCPolicies))
			if a.Validation != nil && a.Validation.RuleForManifest != "" {
				fmt.Fprintf(tw, "validation rule:\t%s\n", a.Validation.RuleForManifest)
			}
			return tw.Flush()
		},
	}
	flags.register(cmd)
	cmd.ValidArgsFunction = completeAccounts(&flags)
	return cmd
}

func newAccountDeleteCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an account: its content is removed in the background",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flags.call(cmd, http.MethodDelete, accountPath(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "account %s is being deleted\n", args[0])
			return nil
		},
	}
	flags.register(cmd)
	cmd.ValidArgsFunction = completeAccounts(&flags)
	return cmd
}
