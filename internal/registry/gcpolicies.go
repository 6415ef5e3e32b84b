package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/policy"
)

// GC policy defaults: each repository of an account with GC policies is
// looked at about once per interval; manifests pushed more recently than
// the protection are never deleted by a policy (an index's children may be
// pushed a while before the index).
const (
	DefaultGCPolicyInterval       = time.Hour
	DefaultGCRecentPushProtection = time.Hour
)

// GCPolicyRun is what one ApplyGCPolicies did.
type GCPolicyRun struct {
	Repository models.Repository
	// Deleted are the digests of the manifests deleted (or, in a dry run,
	// that would have been).
	Deleted []string
	// Protected counts the manifests that a policy or a rule protected.
	Protected int
}

// GCPolicySettings configure ApplyGCPolicies.
type GCPolicySettings struct {
	Interval             time.Duration
	RecentPushProtection time.Duration
	// DryRun records what the policies decide without deleting anything.
	DryRun bool
}

// gcStatus is the GC status of a manifest as the management API shows it.
type gcStatus struct {
	// Action is "delete" (in a dry run: would be deleted) or "protect".
	Action string `json:"action"`
	// Reason explains the decision.
	Reason string `json:"reason"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// ApplyGCPolicies applies the account's GC policies to the next repository
// whose run is due: it deletes the manifests that a policy deletes and
// stores every manifest's GC status. Children of indexes, subjects of
// referrers, manifests pushed within the recent-push protection and
// manifests with a tag that a tag policy protects from deletion are never
// deleted. claimed is false if no repository was due.
func (s *Service) ApplyGCPolicies(ctx context.Context, cfg GCPolicySettings) (res GCPolicyRun, claimed bool, err error) {
	now := s.now()
	r, claimed, err := s.db.ClaimGCPolicyRun(ctx, now, now.Add(spread(cfg.Interval)))
	if err != nil || !claimed {
		return res, claimed, err
	}
	res.Repository = r
	account, err := s.db.GetAccount(ctx, r.AccountName)
	if err != nil {
		return res, true, fmt.Errorf("looking up account %s: %w", r.AccountName, err)
	}
	repo := Repo{Account: account, Repository: r}
	gcPolicies, err := policy.ParseGCPolicies(account.GCPoliciesJSON)
	if err != nil {
		return res, true, fmt.Errorf("gc_policies of account %s: %w", account.Name, err)
	}
	var tagPolicies []policy.TagPolicy
	if account.TagPoliciesJSON != "" {
		if tagPolicies, err = policy.ParseTagPolicies(account.TagPoliciesJSON); err != nil {
			return res, true, fmt.Errorf("tag_policies of account %s: %w", account.Name, err)
		}
	}
	candidates, err := s.db.ListGCCandidates(ctx, r.ID)
	if err != nil {
		return res, true, err
	}
	manifests := make([]policy.GCManifest, len(candidates))
	for i, c := range candidates {
		manifests[i] = policy.GCManifest{Digest: c.Digest, Tags: c.Tags, PushedAt: c.PushedAt, LastPulledAt: c.LastPulledAt,
			ProtectedBecause: protection(c, tagPolicies, r.Name, now, cfg.RecentPushProtection)}
	}

	statuses := make(map[string]string, len(candidates))
	for _, d := range policy.EvaluateGC(gcPolicies, r.Name, manifests, now) {
		st := gcStatus{Action: d.Action, Reason: d.Reason}
		if d.Action == "delete" && !cfg.DryRun {
			err := s.deleteByPolicy(ctx, repo, d)
			if err == nil {
				res.Deleted = append(res.Deleted, d.Digest)
				continue
			}
			if !errors.Is(err, ErrManifestReferenced) && !errors.Is(err, ErrPolicyViolation) && !errors.Is(err, ErrManifestUnknown) {
				return res, true, err
			}
			// Something changed since the candidates were listed.
			st = gcStatus{Action: "protect", Reason: err.Error()}
		}
		switch {
		case d.Action == "delete" && cfg.DryRun:
			st.DryRun = true
			res.Deleted = append(res.Deleted, d.Digest)
		case st.Action == "protect":
			res.Protected++
		}
		statuses[d.Digest] = ""
		if st.Action != "" {
			buf, err := json.Marshal(st)
			if err != nil {
				return res, true, fmt.Errorf("encoding GC status: %w", err)
			}
			statuses[d.Digest] = string(buf)
		}
	}
	return res, true, s.db.SetGCStatuses(ctx, r.ID, statuses)
}

// protection says why GC policies must not delete the manifest ("" if
// nothing protects it).
func protection(c db.GCCandidate, tagPolicies []policy.TagPolicy, repoName string, now time.Time, recent time.Duration) string {
	switch {
	case c.IsChild:
		return "is referenced by an index"
	case c.IsSubject:
		return "is the subject of a referrer"
	case c.PushedAt.After(now.Add(-recent)):
		return fmt.Sprintf("was pushed less than %s ago", recent)
	}
	for _, tag := range c.Tags {
		for i, p := range tagPolicies {
			if p.BlockDelete && p.Matches(repoName, tag) {
				return fmt.Sprintf("carries the tag %q, which tag_policies[%d] protects from deletion", tag, i)
			}
		}
	}
	return ""
}

// deleteByPolicy deletes a manifest that a GC policy selected, and records
// the deletion in the audit log.
func (s *Service) deleteByPolicy(ctx context.Context, repo Repo, d policy.GCDecision) error {
	if err := s.DeleteManifest(ctx, repo, d.Digest); err != nil {
		return err
	}
	err := s.db.RecordAuditEvents(ctx, models.AuditEvent{Time: s.now(), Actor: "janitor", Action: "manifest.delete",
		AuthTenantID: repo.Account.AuthTenantID, AccountName: repo.Account.Name,
		Target: repo.FullName() + "@" + d.Digest, Outcome: "success", Reason: d.Reason})
	if err != nil {
		s.log.Warn("cannot record the audit event of a GC deletion", "digest", d.Digest, "error", err)
	}
	return nil
}
