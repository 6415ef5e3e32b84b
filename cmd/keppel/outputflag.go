package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

// addOutputFlags gives every command --output (-o) table|json|yaml; --json
// is kept as a short form of --output json.
func addOutputFlags(root *cobra.Command) {
	root.PersistentFlags().StringP("output", "o", string(output.Table), "output format: table, json or yaml")
	root.PersistentFlags().Bool("json", false, "same as --output json")
	_ = root.PersistentFlags().MarkHidden("json")
	_ = root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return output.Formats, cobra.ShellCompDirectiveNoFileComp
	})
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if f := cmd.Flags().Lookup("output"); f != nil {
			if _, err := output.Parse(f.Value.String()); err != nil {
				return fmt.Errorf("--output: %w", err)
			}
		}
		return nil
	}
}

// formatOf returns the output format that the command was asked for
// (checked before the command runs).
func formatOf(cmd *cobra.Command) output.Format {
	if asJSON, err := cmd.Flags().GetBool("json"); err == nil && asJSON {
		return output.JSON
	}
	s, err := cmd.Flags().GetString("output")
	if err != nil {
		return output.Table
	}
	f, err := output.Parse(s)
	if err != nil {
		return output.Table
	}
	return f
}

// printResult prints v in the command's output format; table prints it
// for people.
func printResult(cmd *cobra.Command, v any, table func(w io.Writer) error) error {
	return output.Write(cmd.OutOrStdout(), formatOf(cmd), v, table)
}
