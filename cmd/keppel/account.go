package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

type clientFlags struct {
	registry      string
	username      string
	passwordStdin bool
}

func (f *clientFlags) register(cmd *cobra.Command) {
	def := os.Getenv("KEPPEL_REGISTRY_URL")
	if def == "" {
		def = "http://127.0.0.1:5000"
	}
	user := os.Getenv("KEPPEL_USERNAME")
	if user == "" {
		user = "admin"
	}
	cmd.Flags().StringVar(&f.registry, "registry", def, "registry URL (env KEPPEL_REGISTRY_URL)")
	cmd.Flags().StringVarP(&f.username, "username", "u", user, "user name (env KEPPEL_USERNAME)")
	cmd.Flags().BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from standard input (default: env KEPPEL_PASSWORD)")
}

func (f *clientFlags) password(cmd *cobra.Command) (string, error) {
	if f.passwordStdin {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if p := os.Getenv("KEPPEL_PASSWORD"); p != "" {
		return p, nil
	}
	return "", errors.New("no password: set KEPPEL_PASSWORD or use --password-stdin")
}

type accountJSON struct {
	Name         string `json:"name"`
	AuthTenantID string `json:"auth_tenant_id"`
	State        string `json:"state,omitempty"`
}

func newAccountCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Manage accounts (the first path element of repository names)"}

	var create clientFlags
	var tenant string
	createCmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an account (idempotent for the same auth tenant)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tenant == "" {
				return errors.New("--auth-tenant-id is required")
			}
			body := map[string]any{"account": map[string]string{"auth_tenant_id": tenant}}
			var out struct {
				Account accountJSON `json:"account"`
			}
			if err := create.call(cmd, http.MethodPut, "/keppel/v1/accounts/"+url.PathEscape(args[0]), body, &out); err != nil {
				return err
			}
			return printResult(cmd, out.Account, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "account %s (auth tenant %s) is ready\n", out.Account.Name, out.Account.AuthTenantID)
				return err
			})
		},
	}
	create.register(createCmd)
	createCmd.Flags().StringVar(&tenant, "auth-tenant-id", "", "auth tenant that owns the account")

	var list clientFlags
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Accounts []accountJSON `json:"accounts"`
			}
			if err := list.call(cmd, http.MethodGet, "/keppel/v1/accounts", nil, &out); err != nil {
				return err
			}
			return printResult(cmd, out.Accounts, func(w io.Writer) error {
				output.Row(w, "NAME", "AUTH TENANT", "STATE")
				for _, a := range out.Accounts {
					state := a.State
					if state == "" {
						state = "active"
					}
					output.Row(w, a.Name, a.AuthTenantID, state)
				}
				return nil
			})
		},
	}
	list.register(listCmd)

	cmd.AddCommand(createCmd, listCmd)
	return cmd
}

func hostOf(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil {
		return publicURL
	}
	return u.Host
}
