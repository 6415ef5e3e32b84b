package main

import (
	"github.com/spf13/cobra"

	"keppel/internal/cli/transfer"
)

func newPushCommand() *cobra.Command {
	var flags imageFlags
	var tmpDir string
	cmd := &cobra.Command{
		Use:   "push SOURCE IMAGE",
		Short: "Push an image or index from an OCI image layout or a tarball",
		Long: `Push reads SOURCE and pushes it to IMAGE (host/repository[:tag]), then prints
IMAGE's repository with the digest pushed (host/repository@sha256:…).

SOURCE is one of:
  - an OCI image layout directory (index.json, oci-layout and blobs/), as
    ` + "`keppel pull`" + `, crane, skopeo and docker buildx write. If its index.json
    lists one image or index, that is pushed; if it lists several, index.json
    itself is pushed as an index of them all (like ` + "`crane push --index`" + `).
  - a tar file of such a layout, which ` + "`docker save`" + ` writes since Docker 25;
    it is unpacked into a temporary directory (--tmp-dir) first.
  - an older ` + "`docker save`" + ` tarball (manifest.json) of one image; its
    layers are compressed with gzip on the way, as docker push does.
Manifests from a layout are pushed as they are, so digests stay the same.

` + imageAuthHelp,
		Example: `  keppel push ./app-layout 127.0.0.1:5000/library/app:v1
  docker save app:v1 -o app.tar && keppel push app.tar 127.0.0.1:5000/library/app:v1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst, err := flags.parseRef(args[1])
			if err != nil {
				return err
			}
			o, err := flags.options(cmd, "push "+dst.Context().String())
			if err != nil {
				return err
			}
			defer o.Progress.Finish()
			src, err := transfer.Open(args[0], tmpDir)
			if err != nil {
				return err
			}
			defer src.Close()
			d, err := transfer.Push(cmd.Context(), src, dst, o)
			o.Progress.Finish()
			if err != nil {
				return explainImageError(err, dst)
			}
			return printImageResult(cmd, d)
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&tmpDir, "tmp-dir", "", "where a tarred layout is unpacked (default: the system's temporary directory)")
	return cmd
}
