package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultPeerPasswordRotation is how often the service password that this
// registry issued to each peer is replaced, unless configured.
const DefaultPeerPasswordRotation = time.Hour

// federationBindings are the environment variables of the peering settings.
func federationBindings() []envBinding {
	return []envBinding{
		{"KEPPEL_PEERS", func(c *Config, v string) error {
			c.Federation.Peers = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.Federation.Peers = append(c.Federation.Peers, p)
				}
			}
			return nil
		}},
		{"KEPPEL_PEER_PASSWORD_ROTATION", dur(func(c *Config) *time.Duration { return &c.Federation.PeerPasswordRotation })},
	}
}

// validatePeers checks the peer URLs and the rotation interval, and
// normalizes the URLs (no trailing slash).
func (f *Federation) validatePeers() error {
	seen := map[string]string{}
	for i, raw := range f.Peers {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("federation.peers (KEPPEL_PEERS) %q must be the base URL of a registry: http(s)://host[:port] without a path", raw)
		}
		host := strings.ToLower(u.Host)
		if other, dup := seen[host]; dup {
			return fmt.Errorf("federation.peers (KEPPEL_PEERS) %q and %q name the same registry", other, raw)
		}
		seen[host] = raw
		f.Peers[i] = u.Scheme + "://" + host
	}
	if f.PeerPasswordRotation < time.Minute {
		return fmt.Errorf("federation.peer_password_rotation (KEPPEL_PEER_PASSWORD_ROTATION) %s must be at least 1m", f.PeerPasswordRotation)
	}
	return nil
}
