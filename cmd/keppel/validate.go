package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"keppel/internal/cli/output"
)

func newValidateCommand() *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "validate IMAGE",
		Short: "Pull an image (or index) and check the digest of every manifest and blob",
		Long: `Pull the image, or every image of an index, from any OCI registry and check
that every manifest and blob has the digest that refers to it. Blobs are
streamed and not kept. On a replica account this also pulls everything into
the replica.

IMAGE is <host>/<repository>[:tag|@digest]. Registries on localhost and
loopback addresses are reached over plain HTTP; others only with --insecure.
Credentials come from KEPPEL_PASSWORD (as KEPPEL_USERNAME, by default
admin), or from the docker config, where ` + "`keppel login`" + ` and ` + "`docker login`" + `
store logins; without them the pull is anonymous.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts []name.Option
			if insecure || isLocalRegistry(args[0]) {
				opts = append(opts, name.Insecure)
			}
			ref, err := name.ParseReference(args[0], opts...)
			if err != nil {
				return fmt.Errorf("%q is no image reference: %w", args[0], err)
			}
			auth, err := validateAuth(ref.Context().Registry)
			if err != nil {
				return err
			}
			v := &validator{out: cmd.OutOrStdout(), opts: []remote.Option{remote.WithAuth(auth), remote.WithContext(cmd.Context())}}
			if formatOf(cmd) != output.Table {
				v.out = io.Discard // only the summary, as one document
			}
			if err := v.validate(ref); err != nil {
				return err
			}
			summary := struct {
				Image     string `json:"image"`
				Valid     bool   `json:"valid"`
				Manifests int64  `json:"manifests"`
				Blobs     int64  `json:"blobs"`
				Bytes     int64  `json:"blob_bytes"`
			}{ref.String(), true, v.manifests, v.blobs, v.bytes}
			return printResult(cmd, summary, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s is valid: %d manifests, %d blobs, %d bytes of blobs\n", ref, v.manifests, v.blobs, v.bytes)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to a registry that is not on loopback")
	return cmd
}

// isLocalRegistry reports whether the reference's host is localhost or a
// loopback address.
func isLocalRegistry(ref string) bool {
	host, _, ok := cutHost(ref)
	if !ok {
		return false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cutHost splits the registry host off an image reference.
func cutHost(ref string) (host, rest string, ok bool) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i], ref[i+1:], i > 0
		}
	}
	return "", ref, false
}

// validateAuth returns the credentials for the registry: from the
// environment, or the login stored for it in the docker config (by
// `keppel login` or `docker login`), or none.
func validateAuth(reg name.Registry) (authn.Authenticator, error) {
	if pw := os.Getenv("KEPPEL_PASSWORD"); pw != "" {
		// As for the management commands, the user is admin unless named.
		user := os.Getenv("KEPPEL_USERNAME")
		if user == "" {
			user = "admin"
		}
		return &authn.Basic{Username: user, Password: pw}, nil
	}
	auth, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		return nil, fmt.Errorf("reading the login for %s: %w (run `keppel login %[1]s` again)", reg.RegistryStr(), err)
	}
	return auth, nil
}

// validator pulls and checks an image or index, counting what it checked.
type validator struct {
	out                     io.Writer
	opts                    []remote.Option
	manifests, blobs, bytes int64
}

func (v *validator) validate(ref name.Reference) error {
	desc, err := remote.Get(ref, v.opts...)
	if err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	v.manifests++
	digestRef := ref.Context().Digest(desc.Digest.String())
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return fmt.Errorf("reading index %s: %w", digestRef, err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return fmt.Errorf("reading index %s: %w", digestRef, err)
		}
		for _, child := range m.Manifests {
			if err := v.validate(ref.Context().Digest(child.Digest.String())); err != nil {
				return err
			}
		}
		fmt.Fprintf(v.out, "%s: index of %d manifests is valid\n", digestRef, len(m.Manifests))
		return nil
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("reading image %s: %w", digestRef, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading image %s: %w", digestRef, err)
	}
	for _, blob := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if err := v.validateBlob(ref.Context(), blob); err != nil {
			return fmt.Errorf("image %s: %w", digestRef, err)
		}
	}
	fmt.Fprintf(v.out, "%s: image with %d layers is valid\n", digestRef, len(m.Layers))
	return nil
}

// validateBlob streams a blob and checks its digest and size (go-
// containerregistry verifies the digest while reading).
func (v *validator) validateBlob(repo name.Repository, d v1.Descriptor) error {
	if len(d.URLs) > 0 {
		return nil // foreign layers are not in the registry
	}
	layer, err := remote.Layer(repo.Digest(d.Digest.String()), v.opts...)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if n != d.Size {
		return fmt.Errorf("blob %s: %w: %d bytes, the manifest says %d", d.Digest, errSizeMismatch, n, d.Size)
	}
	v.blobs++
	v.bytes += n
	return nil
}

var errSizeMismatch = errors.New("size mismatch")
