package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

// vulnerabilityReportJSON is the part of the builtin scanner's report that
// the table shows.
type vulnerabilityReportJSON struct {
	OS struct {
		PrettyName string `json:"PrettyName"`
		ID         string `json:"ID"`
		VersionID  string `json:"VersionID"`
	} `json:"os"`
	EndOfLife       bool   `json:"end_of_life"`
	Packages        int    `json:"packages"`
	Unsupported     string `json:"unsupported"`
	Vulnerabilities []struct {
		ID           string  `json:"id"`
		Severity     string  `json:"severity"`
		Score        float64 `json:"score"`
		Package      string  `json:"package"`
		Version      string  `json:"installed_version"`
		FixedVersion string  `json:"fixed_version"`
		Summary      string  `json:"summary"`
	} `json:"vulnerabilities"`
}

func newVulnerabilitiesCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "vulnerabilities [HOST/]ACCOUNT/REPOSITORY[:TAG|@DIGEST]",
		Short: "Show the vulnerability status and report of a manifest as a table",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := parseImageArg(args[0], "latest")
			if err != nil {
				return err
			}
			if err := img.useHost(cmd); err != nil {
				return err
			}
			ref := img.reference()
			base := img.repositoryPath() + "/_manifests"
			var list struct {
				Manifests []struct {
					Digest string `json:"digest"`
					Status string `json:"vulnerability_status"`
					Tags   []struct {
						Name string `json:"name"`
					} `json:"tags"`
				} `json:"manifests"`
			}
			if err := flags.call(cmd, http.MethodGet, base, nil, &list); err != nil {
				return err
			}
			digest, status := "", ""
			for _, m := range list.Manifests {
				match := m.Digest == ref
				for _, t := range m.Tags {
					match = match || t.Name == ref
				}
				if match {
					digest, status = m.Digest, m.Status
				}
			}
			if digest == "" {
				return fmt.Errorf("%s/%s has no manifest %s: see `keppel tags %[1]s/%[2]s`", img.account, img.repository, ref)
			}
			var raw json.RawMessage
			if err := flags.call(cmd, http.MethodGet, base+"/"+digest+"/vulnerability_report", nil, &raw); err != nil {
				return fmt.Errorf("status %s; %w", status, err)
			}
			if f := formatOf(cmd); f != output.Table {
				return output.Write(cmd.OutOrStdout(), f, map[string]any{"digest": digest, "vulnerability_status": status, "report": raw}, nil)
			}
			return printVulnerabilities(cmd.OutOrStdout(), digest, status, raw)
		},
	}
	flags.register(cmd)
	cmd.ValidArgsFunction = completeRepositories(&flags)
	return cmd
}

// printVulnerabilities prints a builtin report as a table (other reports as
// they are).
func printVulnerabilities(w io.Writer, digest, status string, raw json.RawMessage) error {
	var r vulnerabilityReportJSON
	if err := json.Unmarshal(raw, &r); err != nil {
		_, err := fmt.Fprintf(w, "%s: %s\n%s\n", digest, status, raw)
		return err
	}
	fmt.Fprintf(w, "%s: %s\n", digest, status)
	if r.Unsupported != "" {
		_, err := fmt.Fprintf(w, "not scanned: %s\n", r.Unsupported)
		return err
	}
	osName := r.OS.PrettyName
	if osName == "" {
		osName = strings.TrimSpace(r.OS.ID + " " + r.OS.VersionID)
	}
	if r.EndOfLife {
		osName += " (end of life)"
	}
	fmt.Fprintf(w, "%s, %d packages, %d vulnerabilities\n", osName, r.Packages, len(r.Vulnerabilities))
	if len(r.Vulnerabilities) == 0 {
		return nil
	}
	tw := output.NewTable(w)
	fmt.Fprintln(tw, "ID\tSEVERITY\tPACKAGE\tINSTALLED\tFIXED\tSUMMARY")
	for _, v := range r.Vulnerabilities {
		fixed := v.FixedVersion
		if fixed == "" {
			fixed = "-"
		}
		summary := v.Summary
		if len(summary) > 60 {
			summary = summary[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Severity, v.Package, v.Version, fixed, summary)
	}
	return tw.Flush()
}
