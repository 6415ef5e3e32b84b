package peering

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DeliveryPath is where a registry receives the passwords that its peers
// issue to it.
const DeliveryPath = "/keppel/v1/auth/peering"

// Delivery is the body of POST DeliveryPath: a password that the peer
// Peer issued to the receiving registry, for the user name Username
// ("replication@<receiving registry's host>").
type Delivery struct {
	Peer     string `json:"peer"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// maxPasswordLength bounds a received password; issued ones are much shorter.
const maxPasswordLength = 1024

// RotateDue issues a new password to every peer whose current one is due:
// none was issued yet, it is older than the rotation interval, or it was
// not delivered and is older than the poll interval (so that a failed
// delivery is tried again soon with a new password, while the peer keeps
// using the previous one). Each new password is delivered to the peer at
// once. It is the janitor's job: several processes may run it at the same
// time, and each password is issued by one of them only. A failure with
// one peer is logged and does not keep the others from their turn; the
// result joins the failures and reports whether any password was issued.
func (s *Service) RotateDue(ctx context.Context) (didWork bool, err error) {
	var errs []error
	for _, host := range s.hosts {
		issued, err := s.rotate(ctx, host)
		didWork = didWork || issued
		if err != nil {
			s.log.Warn("cannot rotate the password of a peer", "peer", host, "error", err)
			errs = append(errs, fmt.Errorf("peer %s: %w", host, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return didWork, fmt.Errorf("peering: %w", err)
	}
	return didWork, nil
}

// rotate issues and delivers a new password to the peer if its current one
// is due; issued says whether it did.
func (s *Service) rotate(ctx context.Context, host string) (issued bool, err error) {
	password, hash, err := newPassword()
	if err != nil {
		return false, err
	}
	now := s.now()
	issued, err = s.store.IssuePeerPassword(ctx, host, hash, now, now.Add(-s.rotation), now.Add(-s.PollInterval()))
	if err != nil || !issued {
		return false, err
	}
	if err := s.deliver(ctx, host, password); err != nil {
		return true, fmt.Errorf("delivering a new password: %w", err)
	}
	if _, err := s.store.MarkPeerPasswordDelivered(ctx, host, hash); err != nil {
		return true, err
	}
	s.log.Info("issued a new password to a peer", "peer", host)
	return true, nil
}

// deliver hands a password over to the peer, which confirms with 204.
func (s *Service) deliver(ctx context.Context, host, password string) error {
	body, err := json.Marshal(Delivery{Peer: s.self, Username: UsernamePrefix + host, Password: password})
	if err != nil {
		return err
	}
	target := s.peers[host] + DeliveryPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("POST %s answered %s: %s", target, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Receive accepts a password that the peer issued to this registry: the
// peer must be configured (ErrUnknownPeer), the user name must be the one
// this registry logs in with there (ErrWrongUsername), and the password
// must work there: it is tried at the peer's token endpoint, at the URL
// from this registry's configuration (ErrPasswordRejected if the peer
// refuses it, ErrPeerUnavailable if the peer cannot be asked). Only then is
// it stored, sealed, for Credentials.
func (s *Service) Receive(ctx context.Context, peer, username, password string) error {
	host := strings.ToLower(peer)
	baseURL, ok := s.peers[host]
	if !ok {
		return fmt.Errorf("peering: %q: %w", peer, ErrUnknownPeer)
	}
	if !strings.EqualFold(username, UsernamePrefix+s.self) {
		return fmt.Errorf("peering: %q from %s: %w", username, host, ErrWrongUsername)
	}
	if password == "" || len(password) > maxPasswordLength {
		return fmt.Errorf("peering: a password of %d bytes from %s: %w", len(password), host, ErrPasswordRejected)
	}
	if err := s.verify(ctx, host, baseURL, UsernamePrefix+s.self, password); err != nil {
		return fmt.Errorf("peering: trying the password from %s: %w", host, err)
	}
	if err := s.store.StoreReceivedPeerPassword(ctx, host, s.box.Seal(password), s.now()); err != nil {
		return fmt.Errorf("peering: %w", err)
	}
	s.log.Info("received a new password from a peer", "peer", host)
	return nil
}

// verify logs in at the peer's token endpoint with the credentials: only
// a 200 counts.
func (s *Service) verify(ctx context.Context, host, baseURL, username, password string) error {
	target := baseURL + "/keppel/v1/auth?" + url.Values{"service": {host}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(username, password)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeerUnavailable, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w (GET %s answered %s)", ErrPasswordRejected, baseURL+"/keppel/v1/auth", resp.Status)
	default:
		return fmt.Errorf("%w: GET %s answered %s", ErrPeerUnavailable, baseURL+"/keppel/v1/auth", resp.Status)
	}
}
