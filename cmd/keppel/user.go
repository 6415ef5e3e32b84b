package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

type userJSON struct {
	Name    string            `json:"name"`
	IsAdmin bool              `json:"is_admin"`
	Roles   map[string]string `json:"roles"`
}

type apiKeyJSON struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
	RevokedAt *string `json:"revoked_at,omitempty"`
	Secret    string  `json:"secret,omitempty"`
}

// rolesText renders roles as "tenant=role,…", sorted by tenant.
func rolesText(roles map[string]string) string {
	if len(roles) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(roles))
	for tenant, role := range roles {
		parts = append(parts, tenant+"="+role)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func newUserCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage the users of the built-in user store, their roles and API keys"}
	cmd.AddCommand(newUserListCommand(), newUserCreateCommand(), newUserDeleteCommand(),
		newUserSetRoleCommand(), newUserRemoveRoleCommand(), newAPIKeyCommand())
	return cmd
}

func newUserListCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users with their roles (server administrators only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Users []userJSON `json:"users"`
			}
			if err := flags.call(cmd, http.MethodGet, "/keppel/v1/users", nil, &out); err != nil {
				return err
			}
			if f := formatOf(cmd); f != output.Table {
				return output.Write(cmd.OutOrStdout(), f, out.Users, nil)
			}
			tw := output.NewTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tADMIN\tROLES")
			for _, u := range out.Users {
				fmt.Fprintf(tw, "%s\t%t\t%s\n", u.Name, u.IsAdmin, rolesText(u.Roles))
			}
			return tw.Flush()
		},
	}
	flags.register(cmd)
	return cmd
}

func generatePassword() (string, error) {
	var buf [18]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("generating a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf[:]), nil
}

func newUserCreateCommand() *cobra.Command {
	var flags clientFlags
	var isAdmin, generate bool
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user, or set an existing user's password and admin flag",
		Long: `Create a user, or set an existing user's password and admin flag (server
administrators only). The new user's password comes from KEPPEL_NEW_PASSWORD
or the next line of standard input (after your own password, with
--password-stdin), or is generated and printed with --generate-password.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd)
			if err != nil {
				return err
			}
			var password string
			switch env := os.Getenv("KEPPEL_NEW_PASSWORD"); {
			case generate:
				if password, err = generatePassword(); err != nil {
					return err
				}
			case env != "":
				password = env
			default:
				if password, err = c.readLine("new user's password"); err != nil {
					return fmt.Errorf("%w (set KEPPEL_NEW_PASSWORD or use --generate-password)", err)
				}
			}
			body := map[string]any{"user": map[string]any{"password": password, "is_admin": isAdmin}}
			var out struct {
				User userJSON `json:"user"`
			}
			status, err := c.do(cmd, http.MethodPut, "/keppel/v1/users/"+url.PathEscape(args[0]), body, &out)
			if err != nil {
				return err
			}
			verb := "updated"
			if status == http.StatusCreated {
				verb = "created"
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "user %s %s (admin: %t)\n", out.User.Name, verb, out.User.IsAdmin)
			if generate {
				fmt.Fprintf(w, "password: %s\n", password)
			}
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().BoolVar(&isAdmin, "admin", false, "make the user a server administrator")
	cmd.Flags().BoolVar(&generate, "generate-password", false, "generate a password and print it")
	return cmd
}

func newUserDeleteCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user with their roles and API keys (server administrators only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flags.call(cmd, http.MethodDelete, "/keppel/v1/users/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func rolePath(user, tenant string) string {
	return "/keppel/v1/users/" + url.PathEscape(user) + "/roles/" + url.PathEscape(tenant)
}

func newUserSetRoleCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "set-role USER TENANT viewer|pusher|admin",
		Short: "Give a user a role in an auth tenant (server and tenant administrators)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]string{"role": args[2]}
			if err := flags.call(cmd, http.MethodPut, rolePath(args[0], args[1]), body, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s is %s in auth tenant %s\n", args[0], args[2], args[1])
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func newUserRemoveRoleCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "remove-role USER TENANT",
		Short: "Take a user's role in an auth tenant away (server and tenant administrators)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flags.call(cmd, http.MethodDelete, rolePath(args[0], args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s has no role in auth tenant %s\n", args[0], args[1])
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func newAPIKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "api-key",
		Short: "Manage API keys, which log in instead of a user's password",
		Long: `Manage API keys, which log in instead of a user's password (use the key as
the password, e.g. for docker login). Users manage their own keys, server
administrators everybody's. --user defaults to the user you log in as.`,
	}
	cmd.AddCommand(newAPIKeyCreateCommand(), newAPIKeyListCommand(), newAPIKeyRevokeCommand())
	return cmd
}

// keysPath is the API keys path of --user, or of the caller.
func keysPath(c *client, user string) string {
	if user == "" {
		user = c.username
	}
	return "/keppel/v1/users/" + url.PathEscape(user) + "/api_keys"
}

func orNever(s *string) string {
	if s == nil {
		return "never"
	}
	return *s
}

func newAPIKeyCreateCommand() *cobra.Command {
	var flags clientFlags
	var user string
	var days int
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API key and print it (it cannot be shown again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"name": args[0]}
			if cmd.Flags().Changed("expires-in-days") {
				body["expires_in_days"] = days
			}
			var out struct {
				APIKey apiKeyJSON `json:"api_key"`
			}
			if _, err := c.do(cmd, http.MethodPost, keysPath(c, user), body, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if f := formatOf(cmd); f != output.Table {
				return output.Write(w, f, out.APIKey, nil)
			}
			k := out.APIKey
			fmt.Fprintf(cmd.ErrOrStderr(), "API key %s (%s) created, expires %s; store it now, it cannot be shown again:\n", k.ID, k.Name, orNever(k.ExpiresAt))
			fmt.Fprintln(w, k.Secret)
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&user, "user", "", "user whose key it is (default: you)")
	cmd.Flags().IntVar(&days, "expires-in-days", 0, "let the key expire after this many days (default: never)")
	return cmd
}

func newAPIKeyListCommand() *cobra.Command {
	var flags clientFlags
	var user string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (without their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd)
			if err != nil {
				return err
			}
			var out struct {
				APIKeys []apiKeyJSON `json:"api_keys"`
			}
			if _, err := c.do(cmd, http.MethodGet, keysPath(c, user), nil, &out); err != nil {
				return err
			}
			if f := formatOf(cmd); f != output.Table {
				return output.Write(cmd.OutOrStdout(), f, out.APIKeys, nil)
			}
			tw := output.NewTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tEXPIRES\tSTATE")
			now := time.Now()
			for _, k := range out.APIKeys {
				state := "active"
				if k.RevokedAt != nil {
					state = "revoked"
				} else if k.ExpiresAt != nil {
					if t, err := time.Parse(time.RFC3339, *k.ExpiresAt); err == nil && !now.Before(t) {
						state = "expired"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.CreatedAt, orNever(k.ExpiresAt), state)
			}
			return tw.Flush()
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&user, "user", "", "user whose keys to list (default: you)")
	return cmd
}

func newAPIKeyRevokeCommand() *cobra.Command {
	var flags clientFlags
	var user string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd)
			if err != nil {
				return err
			}
			if args[0] == "" {
				return errors.New("the key ID is empty")
			}
			if _, err := c.do(cmd, http.MethodDelete, keysPath(c, user)+"/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "API key %s revoked\n", args[0])
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&user, "user", "", "user whose key it is (default: you)")
	return cmd
}
