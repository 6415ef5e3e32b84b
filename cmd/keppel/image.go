package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"

	"keppel/internal/cli/progress"
	"keppel/internal/cli/transfer"
)

// imageAuthHelp tells how the image commands find credentials and reach
// registries; it ends the long help of each.
const imageAuthHelp = `Registries on localhost and loopback addresses are reached over plain HTTP;
others only with --insecure. Credentials come from KEPPEL_PASSWORD (as
KEPPEL_USERNAME, by default admin; for the registry of --registry or
KEPPEL_REGISTRY_URL if one is given, else for every registry), else from the
docker config
($DOCKER_CONFIG/config.json, where ` + "`keppel login`" + ` and ` + "`docker login`" + ` store
logins); without them access is anonymous.

A progress line is shown on standard error when it is a terminal (not with
--quiet); standard output gets only the result.`

// imageFlags are the flags of the commands that move images.
type imageFlags struct {
	registry string
	insecure bool
	quiet    bool
}

func (f *imageFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.registry, "registry", "", "the registry that KEPPEL_USERNAME and KEPPEL_PASSWORD are for (env KEPPEL_REGISTRY_URL; default: every registry)")
	cmd.Flags().BoolVar(&f.insecure, "insecure", false, "allow plain HTTP to registries that are not on loopback")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "show no progress")
}

// parseRef parses an image reference; registries on loopback, and all with
// --insecure, are reached over plain HTTP.
func (f *imageFlags) parseRef(s string) (name.Reference, error) {
	var opts []name.Option
	if f.insecure || isLocalRegistry(s) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("%q is no image reference (want host/repository[:tag|@digest]): %w", s, err)
	}
	return ref, nil
}

// parseRepo parses a repository (host/repository, without tag or digest).
func (f *imageFlags) parseRepo(s string) (name.Repository, error) {
	var opts []name.Option
	if f.insecure || isLocalRegistry(s) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(s, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("%q is no repository (want host/repository, without tag or digest): %w", s, err)
	}
	return repo, nil
}

// options builds the transfer options: the credentials and, on a terminal
// without --quiet, a progress line labelled with what is done.
func (f *imageFlags) options(cmd *cobra.Command, label string) (transfer.Options, error) {
	keppelRegistry := f.registry
	if !cmd.Flags().Changed("registry") {
		keppelRegistry = os.Getenv("KEPPEL_REGISTRY_URL")
	}
	kc := imageKeychain{}
	if keppelRegistry != "" {
		if !strings.Contains(keppelRegistry, "://") {
			keppelRegistry = "http://" + keppelRegistry
		}
		u, err := url.Parse(keppelRegistry)
		if err != nil || u.Host == "" {
			return transfer.Options{}, fmt.Errorf("--registry %q is neither a URL nor a host", f.registry)
		}
		kc.keppelHost = u.Host
	}
	stderr := cmd.ErrOrStderr()
	return transfer.Options{
		Keychain: kc,
		Progress: progress.New(stderr, label, !f.quiet && progress.IsTerminal(stderr)),
	}, nil
}

// imageKeychain gives the Keppel credentials of the environment to the
// Keppel registry (every registry if none is named), as `keppel validate`
// does, and the docker config's logins to the others.
type imageKeychain struct {
	// keppelHost is the host that the environment's credentials are for;
	// empty for every host.
	keppelHost string
}

// Resolve implements authn.Keychain.
func (k imageKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if k.keppelHost != "" && res.RegistryStr() != k.keppelHost {
		auth, err := authn.DefaultKeychain.Resolve(res)
		if err != nil {
			return nil, fmt.Errorf("reading the login for %s: %w", res.RegistryStr(), err)
		}
		return auth, nil
	}
	reg, err := name.NewRegistry(res.RegistryStr())
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", res.RegistryStr(), err)
	}
	return validateAuth(reg)
}

// imageResult is what push, pull and copy print: with --output table the
// reference alone (repository@digest), for scripts.
type imageResult struct {
	// Reference is the repository with the digest written.
	Reference string `json:"reference"`
	// Digest is the digest of the manifest written.
	Digest string `json:"digest"`
}

// printImageResult prints what was written: the reference alone, or an
// object in the format of --output.
func printImageResult(cmd *cobra.Command, d name.Digest) error {
	r := imageResult{Reference: d.String(), Digest: d.DigestStr()}
	return printResult(cmd, r, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, r.Reference)
		return err
	})
}

// printImageResults prints what was written by a copy of several tags:
// one reference a line, or a list in the format of --output.
func printImageResults(cmd *cobra.Command, ds []name.Digest) error {
	results := make([]imageResult, 0, len(ds))
	for _, d := range ds {
		results = append(results, imageResult{Reference: d.String(), Digest: d.DigestStr()})
	}
	return printResult(cmd, results, func(w io.Writer) error {
		for _, r := range results {
			if _, err := fmt.Fprintln(w, r.Reference); err != nil {
				return err
			}
		}
		return nil
	})
}

// explainImageError adds to a registry's error what to do about it.
func explainImageError(err error, refs ...name.Reference) error {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return err
	}
	host := ""
	if terr.Request != nil && terr.Request.URL != nil {
		host = terr.Request.URL.Host
	}
	var ref name.Reference
	for _, r := range refs {
		if ref == nil || r.Context().RegistryStr() == host {
			ref = r
		}
	}
	if host == "" && ref != nil {
		host = ref.Context().RegistryStr()
	}
	account := ""
	if ref != nil {
		account, _, _ = strings.Cut(ref.Context().RepositoryStr(), "/")
	}
	switch {
	case terr.StatusCode == http.StatusUnauthorized || transportErrorHas(terr, transport.UnauthorizedErrorCode):
		return fmt.Errorf("%w\nlog in with `keppel login %s`, or set KEPPEL_USERNAME and KEPPEL_PASSWORD", err, host)
	case transportErrorHas(terr, transport.NameUnknownErrorCode):
		return fmt.Errorf("%w\nif the account %q does not exist, create it with `keppel account create %s --auth-tenant-id TENANT --registry %s`",
			err, account, account, host)
	case terr.StatusCode == http.StatusForbidden || transportErrorHas(terr, transport.DeniedErrorCode):
		return fmt.Errorf("%w\nthe user may not do this in %s: log in as another user with `keppel login %s`, or ask for a role in the account %q",
			err, ref.Context(), host, account)
	case transportErrorHas(terr, transport.ManifestUnknownErrorCode):
		return fmt.Errorf("%w\ncheck the tag or digest", err)
	}
	return err
}

func transportErrorHas(terr *transport.Error, code transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}
