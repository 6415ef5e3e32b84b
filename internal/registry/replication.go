package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"keppel/internal/models"
	"keppel/internal/secretbox"
	"keppel/internal/upstream"
)

// ErrReplicationInvalid is returned for replication settings that are malformed.
var ErrReplicationInvalid = errors.New("invalid replication settings")

// Replication strategies.
const (
	StrategyOnFirstUse         = "on_first_use"
	StrategyExternalOnFirstUse = "from_external_on_first_use"
)

type replicationSettings struct {
	Strategy string          `json:"strategy"`
	Upstream json.RawMessage `json:"upstream"`
}

type externalUpstream struct {
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
	// Password is only accepted in requests; it is stored sealed.
	Password       string `json:"password,omitempty"`
	PasswordSealed string `json:"password_sealed,omitempty"`
}

// NormalizeReplication validates the replication settings of an account
// (SAP Keppel's `replication` object) and returns them as stored: compact
// JSON with the upstream password sealed. Empty or null input gives "".
func (s *Service) NormalizeReplication(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var r replicationSettings
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return "", fmt.Errorf("%w: %s", ErrReplicationInvalid, err.Error())
	}
	switch r.Strategy {
	case StrategyOnFirstUse:
		var host string
		if err := json.Unmarshal(r.Upstream, &host); err != nil || !validUpstreamName(host) {
			return "", fmt.Errorf("%w: upstream must be the host name of a peer registry", ErrReplicationInvalid)
		}
		out, _ := json.Marshal(replicationSettings{Strategy: r.Strategy, Upstream: mustJSON(host)})
		return string(out), nil
	case StrategyExternalOnFirstUse:
		var up externalUpstream
		dec := json.NewDecoder(bytes.NewReader(r.Upstream))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&up); err != nil || up.PasswordSealed != "" {
			return "", fmt.Errorf("%w: upstream must be {\"url\": …, \"username\": …, \"password\": …}", ErrReplicationInvalid)
		}
		host := strings.TrimPrefix(strings.TrimPrefix(up.URL, "https://"), "http://")
		if !validUpstreamName(host) || strings.Contains(host, "://") || strings.HasPrefix(host, "/") {
			return "", fmt.Errorf("%w: upstream.url must be a registry host, optionally with a path and an http:// or https:// scheme", ErrReplicationInvalid)
		}
		if _, err := upstream.New(up.URL, "", "", nil); err != nil {
			return "", fmt.Errorf("%w: upstream.url: %s", ErrReplicationInvalid, err.Error())
		}
		if (up.Username == "") != (up.Password == "") {
			return "", fmt.Errorf("%w: upstream.username and upstream.password go together", ErrReplicationInvalid)
		}
		if up.Password != "" {
			if s.secrets == nil {
				return "", errors.New("no secrets key is configured to store upstream passwords")
			}
			up.PasswordSealed, up.Password = s.secrets.Seal(up.Password), ""
		}
		out, _ := json.Marshal(replicationSettings{Strategy: r.Strategy, Upstream: mustJSON(up)})
		return string(out), nil
	default:
		return "", fmt.Errorf("%w: strategy must be %q or %q", ErrReplicationInvalid, StrategyOnFirstUse, StrategyExternalOnFirstUse)
	}
}

// SameReplication reports whether two stored replication settings name the
// same strategy and upstream (a re-sent password does not count as a change).
func SameReplication(a, b string) bool {
	return withoutSecrets(a) == withoutSecrets(b)
}

// RenderReplication returns the replication settings as the API shows
// them: without any password.
func RenderReplication(stored string) json.RawMessage {
	if stored == "" {
		return nil
	}
	return json.RawMessage(withoutSecrets(stored))
}

func withoutSecrets(stored string) string {
	var r replicationSettings
	if stored == "" || json.Unmarshal([]byte(stored), &r) != nil {
		return stored
	}
	if r.Strategy == StrategyExternalOnFirstUse {
		var up externalUpstream
		if json.Unmarshal(r.Upstream, &up) == nil {
			up.Password, up.PasswordSealed = "", ""
			r.Upstream = mustJSON(up)
		}
	}
	out, _ := json.Marshal(r)
	return string(out)
}

// UpstreamCredentials returns the user name and password for pulling from
// an external upstream ("" for anonymous access).
func (s *Service) UpstreamCredentials(a models.Account) (username, password string, err error) {
	var r replicationSettings
	if err := json.Unmarshal([]byte(a.ReplicationJSON), &r); err != nil || r.Strategy != StrategyExternalOnFirstUse {
		return "", "", fmt.Errorf("%w: account %s does not replicate from an external registry", ErrReplicationInvalid, a.Name)
	}
	var up externalUpstream
	if err := json.Unmarshal(r.Upstream, &up); err != nil {
		return "", "", fmt.Errorf("%w: %s", ErrReplicationInvalid, err.Error())
	}
	if up.PasswordSealed == "" {
		return up.Username, "", nil
	}
	if s.secrets == nil {
		return "", "", errors.New("no secrets key is configured to read upstream passwords")
	}
	password, err = s.secrets.Open(up.PasswordSealed)
	if err != nil {
		return "", "", fmt.Errorf("upstream password of account %s: %w", a.Name, err)
	}
	return up.Username, password, nil
}

func validUpstreamName(s string) bool {
	return s != "" && len(s) <= 255 && !strings.ContainsAny(s, " \t\r\n\"'\\")
}

func mustJSON(v any) json.RawMessage {
	buf, _ := json.Marshal(v)
	return buf
}

// WithSecrets sets the box that seals stored secrets.
func WithSecrets(b *secretbox.Box) Option { return func(s *Service) { s.secrets = b } }
