package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

// maxPages bounds the pages a listing follows (1000 items each).
const maxPages = 10000

type repositoryJSON struct {
	Name          string `json:"name"`
	ManifestCount int64  `json:"manifest_count"`
	TagCount      int64  `json:"tag_count"`
	SizeBytes     int64  `json:"size_bytes"`
	PushedAt      *int64 `json:"pushed_at,omitempty"`
}

type tagJSON struct {
	Name         string `json:"name"`
	PushedAt     int64  `json:"pushed_at"`
	LastPulledAt *int64 `json:"last_pulled_at"`
}

type manifestJSON struct {
	Digest              string    `json:"digest"`
	MediaType           string    `json:"media_type"`
	SizeBytes           int64     `json:"size_bytes"`
	PushedAt            int64     `json:"pushed_at"`
	LastPulledAt        *int64    `json:"last_pulled_at"`
	Tags                []tagJSON `json:"tags,omitempty"`
	ArtifactType        string    `json:"artifact_type,omitempty"`
	SubjectDigest       string    `json:"subject_digest,omitempty"`
	VulnerabilityStatus string    `json:"vulnerability_status,omitempty"`
}

// listAll follows the marker pagination of a management API listing;
// page decodes one page and returns the marker of its last item and
// whether more follow.
func listAll(cmd *cobra.Command, flags *clientFlags, path string, page func(c *client, query string) (marker string, more bool, err error)) error {
	c, err := flags.client(cmd)
	if err != nil {
		return err
	}
	marker := ""
	for range maxPages {
		query := path
		if marker != "" {
			query += "?marker=" + url.QueryEscape(marker)
		}
		next, more, err := page(c, query)
		if err != nil {
			return err
		}
		if !more || next == "" {
			return nil
		}
		marker = next
	}
	return fmt.Errorf("listing %s: more than %d pages", path, maxPages)
}

// listRepositories returns the account's repositories, each as the API
// sent it (for --output json and yaml) and decoded (for tables).
func listRepositories(cmd *cobra.Command, flags *clientFlags, account string) (raw []json.RawMessage, repos []repositoryJSON, err error) {
	err = listAll(cmd, flags, accountPath(account)+"/repositories", func(c *client, query string) (string, bool, error) {
		var page struct {
			Repositories []json.RawMessage `json:"repositories"`
			Truncated    bool              `json:"truncated"`
		}
		if _, err := c.do(cmd, http.MethodGet, query, nil, &page); err != nil {
			return "", false, err
		}
		for _, r := range page.Repositories {
			var repo repositoryJSON
			if err := json.Unmarshal(r, &repo); err != nil {
				return "", false, fmt.Errorf("decoding a repository of account %s: %w", account, err)
			}
			raw, repos = append(raw, r), append(repos, repo)
		}
		if len(page.Repositories) == 0 {
			return "", false, nil
		}
		return repos[len(repos)-1].Name, page.Truncated, nil
	})
	return raw, repos, err
}

// listManifests returns the repository's manifests, each as the API sent
// it and decoded.
func listManifests(cmd *cobra.Command, flags *clientFlags, img imageArg) (raw []json.RawMessage, manifests []manifestJSON, err error) {
	err = listAll(cmd, flags, img.repositoryPath()+"/_manifests", func(c *client, query string) (string, bool, error) {
		var page struct {
			Manifests []json.RawMessage `json:"manifests"`
			Truncated bool              `json:"truncated"`
		}
		if _, err := c.do(cmd, http.MethodGet, query, nil, &page); err != nil {
			return "", false, err
		}
		for _, r := range page.Manifests {
			var m manifestJSON
			if err := json.Unmarshal(r, &m); err != nil {
				return "", false, fmt.Errorf("decoding a manifest of %s: %w", img, err)
			}
			raw, manifests = append(raw, r), append(manifests, m)
		}
		if len(page.Manifests) == 0 {
			return "", false, nil
		}
		return manifests[len(manifests)-1].Digest, page.Truncated, nil
	})
	return raw, manifests, err
}

func listAccounts(cmd *cobra.Command, flags *clientFlags) ([]accountJSON, error) {
	var out struct {
		Accounts []accountJSON `json:"accounts"`
	}
	if err := flags.call(cmd, http.MethodGet, "/keppel/v1/accounts", nil, &out); err != nil {
		return nil, err
	}
	return out.Accounts, nil
}

// timeText shows a Unix time in UTC, or "-".
func timeText(t *int64) string {
	if t == nil || *t == 0 {
		return "-"
	}
	return time.Unix(*t, 0).UTC().Format("2006-01-02 15:04:05")
}

// shortDigest shortens a digest for tables, as docker shows image IDs.
func shortDigest(d string) string {
	if algo, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	return d
}

func sizeText(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

func newLsCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "ls [ACCOUNT[/REPOSITORY]]",
		Short: "List accounts, the repositories of an account, or the manifests of a repository",
		Long: `ls lists what you may see, one level at a time:

  keppel ls                      the accounts
  keppel ls ACCOUNT              the account's repositories, with counts and sizes
  keppel ls ACCOUNT/REPOSITORY   the repository's manifests, with their tags

Add --output json or yaml for the complete records of the management API.`,
		Example: `  keppel ls library
  keppel ls library/alpine -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				accounts, err := listAccounts(cmd, &flags)
				if err != nil {
					return err
				}
				return printResult(cmd, accounts, func(w io.Writer) error {
					output.Row(w, "ACCOUNT", "AUTH TENANT", "STATE")
					for _, a := range accounts {
						output.Row(w, a.Name, a.AuthTenantID, orText(a.State, "active"))
					}
					return nil
				})
			}
			arg := args[0]
			if first, _, ok := strings.Cut(arg, "/"); ok && looksLikeHost(first) {
				return fmt.Errorf("%q: ls works on the registry of --registry; give ACCOUNT or ACCOUNT/REPOSITORY", arg)
			}
			account, repo, isRepo := strings.Cut(strings.TrimSuffix(arg, "/"), "/")
			if !isRepo {
				raw, repos, err := listRepositories(cmd, &flags, account)
				if err != nil {
					return err
				}
				return printResult(cmd, orEmpty(raw), func(w io.Writer) error { return repositoryTable(w, account, repos) })
			}
			img := imageArg{account: account, repository: repo}
			raw, manifests, err := listManifests(cmd, &flags, img)
			if err != nil {
				return err
			}
			return printResult(cmd, orEmpty(raw), func(w io.Writer) error {
				output.Row(w, "DIGEST", "TAGS", "TYPE", "SIZE", "PUSHED", "LAST PULLED", "VULNERABILITIES")
				for _, m := range manifests {
					tags := make([]string, 0, len(m.Tags))
					for _, t := range m.Tags {
						tags = append(tags, t.Name)
					}
					output.Row(w, shortDigest(m.Digest), orText(strings.Join(tags, ","), "-"), manifestKind(m.MediaType, m.ArtifactType),
						sizeText(m.SizeBytes), timeText(&m.PushedAt), timeText(m.LastPulledAt), orText(m.VulnerabilityStatus, "-"))
				}
				return nil
			})
		},
	}
	flags.register(cmd)
	cmd.ValidArgsFunction = completeRepositories(&flags)
	return cmd
}

func repositoryTable(w io.Writer, account string, repos []repositoryJSON) error {
	output.Row(w, "REPOSITORY", "MANIFESTS", "TAGS", "SIZE", "PUSHED")
	for _, r := range repos {
		output.Row(w, account+"/"+r.Name, strconv.FormatInt(r.ManifestCount, 10), strconv.FormatInt(r.TagCount, 10), sizeText(r.SizeBytes), timeText(r.PushedAt))
	}
	return nil
}

// manifestKind names a manifest's kind for tables.
func manifestKind(mediaType, artifactType string) string {
	switch {
	case strings.Contains(mediaType, "index") || strings.Contains(mediaType, "manifest.list"):
		return "index"
	case artifactType == "" || artifactType == "application/vnd.oci.image.config.v1+json" ||
		artifactType == "application/vnd.docker.container.image.v1+json":
		return "image"
	default:
		return artifactType
	}
}

// orEmpty makes a nil listing print as an empty list, not null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func orText(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func newCatalogCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "catalog [ACCOUNT...]",
		Short: "List every repository you may see (of the given accounts, or of all accounts)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			accounts := args
			if len(accounts) == 0 {
				all, err := listAccounts(cmd, &flags)
				if err != nil {
					return err
				}
				for _, a := range all {
					accounts = append(accounts, a.Name)
				}
			}
			type entry struct {
				Account string `json:"account"`
				repositoryJSON
			}
			var entries []entry
			for _, account := range accounts {
				_, repos, err := listRepositories(cmd, &flags, account)
				if err != nil {
					return fmt.Errorf("account %s: %w", account, err)
				}
				for _, r := range repos {
					entries = append(entries, entry{account, r})
				}
			}
			if entries == nil {
				entries = []entry{}
			}
			return printResult(cmd, entries, func(w io.Writer) error {
				output.Row(w, "REPOSITORY", "MANIFESTS", "TAGS", "SIZE", "PUSHED")
				for _, e := range entries {
					output.Row(w, e.Account+"/"+e.Name, strconv.FormatInt(e.ManifestCount, 10), strconv.FormatInt(e.TagCount, 10), sizeText(e.SizeBytes), timeText(e.PushedAt))
				}
				return nil
			})
		},
	}
	flags.register(cmd)
	cmd.ValidArgsFunction = completeAccounts(&flags)
	return cmd
}

func newTagsCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "tags [HOST/]ACCOUNT/REPOSITORY",
		Short: "List the tags of a repository with the digests they point at",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := parseImageArg(args[0], "")
			if err != nil {
				return err
			}
			if img.tag != "" || img.digest != "" {
				return fmt.Errorf("%q: give a repository, without a tag or digest", args[0])
			}
			if err := img.useHost(cmd); err != nil {
				return err
			}
			_, manifests, err := listManifests(cmd, &flags, img)
			if err != nil {
				return err
			}
			type entry struct {
				tagJSON
				Digest string `json:"digest"`
			}
			entries := []entry{}
			for _, m := range manifests {
				for _, t := range m.Tags {
					entries = append(entries, entry{t, m.Digest})
				}
			}
			sortTags(entries, func(e entry) string { return e.Name })
			return printResult(cmd, entries, func(w io.Writer) error {
				output.Row(w, "TAG", "DIGEST", "PUSHED", "LAST PULLED")
				for _, e := range entries {
					output.Row(w, e.Name, e.Digest, timeText(&e.PushedAt), timeText(e.LastPulledAt))
				}
				return nil
			})
		},
	}
	flags.register(cmd)
	cmd.ValidArgsFunction = completeRepositories(&flags)
	return cmd
}

func newDeleteCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "delete [HOST/]ACCOUNT/REPOSITORY(:TAG|@DIGEST)",
		Short: "Delete a tag (the manifest stays), or a manifest by digest (with its tags)",
		Long: `delete removes a tag, keeping the manifest it points at, or, given a digest,
the manifest together with all its tags. Tag policies may forbid either; an
index still referring to a manifest keeps it. Deleted content is freed by
garbage collection in the background.`,
		Example: `  keppel delete library/app:old
  keppel delete library/app@sha256:…`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := parseImageArg(args[0], "")
			if err != nil {
				return err
			}
			if img.tag == "" && img.digest == "" {
				return fmt.Errorf("%q: say what to delete, ACCOUNT/REPOSITORY:TAG or ACCOUNT/REPOSITORY@DIGEST", args[0])
			}
			if err := img.useHost(cmd); err != nil {
				return err
			}
			path, what := img.repositoryPath()+"/_tags/"+url.PathEscape(img.tag), "tag"
			if img.digest != "" {
				path, what = img.repositoryPath()+"/_manifests/"+url.PathEscape(img.digest), "manifest"
			}
			if err := flags.call(cmd, http.MethodDelete, path, nil, nil); err != nil {
				return err
			}
			result := map[string]string{"deleted": what, "image": img.String()}
			return printResult(cmd, result, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted %s %s\n", what, img)
				return err
			})
		},
	}
	flags.register(cmd)
	cmd.ValidArgsFunction = completeRepositories(&flags)
	return cmd
}
