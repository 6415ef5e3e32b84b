package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

type quotaValueJSON struct {
	Quota int64 `json:"quota"`
	Usage int64 `json:"usage"`
}

type quotaJSON struct {
	Manifests quotaValueJSON `json:"manifests"`
	Bytes     quotaValueJSON `json:"bytes"`
	IsDefault bool           `json:"is_default,omitempty"`
}

func newQuotaCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "quota", Short: "Show and set the quotas of auth tenants"}
	cmd.AddCommand(newQuotaShowCommand(), newQuotaSetCommand())
	return cmd
}

func quotaPath(tenant string) string { return "/keppel/v1/quotas/" + url.PathEscape(tenant) }

func limitText(v int64) string {
	if v < 0 {
		return "unlimited"
	}
	return strconv.FormatInt(v, 10)
}

func printQuota(w io.Writer, tenant string, q quotaJSON, f output.Format) error {
	if f != output.Table {
		return output.Write(w, f, q, nil)
	}
	tw := output.NewTable(w)
	fmt.Fprintln(tw, "RESOURCE\tQUOTA\tUSAGE")
	fmt.Fprintf(tw, "manifests\t%s\t%d\n", limitText(q.Manifests.Quota), q.Manifests.Usage)
	fmt.Fprintf(tw, "bytes\t%s\t%d\n", limitText(q.Bytes.Quota), q.Bytes.Usage)
	if err := tw.Flush(); err != nil {
		return err
	}
	if q.IsDefault {
		fmt.Fprintf(w, "(auth tenant %s has the default quota)\n", tenant)
	}
	return nil
}

func newQuotaShowCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "show TENANT",
		Short: "Show an auth tenant's quota and usage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q quotaJSON
			if err := flags.call(cmd, http.MethodGet, quotaPath(args[0]), nil, &q); err != nil {
				return err
			}
			return printQuota(cmd.OutOrStdout(), args[0], q, formatOf(cmd))
		},
	}
	flags.register(cmd)
	return cmd
}

func newQuotaSetCommand() *cobra.Command {
	var flags clientFlags
	var manifests, bytes int64
	cmd := &cobra.Command{
		Use:   "set TENANT [--manifests N] [--bytes N]",
		Short: "Set an auth tenant's quota (server administrators only; -1 is unlimited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if cmd.Flags().Changed("manifests") {
				body["manifests"] = map[string]int64{"quota": manifests}
			}
			if cmd.Flags().Changed("bytes") {
				body["bytes"] = map[string]int64{"quota": bytes}
			}
			if len(body) == 0 {
				return errors.New("nothing to set: use --manifests and/or --bytes")
			}
			var q quotaJSON
			if err := flags.call(cmd, http.MethodPut, quotaPath(args[0]), body, &q); err != nil {
				return err
			}
			return printQuota(cmd.OutOrStdout(), args[0], q, formatOf(cmd))
		},
	}
	flags.register(cmd)
	cmd.Flags().Int64Var(&manifests, "manifests", 0, "maximum number of manifests (-1: unlimited)")
	cmd.Flags().Int64Var(&bytes, "bytes", 0, "maximum bytes of blobs (-1: unlimited)")
	return cmd
}
