package keppelv1

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"keppel/internal/errcode"
	"keppel/internal/registry"
)

// ReplicationService records what the replicas of this registry's
// accounts at peer registries report.
type ReplicationService interface {
	RecordReplicaPulls(ctx context.Context, report registry.ReplicaPulls) error
}

// maxReplicaPullsBody bounds the body of a pull report.
const maxReplicaPullsBody = 16 << 20

// postReplicaPulls records the pull times that a peer's replica of one of
// this registry's repositories reports (only peers may), so that the GC
// policies here see the pulls made there.
func (h *Handler) postReplicaPulls(w http.ResponseWriter, r *http.Request) {
	id, ok := h.requireIdentity(w, r)
	if !ok {
		return
	}
	if !id.Peer || h.replication == nil {
		forbidden(w, "only peer registries report replica pulls")
		return
	}
	var report registry.ReplicaPulls
	dec := json.NewDecoder(io.LimitReader(r.Body, maxReplicaPullsBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&report); err != nil {
		errcode.Write(w, errcode.New(errcode.BadRequest, "malformed pull report: %s", err.Error()))
		return
	}
	err := h.replication.RecordReplicaPulls(r.Context(), report)
	switch {
	case errors.Is(err, registry.ErrNameInvalid):
		errcode.Write(w, errcode.New(errcode.BadRequest, "%s", err.Error()))
	case errors.Is(err, registry.ErrAccountUnknown), errors.Is(err, registry.ErrRepositoryUnknown):
		notVisible(w, "repository")
	case errors.Is(err, registry.ErrReplicaAccount):
		errcode.Write(w, errcode.New(errcode.Conflict, "%s", err.Error()))
	case err != nil:
		h.internalError(w, "cannot record replica pulls", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
