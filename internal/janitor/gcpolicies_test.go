package janitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/registry"
	"keppel/internal/storage/memory"
)

// gcPolicyFixture is a repository with manifests that GC policies treat
// differently, pushed at different times.
type gcPolicyFixture struct {
	env testEnv
	// digests by role: "old" (untagged, two days old), "child" (untagged,
	// two days old, in the index), "index" (tagged v1), "recent"
	// (untagged, half an hour old), "kept" (tagged keep, which a tag
	// policy protects).
	digests map[string]string
}

const indexType = "application/vnd.oci.image.index.v1+json"

func newGCPolicyFixture(t *testing.T) *gcPolicyFixture {
	t.Helper()
	ctx := t.Context()
	f := &gcPolicyFixture{env: newTestEnv(t, memory.New(), "app"), digests: map[string]string{}}
	push := func(role, tag, body string) {
		t.Helper()
		ref := tag
		if ref == "" {
			ref = fmt.Sprintf("sha256:%x", sha256Sum(body))
		}
		pushed, err := f.env.svc.PutManifest(ctx, f.env.repo, ref, indexType, []byte(body), nil, nil)
		if err != nil {
			t.Fatalf("push %s: %v", role, err)
		}
		f.digests[role] = pushed.Digest.String()
	}
	emptyIndex := func(name string) string {
		return `{"schemaVersion":2,"mediaType":"` + indexType + `","manifests":[],"annotations":{"name":"` + name + `"}}`
	}
	push("old", "", emptyIndex("old"))
	child := emptyIndex("child")
	push("child", "", child)
	push("index", "v1", fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%d}]}`,
		indexType, indexType, f.digests["child"], len(child)))
	push("kept", "keep", emptyIndex("kept"))
	f.env.clock.Add(int64((2*24*time.Hour - 30*time.Minute) / time.Second))
	push("recent", "", emptyIndex("recent"))
	f.env.clock.Add(int64(30 * time.Minute / time.Second))

	account, err := f.env.store.GetAccount(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	account.GCPoliciesJSON = `[{"match_repository":".*","only_untagged":true,` +
		`"time_constraint":{"on":"pushed_at","older_than":{"value":1,"unit":"d"}},"action":"delete"},` +
		`{"match_repository":".*","match_tag":"keep","action":"delete"}]`
	account.TagPoliciesJSON = `[{"match_repository":".*","match_tag":"keep","block_delete":true}]`
	if err := f.env.store.UpdateAccount(ctx, account); err != nil {
		t.Fatal(err)
	}
	// UpdateAccount replaces every setting: the account's repositories
	// stay.
	return f
}

// statuses returns the GC status of every manifest, by role.
func (f *gcPolicyFixture) statuses(t *testing.T) map[string]map[string]any {
	t.Helper()
	infos, err := f.env.svc.ListManifestInfos(t.Context(), f.env.repo, "", db.NoLimit)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for role, d := range f.digests {
		roles[d] = role
	}
	out := map[string]map[string]any{}
	for _, m := range infos {
		var st map[string]any
		if m.GCStatusJSON != "" {
			if err := json.Unmarshal([]byte(m.GCStatusJSON), &st); err != nil {
				t.Fatal(err)
			}
		}
		out[roles[m.Digest]] = st
	}
	return out
}

func (f *gcPolicyFixture) run(t *testing.T, dryRun bool) registry.GCPolicyRun {
	t.Helper()
	res, claimed, err := f.env.svc.ApplyGCPolicies(t.Context(), registry.GCPolicySettings{
		Interval: time.Hour, RecentPushProtection: time.Hour, DryRun: dryRun})
	if err != nil || !claimed {
		t.Fatalf("ApplyGCPolicies: claimed %v, %v", claimed, err)
	}
	return res
}

// TestGCPoliciesApplied: the policies delete the old untagged manifest and
// nothing else; the child of an index, a recent push and a tag that a tag
// policy protects stay, and every manifest shows why.
func TestGCPoliciesApplied(t *testing.T) {
	f := newGCPolicyFixture(t)
	ctx := t.Context()
	res := f.run(t, false)
	if len(res.Deleted) != 1 || res.Deleted[0] != f.digests["old"] {
		t.Fatalf("deleted %v, want only the old untagged manifest %s", res.Deleted, f.digests["old"])
	}
	if _, err := f.env.svc.GetManifest(ctx, f.env.repo, f.digests["old"]); !errors.Is(err, registry.ErrManifestUnknown) {
		t.Fatalf("the deleted manifest is still there: %v", err)
	}
	st := f.statuses(t)
	want := map[string]string{
		"child":  "is referenced by an index",
		"recent": "was pushed less than 1h0m0s ago",
		"kept":   `carries the tag "keep", which tag_policies[0] protects from deletion`,
	}
	for role, reason := range want {
		if st[role]["action"] != "protect" || st[role]["reason"] != reason {
			t.Errorf("%s: status %v, want protected because it %s", role, st[role], reason)
		}
	}
	if st["index"] != nil {
		t.Errorf("index: status %v, want none (no policy matches it)", st["index"])
	}
	if _, gone := st["old"]; gone {
		t.Error("the deleted manifest is still listed")
	}
	events, err := f.env.store.ListAuditEvents(ctx, db.AuditFilter{Actor: "janitor"})
	if err != nil || len(events) != 1 || events[0].Action != "manifest.delete" || events[0].Reason != "deleted by gc_policies[0]" {
		t.Fatalf("audit events of the janitor: %+v, %v", events, err)
	}

	// The run is scheduled: the repository is not due again at once.
	if _, claimed, err := f.env.svc.ApplyGCPolicies(ctx, registry.GCPolicySettings{Interval: time.Hour, RecentPushProtection: time.Hour}); err != nil || claimed {
		t.Fatalf("second run at once: claimed %v, %v", claimed, err)
	}
}

// TestGCPoliciesDryRun: a dry run deletes nothing and shows what it would
// delete.
func TestGCPoliciesDryRun(t *testing.T) {
	f := newGCPolicyFixture(t)
	res := f.run(t, true)
	if len(res.Deleted) != 1 || res.Deleted[0] != f.digests["old"] {
		t.Fatalf("a dry run reported %v, want the old untagged manifest", res.Deleted)
	}
	st := f.statuses(t)
	if len(st) != len(f.digests) {
		t.Fatalf("a dry run deleted manifests: %d left of %d", len(st), len(f.digests))
	}
	if st["old"]["action"] != "delete" || st["old"]["dry_run"] != true {
		t.Fatalf("old: status %v, want a dry-run delete", st["old"])
	}
}
