package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// completeAccounts completes account names from the registry (shell
// completion asks the registry with the same login as the command would).
func completeAccounts(flags *clientFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 && cmd.Args != nil && cmd.Args(cmd, append(args, "x")) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out, err := matchingAccounts(cmd, flags, toComplete, "")
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// matchingAccounts lists the account names that start with prefix, each
// followed by suffix.
func matchingAccounts(cmd *cobra.Command, flags *clientFlags, prefix, suffix string) ([]string, error) {
	accounts, err := listAccounts(cmd, flags)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range accounts {
		if strings.HasPrefix(a.Name, prefix) {
			out = append(out, a.Name+suffix)
		}
	}
	return out, nil
}

// completeRepositories completes ACCOUNT/REPOSITORY: first the account
// (followed by a slash), then the account's repositories.
func completeRepositories(flags *clientFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		account, _, hasSlash := strings.Cut(toComplete, "/")
		if !hasSlash || looksLikeHost(account) {
			if looksLikeHost(account) {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			out, err := matchingAccounts(cmd, flags, toComplete, "/")
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		}
		_, repos, err := listRepositories(cmd, flags, account)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []string
		for _, r := range repos {
			if full := account + "/" + r.Name; strings.HasPrefix(full, toComplete) {
				out = append(out, full)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
