package main

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"keppel/internal/cli/transfer"
)

func newCopyCommand() *cobra.Command {
	var flags imageFlags
	var platform string
	var allTags bool
	cmd := &cobra.Command{
		Use:     "copy SRC DST",
		Aliases: []string{"cp"},
		Short:   "Copy an image or index from one registry to another",
		Long: `Copy reads SRC and writes it to DST (both host/repository[:tag|@digest]), then
prints DST's repository with the digest written (host/repository@sha256:…).

With --platform all (the default) an index is copied whole, with every image
and blob, and keeps its digest. With --platform os/arch[/variant] only that
image of the index is copied: DST gets the image manifest, not an index
(as ` + "`crane copy --platform`" + ` does). A platform the index lacks is an error that
lists those it has.

Blobs stream from registry to registry without being stored locally; when
both are on the same registry, blobs are mounted instead of copied where
the registry allows it (within one Keppel account).

With --all-tags, SRC and DST are repositories and every tag of SRC is copied
to the same tag in DST; one line per tag is printed.

` + imageAuthHelp,
		Example: `  keppel copy registry-a.example/library/app:v1 127.0.0.1:5000/library/app:v1
  keppel copy 127.0.0.1:5000/library/app:v1 127.0.0.1:5000/library/app-arm:v1 --platform linux/arm64
  keppel copy --all-tags registry-a.example/library/app 127.0.0.1:5000/library/app`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := transfer.ParsePlatform(platform)
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			if allTags {
				return copyAllTags(cmd, &flags, p, args[0], args[1])
			}
			src, err := flags.parseRef(args[0])
			if err != nil {
				return err
			}
			dst, err := flags.parseRef(args[1])
			if err != nil {
				return err
			}
			o, err := flags.options(cmd, "copy to "+dst.Context().String())
			if err != nil {
				return err
			}
			defer o.Progress.Finish()
			d, err := transfer.Copy(cmd.Context(), src, dst, p, o)
			o.Progress.Finish()
			if err != nil {
				return explainImageError(err, src, dst)
			}
			return printImageResult(cmd, d)
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&platform, "platform", transfer.AllPlatforms, "os/arch[/variant] of the one image to copy from an index, or all")
	cmd.Flags().BoolVarP(&allTags, "all-tags", "a", false, "copy every tag of the repository SRC to the repository DST")
	return cmd
}

// copyAllTags copies every tag of the repository src to the repository dst
// and prints a line for each tag copied.
func copyAllTags(cmd *cobra.Command, flags *imageFlags, p *v1.Platform, src, dst string) error {
	srcRepo, err := flags.parseRepo(src)
	if err != nil {
		return err
	}
	dstRepo, err := flags.parseRepo(dst)
	if err != nil {
		return err
	}
	o, err := flags.options(cmd, "copy to "+dstRepo.String())
	if err != nil {
		return err
	}
	defer o.Progress.Finish()
	ds, err := transfer.CopyTags(cmd.Context(), srcRepo, dstRepo, p, o)
	o.Progress.Finish()
	if len(ds) > 0 {
		if perr := printImageResults(cmd, ds); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return explainImageError(err, srcRepo.Tag("latest"), dstRepo.Tag("latest"))
	}
	return nil
}
