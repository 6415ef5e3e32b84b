package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"keppel/internal/cli/credentials"
)

// defaultRegistry is the registry that client commands talk to when
// neither flags, environment nor a stored login say otherwise.
const defaultRegistry = "http://127.0.0.1:5000"

// registryURL turns what the user gave as a registry (a URL, or a host as
// docker takes it) into a URL: hosts on loopback get plain HTTP, others
// HTTPS.
func registryURL(arg string) (string, error) {
	arg = strings.TrimSuffix(arg, "/")
	if !strings.Contains(arg, "://") {
		scheme := "https://"
		if isLocalRegistry(arg + "/") {
			scheme = "http://"
		}
		arg = scheme + arg
	}
	u, err := url.Parse(arg)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("%q is not a registry: give its URL (https://registry.example) or host (127.0.0.1:5000)", arg)
	}
	return u.Scheme + "://" + u.Host, nil
}

// registryAndHost returns the registry's URL and the host under which its
// login is stored.
func registryAndHost(arg string) (registry, host string, err error) {
	if registry, err = registryURL(arg); err != nil {
		return "", "", err
	}
	if host, err = credentials.Host(registry); err != nil {
		return "", "", err
	}
	return registry, host, nil
}

// client talks to the management API as one user.
type client struct {
	registry, username, password string
	// in is standard input, shared by everything that reads lines from it
	// (the caller's password first, then what the command asks for).
	in *bufio.Reader
}

// client resolves where and as whom to talk: flags and environment first,
// then the stored login (the docker config's login for the registry's
// host), then the defaults.
func (f *clientFlags) client(cmd *cobra.Command) (*client, error) {
	c := &client{in: bufio.NewReader(cmd.InOrStdin())}
	registry := defaultRegistry
	switch env := os.Getenv("KEPPEL_REGISTRY_URL"); {
	case cmd.Flags().Changed("registry"):
		registry = f.registry
	case env != "":
		registry = env
	default:
		stored, err := credentials.DefaultRegistry()
		if err != nil {
			return nil, err
		}
		if stored != "" {
			registry = stored
		}
	}
	var err error
	if c.registry, err = registryURL(registry); err != nil {
		return nil, fmt.Errorf("--registry: %w", err)
	}

	userGiven := cmd.Flags().Changed("username") || os.Getenv("KEPPEL_USERNAME") != ""
	c.username = f.username
	switch env := os.Getenv("KEPPEL_PASSWORD"); {
	case f.passwordStdin:
		if c.password, err = c.readLine("password"); err != nil {
			return nil, err
		}
		return c, nil
	case env != "":
		c.password = env
		return c, nil
	}
	host, err := credentials.Host(c.registry)
	if err != nil {
		return nil, err
	}
	stored, found, err := credentials.Lookup(host)
	if err != nil {
		return nil, err
	}
	// A stored login is used as the user it belongs to, never with the
	// password of another user name.
	if !found || (userGiven && stored.Username != c.username) {
		return nil, fmt.Errorf("no password for %s at %s: run `keppel login %s`, set KEPPEL_PASSWORD, or use --password-stdin", c.username, host, host)
	}
	c.username, c.password = stored.Username, stored.Password
	return c, nil
}

// readLine reads the next line of standard input.
func (c *client) readLine(what string) (string, error) {
	line, err := c.in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the %s: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no %s on standard input", what)
	}
	return line, nil
}

// do sends a management API request and decodes the JSON answer into out
// (if not nil). It returns the status code of a successful request.
func (c *client) do(cmd *cobra.Command, method, path string, body, out any) (int, error) {
	var reader io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encoding request: %w", err)
		}
		reader = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(c.registry, "/")+path, reader)
	if err != nil {
		return 0, fmt.Errorf("building request: %w", err)
	}
	req.SetBasicAuth(c.username, c.password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		var env struct {
			Errors []struct{ Code, Message string } `json:"errors"`
		}
		if json.Unmarshal(respBody, &env) == nil && len(env.Errors) > 0 {
			return 0, fmt.Errorf("%s %s: %s: %s", method, path, env.Errors[0].Code, env.Errors[0].Message)
		}
		return 0, fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(respBody, out); err != nil {
			return 0, fmt.Errorf("decoding response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// call is like clientFlags.do, with the stored login as a fallback.
func (f *clientFlags) call(cmd *cobra.Command, method, path string, body, out any) error {
	c, err := f.client(cmd)
	if err != nil {
		return err
	}
	_, err = c.do(cmd, method, path, body, out)
	return err
}

func newLoginCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "login [REGISTRY]",
		Short: "Check a user name and password and store them for keppel, docker, podman and crane",
		Long: `Login checks the user name and password (or API key) with the registry and
stores them the way docker login does: in the docker config
($DOCKER_CONFIG/config.json, by default ~/.docker/config.json, readable only
by you), or through the credential helper that file names. docker, podman,
crane and the other OCI clients find the login there too. The registry also
becomes the default of the keppel client commands.

REGISTRY is a URL or a host (127.0.0.1:5000; hosts on loopback are reached
over plain HTTP, others over HTTPS); without it, --registry or
KEPPEL_REGISTRY_URL. The password comes from KEPPEL_PASSWORD, or standard
input (--password-stdin, or typed when asked).`,
		Example: `  keppel login 127.0.0.1:5000 --username admin
  echo "$PASSWORD" | keppel login registry.example --username ci --password-stdin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			registry := flags.registry
			if len(args) == 1 {
				registry = args[0]
			}
			registry, host, err := registryAndHost(registry)
			if err != nil {
				return err
			}
			c := &client{registry: registry, username: flags.username, in: bufio.NewReader(cmd.InOrStdin())}
			if env := os.Getenv("KEPPEL_PASSWORD"); env != "" && !flags.passwordStdin {
				c.password = env
			} else {
				if f, ok := cmd.InOrStdin().(*os.File); ok && !flags.passwordStdin {
					if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
						fmt.Fprint(cmd.ErrOrStderr(), "Password (it will be echoed): ")
					}
				}
				if c.password, err = c.readLine("password"); err != nil {
					return fmt.Errorf("%w: set KEPPEL_PASSWORD or pipe it in with --password-stdin", err)
				}
			}
			if _, err := c.do(cmd, http.MethodGet, "/keppel/v1/auth", nil, nil); err != nil {
				return fmt.Errorf("login failed: %w", err)
			}
			where, err := credentials.Store(host, credentials.Login{Username: c.username, Password: c.password})
			if err != nil {
				return err
			}
			if err := credentials.SetDefaultRegistry(registry); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s (login stored in %s)\n", registry, c.username, where)
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func newLogoutCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "logout [REGISTRY]",
		Short: "Remove the stored login for a registry",
		Long: `Logout removes the login for the registry (default: the registry logged in
to last) from the docker config or its credential helper.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			registry := flags.registry
			if len(args) == 1 {
				registry = args[0]
			} else if !cmd.Flags().Changed("registry") && os.Getenv("KEPPEL_REGISTRY_URL") == "" {
				stored, err := credentials.DefaultRegistry()
				if err != nil {
					return err
				}
				if stored != "" {
					registry = stored
				}
			}
			registry, host, err := registryAndHost(registry)
			if err != nil {
				return err
			}
			found, err := credentials.Erase(host)
			if err != nil {
				return err
			}
			if stored, err := credentials.DefaultRegistry(); err == nil && stored == registry {
				if err := credentials.SetDefaultRegistry(""); err != nil {
					return err
				}
			}
			if !found {
				fmt.Fprintf(cmd.OutOrStdout(), "not logged in to %s\n", host)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged out of %s\n", host)
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}
