// Package credentials keeps the logins of the keppel client commands where
// docker, podman, crane and the other OCI clients keep theirs: in the docker
// config file ($DOCKER_CONFIG/config.json, by default ~/.docker/config.json),
// through the credential helper that file names, if any. One login thus
// serves every client on the machine.
//
// Besides that, the package remembers the URL of the registry that was
// logged in to last (with its scheme, which the docker config does not
// keep), as the default registry of the management commands. That file
// holds no secrets.
package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
)

// Login is one stored user name and password (or API key).
type Login struct {
	Username string
	Password string
}

// Host returns the key under which a registry's login is stored: the host
// and port of its URL, as docker stores it.
func Host(registryURL string) (string, error) {
	if !strings.Contains(registryURL, "://") {
		registryURL = "https://" + registryURL
	}
	u, err := url.Parse(registryURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not a registry URL (like https://registry.example or 127.0.0.1:5000)", registryURL)
	}
	return u.Host, nil
}

// Store keeps the login for the registry's host and returns where it went
// (the config file, or the name of the credential helper).
func Store(host string, l Login) (string, error) {
	cf, err := loadConfig()
	if err != nil {
		return "", err
	}
	ac := types.AuthConfig{ServerAddress: host, Username: l.Username, Password: l.Password}
	if helper := helperFor(cf.CredentialsStore, cf.CredentialHelpers, host); helper != "" {
		if err := cf.GetCredentialsStore(host).Store(ac); err != nil {
			return "", fmt.Errorf("storing the login for %s with docker-credential-%s: %w", host, helper, err)
		}
		return "credential helper docker-credential-" + helper, nil
	}
	// Without a helper, the login goes into the file (readable only by the
	// user), as docker login puts it there.
	cf.GetAuthConfigs()[host] = ac
	if err := cf.Save(); err != nil {
		return "", fmt.Errorf("storing the login for %s in %s: %w", host, cf.GetFilename(), err)
	}
	return cf.GetFilename(), nil
}

// loadConfig reads the docker config from $DOCKER_CONFIG/config.json,
// by default ~/.docker/config.json.
func loadConfig() (*configfile.ConfigFile, error) {
	dir := os.Getenv(dockerconfig.EnvOverrideConfigDir)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("finding the docker config: %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	cf, err := dockerconfig.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the docker config in %s: %w", dir, err)
	}
	return cf, nil
}

// Lookup returns the stored login for the registry's host; found is false
// if there is none.
func Lookup(host string) (l Login, found bool, err error) {
	cf, err := loadConfig()
	if err != nil {
		return l, false, err
	}
	ac, err := cf.GetAuthConfig(host)
	if err != nil {
		return l, false, fmt.Errorf("reading the login for %s: %w", host, err)
	}
	if ac.Username == "" || ac.Password == "" {
		return l, false, nil
	}
	return Login{Username: ac.Username, Password: ac.Password}, true, nil
}

// Erase removes the stored login for the registry's host; found is false if
// there was none.
func Erase(host string) (found bool, err error) {
	cf, err := loadConfig()
	if err != nil {
		return false, err
	}
	store := cf.GetCredentialsStore(host)
	ac, err := store.Get(host)
	if err != nil {
		return false, fmt.Errorf("reading the login for %s: %w", host, err)
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" {
		return false, nil
	}
	if err := store.Erase(host); err != nil {
		return true, fmt.Errorf("removing the login for %s: %w", host, err)
	}
	return true, nil
}

func helperFor(credsStore string, helpers map[string]string, host string) string {
	if h := helpers[host]; h != "" {
		return h
	}
	return credsStore
}

// defaults is the file of the client's non-secret settings.
type defaults struct {
	Registry string `json:"registry"`
}

// defaultsPath is keppel/config.json in the user's config directory.
func defaultsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(dir, "keppel", "config.json"), nil
}

// DefaultRegistry returns the URL of the registry logged in to last, or ""
// if there is none.
func DefaultRegistry() (string, error) {
	path, err := defaultsPath()
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the client settings: %w", err)
	}
	defer f.Close()
	var d defaults
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&d); err != nil {
		return "", fmt.Errorf("reading the client settings %s: %w (remove the file or run `keppel login` again)", path, err)
	}
	return d.Registry, nil
}

// SetDefaultRegistry remembers the registry URL ("" forgets it).
func SetDefaultRegistry(registryURL string) error {
	path, err := defaultsPath()
	if err != nil {
		return err
	}
	if registryURL == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the client settings: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("storing the client settings: %w", err)
	}
	body, err := json.MarshalIndent(defaults{Registry: registryURL}, "", "  ")
	if err != nil {
		return fmt.Errorf("storing the client settings: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("storing the client settings: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(body, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("storing the client settings: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storing the client settings: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("storing the client settings: %w", err)
	}
	return nil
}
