package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

// manifestView is the part of an image manifest or index that the table
// shows.
type manifestView struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layers"`
	Manifests []struct {
		MediaType    string `json:"mediaType"`
		Digest       string `json:"digest"`
		Size         int64  `json:"size"`
		ArtifactType string `json:"artifactType"`
		Platform     *struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
			Variant      string `json:"variant"`
		} `json:"platform"`
	} `json:"manifests"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
}

func newManifestCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "manifest [HOST/]ACCOUNT/REPOSITORY[:TAG|@DIGEST]",
		Short: "Show a manifest: its layers, or an index's platforms (-o json prints it byte for byte)",
		Long: `manifest fetches a manifest through the registry API. The table shows the
digest, media type and size, then the config and layers of an image, or the
manifests of an index with their platforms. --output json prints the
manifest exactly as stored (its SHA-256 is the digest); yaml converts it.`,
		Example: `  keppel manifest library/alpine:3.20
  keppel manifest library/alpine:3.20 -o json | jq .`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := parseImageArg(args[0], "latest")
			if err != nil {
				return err
			}
			if err := img.useHost(cmd); err != nil {
				return err
			}
			c, err := flags.client(cmd)
			if err != nil {
				return err
			}
			host, err := registryHostOf(c.registry)
			if err != nil {
				return err
			}
			var opts []name.Option
			if strings.HasPrefix(c.registry, "http://") {
				opts = append(opts, name.Insecure)
			}
			sep := ":"
			if img.digest != "" {
				sep = "@"
			}
			ref, err := name.ParseReference(host+"/"+img.account+"/"+img.repository+sep+img.reference(), opts...)
			if err != nil {
				return fmt.Errorf("%q is no image reference: %w", args[0], err)
			}
			desc, err := remote.Get(ref, remote.WithContext(cmd.Context()), remote.WithAuth(&authn.Basic{Username: c.username, Password: c.password}))
			if err != nil {
				return fmt.Errorf("fetching %s: %w", img, err)
			}
			w := cmd.OutOrStdout()
			switch formatOf(cmd) {
			case output.JSON:
				_, err := w.Write(append(desc.Manifest, '\n'))
				return err
			case output.YAML:
				return output.Write(w, output.YAML, json.RawMessage(desc.Manifest), nil)
			}
			var m manifestView
			if err := json.Unmarshal(desc.Manifest, &m); err != nil {
				return fmt.Errorf("decoding the manifest of %s: %w", img, err)
			}
			return printManifest(w, desc.Digest.String(), string(desc.MediaType), desc.Size, m)
		},
	}
	flags.register(cmd)
	cmd.ValidArgsFunction = completeRepositories(&flags)
	return cmd
}

func printManifest(w io.Writer, digest, mediaType string, size int64, m manifestView) error {
	tw := output.NewTable(w)
	output.Row(tw, "digest:", digest)
	output.Row(tw, "media type:", mediaType)
	output.Row(tw, "size:", strconv.FormatInt(size, 10)+" bytes")
	if m.ArtifactType != "" {
		output.Row(tw, "artifact type:", m.ArtifactType)
	}
	if m.Subject != nil {
		output.Row(tw, "subject:", m.Subject.Digest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = output.NewTable(w)
	if m.Config != nil {
		output.Row(tw, "KIND", "DIGEST", "SIZE", "MEDIA TYPE")
		output.Row(tw, "config", m.Config.Digest, sizeText(m.Config.Size), m.Config.MediaType)
		for i, l := range m.Layers {
			output.Row(tw, "layer "+strconv.Itoa(i+1), l.Digest, sizeText(l.Size), l.MediaType)
		}
	} else {
		output.Row(tw, "PLATFORM", "DIGEST", "SIZE", "MEDIA TYPE")
		for _, c := range m.Manifests {
			platform := "-"
			if p := c.Platform; p != nil {
				platform = p.OS + "/" + p.Architecture
				if p.Variant != "" {
					platform += "/" + p.Variant
				}
			} else if c.ArtifactType != "" {
				platform = c.ArtifactType
			}
			output.Row(tw, platform, c.Digest, sizeText(c.Size), c.MediaType)
		}
	}
	return tw.Flush()
}

// registryHostOf returns the host (and port) of a registry URL.
func registryHostOf(registry string) (string, error) {
	u, err := registryURL(registry)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://"), nil
}
