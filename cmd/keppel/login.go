package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultRegistry is the registry that client commands talk to when
// neither flags, environment nor a stored login say otherwise.
const defaultRegistry = "http://127.0.0.1:5000"

// storedLogin is what `keppel login` keeps in the user's config directory
// (a file only the user can read), for the client commands to fall back on.
type storedLogin struct {
	Registry string `json:"registry"`
	Username string `json:"username"`
	Password string `json:"password"`
}

func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(dir, "keppel", "credentials.json"), nil
}

// loadLogin reads the stored login; found is false if there is none.
func loadLogin() (l storedLogin, found bool, err error) {
	path, err := credentialsPath()
	if err != nil {
		return l, false, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("reading the stored login: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return l, false, fmt.Errorf("reading the stored login: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return l, false, fmt.Errorf("%s is accessible by other users: run `chmod 600 %s` or `keppel login` again", path, path)
	}
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&l); err != nil {
		return l, false, fmt.Errorf("reading the stored login %s: %w", path, err)
	}
	return l, true, nil
}

// saveLogin writes the login to a new file with mode 0600 and moves it into
// place, so that the credentials are never readable by others, not even
// for a moment.
func saveLogin(l storedLogin) (string, error) {
	path, err := credentialsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("storing the login: %w", err)
	}
	body, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", fmt.Errorf("storing the login: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.json")
	if err != nil {
		return "", fmt.Errorf("storing the login: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("storing the login: %w", err)
	}
	if _, err := tmp.Write(append(body, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("storing the login: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("storing the login: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("storing the login: %w", err)
	}
	return path, nil
}

// sameRegistry compares registry URLs, ignoring a trailing slash.
func sameRegistry(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

// client talks to the management API as one user.
type client struct {
	registry, username, password string
	// in is standard input, shared by everything that reads lines from it
	// (the caller's password first, then what the command asks for).
	in *bufio.Reader
}

// client resolves where and as whom to talk: flags and environment first,
// then the stored login, then the defaults. The stored password is only
// ever sent to the registry it was stored for, as the user it belongs to.
func (f *clientFlags) client(cmd *cobra.Command) (*client, error) {
	c := &client{in: bufio.NewReader(cmd.InOrStdin())}
	stored, haveStored, storedErr := loadLogin()
	useStored := func() (bool, error) { return haveStored, storedErr }

	c.registry = defaultRegistry
	switch env := os.Getenv("KEPPEL_REGISTRY_URL"); {
	case cmd.Flags().Changed("registry"):
		c.registry = f.registry
	case env != "":
		c.registry = env
	default:
		ok, err := useStored()
		if err != nil {
			return nil, err
		}
		if ok {
			c.registry = stored.Registry
		}
	}
	base, err := url.Parse(c.registry)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("--registry %q must be an http(s) URL", c.registry)
	}
	haveStored = haveStored && sameRegistry(c.registry, stored.Registry)

	c.username = "admin"
	switch env := os.Getenv("KEPPEL_USERNAME"); {
	case cmd.Flags().Changed("username"):
		c.username = f.username
	case env != "":
		c.username = env
	default:
		ok, err := useStored()
		if err != nil {
			return nil, err
		}
		if ok {
			c.username = stored.Username
		}
	}
	haveStored = haveStored && c.username == stored.Username

	switch env := os.Getenv("KEPPEL_PASSWORD"); {
	case f.passwordStdin:
		if c.password, err = c.readLine("password"); err != nil {
			return nil, err
		}
	case env != "":
		c.password = env
	default:
		ok, err := useStored()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errors.New("no password: set KEPPEL_PASSWORD, use --password-stdin, or run `keppel login`")
		}
		c.password = stored.Password
	}
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

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLoginCommand() *cobra.Command {
	var flags clientFlags
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Check credentials and store them for the other client commands",
		Long: `Login checks the user name and password (or API key) with the registry and
stores them in keppel/credentials.json in the user's config directory, readable
only by the user. The password comes from KEPPEL_PASSWORD or standard input.
Client commands use the stored login when flags and environment do not say
otherwise, and only for the registry it was stored for.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			registry := strings.TrimSuffix(flags.registry, "/")
			base, err := url.Parse(registry)
			if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
				return fmt.Errorf("--registry %q must be an http(s) URL", flags.registry)
			}
			c := &client{registry: registry, username: flags.username, in: bufio.NewReader(cmd.InOrStdin())}
			if env := os.Getenv("KEPPEL_PASSWORD"); env != "" && !flags.passwordStdin {
				c.password = env
			} else {
				if f, ok := cmd.InOrStdin().(*os.File); ok {
					if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
						fmt.Fprint(cmd.ErrOrStderr(), "Password (it will be echoed): ")
					}
				}
				if c.password, err = c.readLine("password"); err != nil {
					return err
				}
			}
			if _, err := c.do(cmd, http.MethodGet, "/keppel/v1/auth", nil, nil); err != nil {
				return fmt.Errorf("login failed: %w", err)
			}
			path, err := saveLogin(storedLogin{Registry: registry, Username: c.username, Password: c.password})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s (credentials stored in %s)\n", registry, c.username, path)
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Remove the stored login",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := credentialsPath()
			if err != nil {
				return err
			}
			err = os.Remove(path)
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(cmd.OutOrStdout(), "not logged in")
				return nil
			}
			if err != nil {
				return fmt.Errorf("removing the stored login: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "logged out")
			return nil
		},
	}
}
