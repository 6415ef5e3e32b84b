package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"

	"keppel/internal/models"
	"keppel/internal/upstream"
)

// ErrNoPeerCredentials: an on_first_use account's upstream peer has not
// issued credentials to this registry (yet).
var ErrNoPeerCredentials = errors.New("no credentials for the upstream peer")

// maxUpstreamClients bounds the upstream clients kept (one per upstream
// and set of credentials).
const maxUpstreamClients = 256

// externalUpstreamOf returns the upstream of a from_external_on_first_use
// account (nil for other accounts).
func externalUpstreamOf(a models.Account) *externalUpstream {
	var r replicationSettings
	if a.ReplicationJSON == "" || json.Unmarshal([]byte(a.ReplicationJSON), &r) != nil || r.Strategy != StrategyExternalOnFirstUse {
		return nil
	}
	var up externalUpstream
	if json.Unmarshal(r.Upstream, &up) != nil {
		return nil
	}
	return &up
}

// upstreamOf returns the client of the account's upstream registry and the
// name of the repository there: the same full name at a peer, or the name
// below the account at an external registry (after the URL's path).
func (s *Service) upstreamOf(ctx context.Context, a models.Account, repoName string) (*upstream.Registry, string, error) {
	if peer := upstreamPeer(a); peer != "" {
		if s.replication.Peers == nil {
			return nil, "", fmt.Errorf("%w: account %s replicates %s, which is not a configured peer", ErrUpstreamFailed, a.Name, peer)
		}
		base, ok := s.replication.Peers.PeerURL(peer)
		if !ok {
			return nil, "", fmt.Errorf("%w: account %s replicates %s, which is not a configured peer", ErrUpstreamFailed, a.Name, peer)
		}
		user, password, err := s.replication.Peers.Credentials(ctx, peer)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %w: %s", ErrUpstreamFailed, ErrNoPeerCredentials, err.Error())
		}
		c, err := s.upstreamClient(base, user, password)
		return c, a.Name + "/" + repoName, err
	}
	ext := externalUpstreamOf(a)
	if ext == nil {
		return nil, "", fmt.Errorf("account %s is not a replica", a.Name)
	}
	user, password, err := s.UpstreamCredentials(a)
	if err != nil {
		return nil, "", err
	}
	c, err := s.upstreamClient(ext.URL, user, password)
	return c, repoName, err
}

// upstreamClient returns the (shared) client of an upstream registry with
// the credentials.
func (s *Service) upstreamClient(url, user, password string) (*upstream.Registry, error) {
	sum := sha256.Sum256([]byte(url + "\x00" + user + "\x00" + password))
	key := hex.EncodeToString(sum[:])
	st := &s.replicas
	st.clientsMu.Lock()
	defer st.clientsMu.Unlock()
	if c, ok := st.clients[key]; ok {
		return c, nil
	}
	c, err := upstream.New(url, user, password, s.replication.Transport)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUpstreamFailed, err.Error())
	}
	if st.clients == nil || len(st.clients) >= maxUpstreamClients {
		st.clients = map[string]*upstream.Registry{}
	}
	st.clients[key] = c
	return c, nil
}

// platforms is an account's platform filter (empty: everything).
type platforms []imagespec.Platform

func platformFilter(a models.Account) (platforms, error) {
	if a.PlatformFilterJSON == "" {
		return nil, nil
	}
	var p platforms
	if err := json.Unmarshal([]byte(a.PlatformFilterJSON), &p); err != nil {
		return nil, fmt.Errorf("platform filter of account %s: %w", a.Name, err)
	}
	return p, nil
}

// matches reports whether a child manifest of an index is replicated: any
// if there is no filter, else those whose platform matches one of the
// filter's (in every field that the filter's entry sets).
func (f platforms) matches(p *imagespec.Platform) bool {
	if len(f) == 0 {
		return true
	}
	if p == nil {
		return false
	}
	for _, want := range f {
		if (want.OS == "" || want.OS == p.OS) && (want.Architecture == "" || want.Architecture == p.Architecture) &&
			(want.Variant == "" || want.Variant == p.Variant) && (want.OSVersion == "" || want.OSVersion == p.OSVersion) {
			return true
		}
	}
	return false
}
