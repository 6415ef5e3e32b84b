// Package peering exchanges rotating service passwords with the other
// registries of the federation (peers), so that they can pull from each
// other for replication.
//
// Each registry issues every peer a password, which that peer uses to log
// in as "replication@<peer host>", and replaces it every rotation
// interval. The registry stores only hashes of the passwords it issued:
// the current one and the one before, which stays valid until the next
// rotation, so that a peer is never locked out while a new password is on
// its way. It hands a new password over with
// POST <peer>/keppel/v1/auth/peering; the peer checks that the password is
// genuine by logging in with it at the issuer's own URL, from its own
// configuration, before it keeps it (sealed with the secrets key).
//
// A peer is known by the host (and port) of its public URL: a registry at
// https://keppel.eu-de-2.example.com is the peer
// "keppel.eu-de-2.example.com".
package peering

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"keppel/internal/auth"
	"keppel/internal/db"
	"keppel/internal/secretbox"
)

// Errors of the Service, to be compared with errors.Is.
var (
	// ErrUnknownPeer: the host is not one of the configured peers.
	ErrUnknownPeer = errors.New("not a peer of this registry")
	// ErrNoCredentials: the peer has not issued a password to this
	// registry yet.
	ErrNoCredentials = errors.New("no credentials received from this peer yet")
	// ErrWrongUsername: a delivered password is for another user name than
	// the one this registry logs in with at the peer.
	ErrWrongUsername = errors.New("wrong user name for this registry")
	// ErrPasswordRejected: the peer did not accept a delivered password
	// when this registry tried it there.
	ErrPasswordRejected = errors.New("the peer does not accept the password")
	// ErrPeerUnavailable: a delivered password could not be tried at the
	// peer (unreachable, or an unexpected answer).
	ErrPeerUnavailable = errors.New("cannot reach the peer")
)

// UsernamePrefix starts the user name of a peer: a peer logs in as
// "replication@<its host>".
const UsernamePrefix = "replication@"

// DefaultTimeout bounds each request to a peer, unless WithHTTPClient
// gives a client of its own.
const DefaultTimeout = 30 * time.Second

// passwordBytes is the entropy of an issued password.
const passwordBytes = 32

// Service issues, rotates, checks and receives the service passwords of
// the peers. It is safe for concurrent use, and so are several Services on
// one metadata store (several API and janitor processes).
type Service struct {
	store db.PeerStore
	self  string
	// peers maps peer hosts to base URLs; hosts keeps the configured order.
	peers    map[string]string
	hosts    []string
	rotation time.Duration
	box      *secretbox.Box
	client   *http.Client
	now      func() time.Time
	log      *slog.Logger
}

var _ auth.Driver = (*Service)(nil)

// Option configures a Service.
type Option func(*Service)

// WithHTTPClient sets the client for requests to peers (default: one with
// DefaultTimeout that does not follow redirects).
func WithHTTPClient(c *http.Client) Option {
	return func(s *Service) { s.client = c }
}

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Service) { s.now = now }
}

// WithLogger sets the logger (default: none).
func WithLogger(log *slog.Logger) Option {
	return func(s *Service) { s.log = log }
}

// New returns the Service of the registry known to its peers as self (the
// host of its public URL), for the peers at peerURLs (base URLs such as
// https://keppel.eu-de-2.example.com; self may be among them and is
// skipped), rotating the passwords it issues every rotation. box seals the
// passwords received from peers.
func New(store db.PeerStore, self string, peerURLs []string, rotation time.Duration, box *secretbox.Box, opts ...Option) (*Service, error) {
	if self == "" {
		return nil, errors.New("peering: this registry's host name is required")
	}
	if rotation <= 0 {
		return nil, fmt.Errorf("peering: rotation interval %s must be positive", rotation)
	}
	if box == nil {
		return nil, errors.New("peering: a secrets box is required")
	}
	s := &Service{
		store: store, self: strings.ToLower(self), peers: map[string]string{}, rotation: rotation, box: box,
		client: &http.Client{
			Timeout: DefaultTimeout,
			// A password goes to the configured URL or nowhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(s)
	}
	for _, raw := range peerURLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("peering: %q is not the base URL of a registry", raw)
		}
		host := strings.ToLower(u.Host)
		if host == s.self {
			continue
		}
		if _, dup := s.peers[host]; dup {
			return nil, fmt.Errorf("peering: the peer %s is listed twice", host)
		}
		s.peers[host] = u.Scheme + "://" + host
		s.hosts = append(s.hosts, host)
	}
	return s, nil
}

// PeerURL returns the base URL of a configured peer.
func (s *Service) PeerURL(hostname string) (string, bool) {
	u, ok := s.peers[strings.ToLower(hostname)]
	return u, ok
}

// PollInterval is how often the rotation job should look for due
// passwords: a tenth of the rotation interval, at most a minute.
func (s *Service) PollInterval() time.Duration {
	return max(min(s.rotation/10, time.Minute), time.Second)
}

// Authenticate implements auth.Driver for the user names of peers,
// "replication@<peer host>": it accepts the current and the previous
// password issued to the peer, as an identity marked as a peer. A wrong
// password for such a name is auth.ErrRefused, so that no other driver of
// a chain accepts the name; other names are auth.ErrBadCredentials.
//
// Basic credentials cannot carry a colon in the user name, so the name of
// a peer with a port ("replication@127.0.0.3:8080") arrives split at its
// first colon ("replication@127.0.0.3" with the password "8080:…").
// Issued passwords contain no colon, so the name is joined up again at the
// password's last colon if that gives the name of a peer.
func (s *Service) Authenticate(ctx context.Context, username, password string) (auth.Identity, error) {
	host, ok := strings.CutPrefix(username, UsernamePrefix)
	if !ok {
		return auth.Identity{}, fmt.Errorf("peering: not a peer's user name: %w", auth.ErrBadCredentials)
	}
	host = strings.ToLower(host)
	if i := strings.LastIndexByte(password, ':'); i >= 0 {
		if joined := host + ":" + strings.ToLower(password[:i]); s.peers[joined] != "" {
			host, password = joined, password[i+1:]
		}
	}
	if _, ok := s.peers[host]; !ok {
		return auth.Identity{}, fmt.Errorf("peering: %s is not a peer: %w", host, auth.ErrBadCredentials)
	}
	p, err := s.store.GetPeer(ctx, host)
	if errors.Is(err, db.ErrNotFound) {
		return auth.Identity{}, fmt.Errorf("peering: no password issued to %s yet: %w", host, auth.ErrRefused)
	}
	if err != nil {
		return auth.Identity{}, fmt.Errorf("peering: %w", err)
	}
	given := hashPassword(password)
	// Both comparisons run, whichever matches.
	current := hashesEqual(given, p.OurPasswordHash)
	previous := hashesEqual(given, p.OurPreviousPasswordHash)
	if password == "" || current+previous == 0 {
		return auth.Identity{}, fmt.Errorf("peering: wrong password of %s: %w", host, auth.ErrRefused)
	}
	return auth.Identity{Username: UsernamePrefix + host, Peer: true}, nil
}

// Credentials returns what this registry logs in with at the peer: the
// user name "replication@<this registry's host>" and the password that the
// peer issued to it. ErrUnknownPeer for hosts that are not peers,
// ErrNoCredentials while the peer has issued none.
func (s *Service) Credentials(ctx context.Context, peerHostname string) (username, password string, err error) {
	host := strings.ToLower(peerHostname)
	if _, ok := s.peers[host]; !ok {
		return "", "", fmt.Errorf("peering: %s: %w", peerHostname, ErrUnknownPeer)
	}
	p, err := s.store.GetPeer(ctx, host)
	if errors.Is(err, db.ErrNotFound) || (err == nil && p.TheirPasswordSealed == "") {
		return "", "", fmt.Errorf("peering: %s: %w", host, ErrNoCredentials)
	}
	if err != nil {
		return "", "", fmt.Errorf("peering: %w", err)
	}
	password, err = s.box.Open(p.TheirPasswordSealed)
	if err != nil {
		return "", "", fmt.Errorf("peering: the password from %s: %w", host, err)
	}
	return UsernamePrefix + s.self, password, nil
}

// newPassword returns a random password and its hash.
func newPassword() (password, hash string, err error) {
	var b [passwordBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generating a password: %w", err)
	}
	password = base64.RawURLEncoding.EncodeToString(b[:])
	return password, hashPassword(password), nil
}

// hashPassword hashes a password for storage. The passwords are random
// and long, so a plain SHA-256 suffices (no key stretching needed).
func hashPassword(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// hashesEqual compares a hash with a stored one in constant time: 1 if
// they are equal, 0 otherwise (and for an empty stored hash).
func hashesEqual(given, stored string) int {
	if len(stored) != len(given) {
		return 0
	}
	return subtle.ConstantTimeCompare([]byte(given), []byte(stored))
}
