package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"keppel/internal/cli/transfer"
)

func newPullCommand() *cobra.Command {
	var flags imageFlags
	var format, platform string
	cmd := &cobra.Command{
		Use:   "pull IMAGE DEST",
		Short: "Pull an image or index into an OCI image layout or a tarball",
		Long: `Pull reads IMAGE (host/repository[:tag|@digest]) and writes it to DEST, then
prints IMAGE's repository with the digest written (host/repository@sha256:…).

--format oci (the default) writes an OCI image layout directory: DEST is
created, or added to if it is a layout already (an entry of the same image
name is replaced). An index is written whole with all its images, unless
--platform chooses one image.

--format tarball writes a tarball as ` + "`docker save`" + ` does, for ` + "`docker load`" + `. It holds
one image: of an index, the one for --platform (default linux on this
machine's architecture, as docker pull takes). DEST is written completely or
not at all.

` + imageAuthHelp,
		Example: `  keppel pull 127.0.0.1:5000/library/app:v1 ./app-layout
  keppel pull 127.0.0.1:5000/library/app:v1 app.tar --format tarball --platform linux/arm64`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := transfer.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			p, err := transfer.ParsePlatform(platform)
			if err != nil {
				return fmt.Errorf("--platform: %w", err)
			}
			if f == transfer.FormatTarball && platform == "" {
				p = transfer.DefaultTarballPlatform()
			}
			src, err := flags.parseRef(args[0])
			if err != nil {
				return err
			}
			o, err := flags.options(cmd, "pull "+src.Context().String())
			if err != nil {
				return err
			}
			defer o.Progress.Finish()
			d, err := transfer.Pull(cmd.Context(), src, args[1], f, p, o)
			o.Progress.Finish()
			if err != nil {
				return explainImageError(err, src)
			}
			return printImageResult(cmd, d)
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&format, "format", string(transfer.FormatOCI), "what to write: oci (an OCI image layout directory) or tarball (docker save)")
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] of the image to take from an index, or all (default: all for oci, linux/<this machine's arch> for tarball)")
	return cmd
}
