package dbtest

import (
	"slices"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

func listAudit(t *testing.T, s db.Store, f db.AuditFilter) []models.AuditEvent {
	t.Helper()
	events, err := s.ListAuditEvents(t.Context(), f)
	if err != nil {
		t.Fatalf("ListAuditEvents(%+v): %v", f, err)
	}
	return events
}

func testAuditEvents(t *testing.T, s db.Store) {
	ctx := t.Context()
	wantEqual(t, "ListAuditEvents on empty store", listAudit(t, s, db.AuditFilter{}), []models.AuditEvent{})

	in := []models.AuditEvent{
		{Time: ts(1000), Actor: "alice", RemoteAddr: "192.0.2.1", Action: "account.create", AuthTenantID: "t1",
			AccountName: "library", Outcome: "success", DetailsJSON: `{"name":"library"}`},
		{Time: ts(2000), Actor: "alice", RemoteAddr: "192.0.2.1", Action: "manifest.push", AuthTenantID: "t1",
			AccountName: "library", Target: "alpine@sha256:abc", Outcome: "success"},
		{Time: ts(3000), Actor: "", RemoteAddr: "198.51.100.7", Action: "login.failure",
			Outcome: "failure", Reason: "wrong password"},
		{Time: ts(3000), Actor: "bob", RemoteAddr: "[2001:db8::1]:1234", Action: "manifest.push", AuthTenantID: "t2",
			AccountName: "other", Target: "busybox:latest", Outcome: "success"},
		{Time: ts(4000), Actor: "bob", Action: "tag.delete", AuthTenantID: "t1", AccountName: "library",
			Target: "alpine:old", Outcome: "failure", Reason: "forbidden"},
		// recorded out of time order: listings go by ID
		{Time: ts(500), Actor: "alice", Action: "manifest.push", AuthTenantID: "t1", AccountName: "shared",
			Target: "x@sha256:def", Outcome: "success"},
	}
	for _, e := range in {
		e.ID = 12345 // ignored
		if err := s.RecordAuditEvents(ctx, e); err != nil {
			t.Fatalf("RecordAuditEvents(%+v): %v", e, err)
		}
	}
	all := listAudit(t, s, db.AuditFilter{})
	if len(all) != len(in) {
		t.Fatalf("ListAuditEvents: got %d events, want %d", len(all), len(in))
	}
	// newest first, with increasing IDs in recording order
	for i, e := range all {
		want := in[len(in)-1-i]
		want.ID = e.ID
		wantEqual(t, "event", e, want)
		if i > 0 && e.ID >= all[i-1].ID {
			t.Fatalf("events not ordered by descending ID: %d after %d", e.ID, all[i-1].ID)
		}
	}
	// byIndex returns the listed events of the recorded ones, newest first
	byIndex := func(idx ...int) []models.AuditEvent {
		out := []models.AuditEvent{}
		for _, i := range slices.Backward(idx) {
			out = append(out, all[len(in)-1-i])
		}
		return out
	}
	wantEqual(t, "byIndex", byIndex(0, 1, 2, 3, 4, 5), all)

	cases := []struct {
		name   string
		filter db.AuditFilter
		want   []models.AuditEvent
	}{
		{"actor", db.AuditFilter{Actor: "alice"}, byIndex(0, 1, 5)},
		{"anonymous is not a filter", db.AuditFilter{Actor: ""}, all},
		{"action", db.AuditFilter{Action: "manifest.push"}, byIndex(1, 3, 5)},
		{"tenant", db.AuditFilter{AuthTenantID: "t1"}, byIndex(0, 1, 4, 5)},
		{"account", db.AuditFilter{AccountName: "library"}, byIndex(0, 1, 4)},
		{"actor and action", db.AuditFilter{Actor: "bob", Action: "manifest.push"}, byIndex(3)},
		{"tenant and account", db.AuditFilter{AuthTenantID: "t2", AccountName: "library"}, byIndex()},
		{"since (inclusive)", db.AuditFilter{Since: ts(3000)}, byIndex(2, 3, 4)},
		{"until (exclusive)", db.AuditFilter{Until: ts(3000)}, byIndex(0, 1, 5)},
		{"since and until", db.AuditFilter{Since: ts(1000), Until: ts(4000)}, byIndex(0, 1, 2, 3)},
		{"time and actor", db.AuditFilter{Actor: "alice", Since: ts(1000)}, byIndex(0, 1)},
		{"before ID", db.AuditFilter{BeforeID: all[1].ID}, byIndex(0, 1, 2, 3)},
		{"before first ID", db.AuditFilter{BeforeID: all[len(all)-1].ID}, byIndex()},
		{"limit", db.AuditFilter{Limit: 2}, byIndex(4, 5)},
		{"before ID and limit", db.AuditFilter{BeforeID: all[2].ID, Limit: 2}, byIndex(1, 2)},
		{"action, before ID and limit", db.AuditFilter{Action: "manifest.push", BeforeID: all[0].ID, Limit: 1}, byIndex(3)},
		{"unknown actor", db.AuditFilter{Actor: "carol"}, byIndex()},
		{"other case", db.AuditFilter{Actor: "Alice"}, byIndex()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantEqual(t, "ListAuditEvents", listAudit(t, s, c.filter), c.want)
		})
	}

	// paging backwards with BeforeID visits every event once
	var (
		paged  []models.AuditEvent
		before int64
	)
	for range len(in) {
		page := listAudit(t, s, db.AuditFilter{AuthTenantID: "t1", BeforeID: before, Limit: 3})
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		before = page[len(page)-1].ID
	}
	wantEqual(t, "paged events", paged, byIndex(0, 1, 4, 5))

	// a zero time means now
	start := time.Now().Add(-time.Second).Truncate(time.Second)
	if err := s.RecordAuditEvents(ctx, models.AuditEvent{Action: "user.delete", Outcome: "success"}); err != nil {
		t.Fatalf("RecordAuditEvents(zero time): %v", err)
	}
	got := listAudit(t, s, db.AuditFilter{Limit: 1})
	if got[0].Action != "user.delete" || got[0].Time.Before(start) || got[0].Time.After(time.Now().Add(time.Second)) {
		t.Fatalf("event without a time: %+v, want Time about now", got[0])
	}
	if got[0].ID <= all[0].ID {
		t.Fatalf("new event has ID %d, not above %d", got[0].ID, all[0].ID)
	}

	// several events in one call, in their order; none is nothing
	if err := s.RecordAuditEvents(ctx); err != nil {
		t.Fatalf("RecordAuditEvents(): %v", err)
	}
	batch := []models.AuditEvent{
		{Time: ts(1_800_000_000), Actor: "ci", Action: "manifest.push", Target: "a/b@sha256:1", Outcome: "success"},
		{Time: ts(1_800_000_000), Actor: "ci", Action: "tag.create", Target: "a/b:v1", Outcome: "success"},
	}
	if err := s.RecordAuditEvents(ctx, batch...); err != nil {
		t.Fatalf("RecordAuditEvents(batch): %v", err)
	}
	got = listAudit(t, s, db.AuditFilter{Actor: "ci"})
	if len(got) != 2 || got[0].Action != "tag.create" || got[1].Action != "manifest.push" || got[0].ID != got[1].ID+1 {
		t.Fatalf("batch: %+v, want tag.create then manifest.push with consecutive IDs", got)
	}
}

func testAuditEventLimits(t *testing.T, s db.Store) {
	const n = 1005
	for i := range n {
		e := models.AuditEvent{Time: ts(int64(1_700_000_000 + i)), Actor: "bot", Action: "manifest.pull", Outcome: "success"}
		if err := s.RecordAuditEvents(t.Context(), e); err != nil {
			t.Fatalf("RecordAuditEvents #%d: %v", i, err)
		}
	}
	for _, c := range []struct {
		limit, want int
	}{
		{0, 100},
		{-5, 100},
		{1, 1},
		{999, 999},
		{1000, 1000},
		{1001, 1000},
		{1 << 30, 1000},
	} {
		got := listAudit(t, s, db.AuditFilter{Limit: c.limit})
		if len(got) != c.want {
			t.Fatalf("ListAuditEvents(Limit: %d): got %d events, want %d", c.limit, len(got), c.want)
		}
		if !got[0].Time.Equal(ts(1_700_000_000 + n - 1)) {
			t.Fatalf("ListAuditEvents(Limit: %d): first event at %v, want the newest", c.limit, got[0].Time)
		}
	}
}
