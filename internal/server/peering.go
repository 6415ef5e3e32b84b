package server

import (
	"log/slog"

	"keppel/internal/api/keppelv1"
	"keppel/internal/config"
	"keppel/internal/db"
	"keppel/internal/janitor"
	"keppel/internal/peering"
	"keppel/internal/secretbox"
)

// openPeering builds the exchange of service passwords with the peers of
// federation.peers (nil if there are none). self is this registry's
// public host, under which the peers know it.
func openPeering(cfg config.Federation, store db.Store, self string, secrets *secretbox.Box, log *slog.Logger) (*peering.Service, error) {
	if len(cfg.Peers) == 0 {
		return nil, nil
	}
	return peering.New(store, self, cfg.Peers, cfg.PeerPasswordRotation, secrets,
		peering.WithLogger(log.With("component", "peering")))
}

// peeringAPI is what the management API receives peer passwords with (a
// nil interface without peers).
func peeringAPI(p *peering.Service) keppelv1.PeeringService {
	if p == nil {
		return nil
	}
	return p
}

// peeringJobs are the janitor's jobs of peering: the rotation of the
// passwords issued to the peers.
func peeringJobs(p *peering.Service) []janitor.Job {
	if p == nil {
		return nil
	}
	return []janitor.Job{{Name: "peering", Interval: p.PollInterval(), Run: p.RotateDue}}
}

// Peering returns the exchange of service passwords with the peers (nil if
// federation.peers is empty): replication logs in at a peer with its
// Credentials, at its PeerURL.
func (s *Server) Peering() *peering.Service { return s.peering }
