package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"keppel/internal/api/hostroute"
	"keppel/internal/config"
	"keppel/internal/db"
	"keppel/internal/federation"
	"keppel/internal/peering"
)

// hostRouting puts account subdomains and the anycast host name (if
// configured) in front of the APIs.
func hostRouting(next http.Handler, cfg config.Config, publicHost string, store db.Store, fed federation.Driver, peers *peering.Service, log *slog.Logger) http.Handler {
	rc := hostroute.Config{
		PublicHost:        strings.ToLower(publicHost),
		AccountSubdomains: cfg.API.AccountSubdomains,
		Log:               log.With("component", "hostroute"),
		IsLocal: func(ctx context.Context, account string) (bool, error) {
			a, err := store.GetAccount(ctx, account)
			if errors.Is(err, db.ErrNotFound) {
				return false, nil
			}
			return err == nil && !a.IsDeleting, err
		},
		Holder: func(ctx context.Context, account string) (string, bool, error) {
			host, err := fed.FindPrimaryAccount(ctx, account)
			if errors.Is(err, federation.ErrNotFound) {
				return "", false, nil
			}
			if err != nil || peers == nil {
				return "", false, err
			}
			peerURL, ok := peers.PeerURL(host)
			return peerURL, ok, nil
		},
	}
	if cfg.API.AnycastURL != "" {
		if u, err := url.Parse(cfg.API.AnycastURL); err == nil {
			rc.AnycastHost = strings.ToLower(u.Host)
		}
	}
	return hostroute.Wrap(next, rc)
}
