package keppelv1

import (
	"context"
	"errors"
	"net/http"

	"keppel/internal/audit"
	"keppel/internal/errcode"
	"keppel/internal/models"
	"keppel/internal/peering"
)

// PeeringService accepts the service passwords that the other registries
// of the federation issue to this one (peering.Service).
type PeeringService interface {
	// Receive checks a password with the peer that issued it and keeps
	// it; see peering.Service.Receive for the errors.
	Receive(ctx context.Context, peer, username, password string) error
}

// postPeering receives a service password from a peer. It needs no
// credentials: the password is stored only if the peer, asked at the URL
// of this registry's configuration, accepts it. Refusals say no more than
// that, whether the peer is unknown or the password is wrong.
func (h *Handler) postPeering(w http.ResponseWriter, r *http.Request) {
	var d peering.Delivery
	if !decodeBody(w, r, &d) {
		return
	}
	if d.Peer == "" || d.Username == "" || d.Password == "" {
		errcode.Write(w, errcode.New(errcode.BadRequest, "peer, username and password are required"))
		return
	}
	if len(d.Peer) > maxPeerHostLength {
		errcode.Write(w, errcode.New(errcode.BadRequest, "peer must be a host name"))
		return
	}
	err := errors.New("this registry has no peers")
	if h.peering != nil {
		err = h.peering.Receive(r.Context(), d.Peer, d.Username, d.Password)
	}
	event := models.AuditEvent{Action: "peer.password", Actor: peering.UsernamePrefix + d.Peer, Target: d.Peer}
	var refusal *errcode.Error
	switch {
	case err == nil:
		h.record(r, nil, event)
		w.WriteHeader(http.StatusNoContent)
		return
	case errors.Is(err, peering.ErrWrongUsername):
		refusal = errcode.New(errcode.BadRequest, "wrong username")
	case errors.Is(err, peering.ErrPeerUnavailable):
		h.log.Warn("cannot check a password from a peer", "peer", d.Peer, "error", err)
		refusal = errcode.New(errcode.Unavailable, "cannot check the password with the peer right now")
	case h.peering == nil || errors.Is(err, peering.ErrUnknownPeer) || errors.Is(err, peering.ErrPasswordRejected):
		h.log.Info("refused a password from a peer", "peer", d.Peer, "remote", r.RemoteAddr, "error", err)
		refusal = errcode.New(errcode.Denied, "password not accepted")
	default:
		h.internalError(w, "cannot receive a password from a peer", err)
		return
	}
	event.Outcome, event.Reason = audit.Failure, refusal.Message
	h.record(r, nil, event)
	errcode.Write(w, refusal)
}

// maxPeerHostLength bounds the peer named in a delivery (a DNS name with a
// port).
const maxPeerHostLength = 255 + len(":65535")
