package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"keppel/internal/models"
)

type memStore struct {
	mu     sync.Mutex
	events []models.AuditEvent
}

func (m *memStore) RecordAuditEvents(_ context.Context, events ...models.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, events...)
	return nil
}

func (m *memStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestWebhookReceivesEvents(t *testing.T) {
	got := make(chan map[string]any, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- body
	}))
	defer hook.Close()
	store := &memStore{}
	r := New(store, quiet, WithWebhook(hook.URL, 10, time.Second))
	r.Record(context.Background(), models.AuditEvent{Actor: "alice", Action: "tag.delete", AccountName: "test",
		Target: "test/app:v1", DetailsJSON: `{"digest":"sha256:00"}`})
	select {
	case body := <-got:
		if body["actor"] != "alice" || body["action"] != "tag.delete" || body["outcome"] != Success ||
			body["details"].(map[string]any)["digest"] != "sha256:00" {
			t.Fatalf("webhook body: %v", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("webhook not called")
	}
	r.Close()
	if store.count() != 1 || store.events[0].Time.IsZero() {
		t.Fatalf("stored: %+v", store.events)
	}
}

// TestFailingWebhookNeverBlocks: a webhook that hangs or fails must not slow
// down Record, and every event is still stored.
func TestFailingWebhookNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer hook.Close()
	defer close(release)
	store := &memStore{}
	r := New(store, quiet, WithWebhook(hook.URL, 2, 200*time.Millisecond))
	start := time.Now()
	for range 50 {
		r.Record(context.Background(), models.AuditEvent{Action: "manifest.push"})
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Fatalf("Record blocked for %s", elapsed)
	}
	if store.count() != 50 {
		t.Fatalf("stored %d of 50 events", store.count())
	}
	if r.Dropped() == 0 {
		t.Fatal("a full queue should drop deliveries")
	}
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
}

func TestUnreachableWebhook(t *testing.T) {
	hook := httptest.NewServer(http.NotFoundHandler())
	url := hook.URL + "/secret-token-in-path"
	hook.Close() // nothing listens there any more
	store := &memStore{}
	r := New(store, quiet, WithWebhook(url, 10, 200*time.Millisecond))
	r.Record(context.Background(), models.AuditEvent{Action: "account.create"})
	r.Close()
	if store.count() != 1 {
		t.Fatal("event lost")
	}
}

// TestCloseIsBounded: shutting down with many events queued for a hanging
// webhook takes a bounded time.
func TestCloseIsBounded(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hook.Close()
	defer close(release)
	store := &memStore{}
	r := New(store, quiet, WithWebhook(hook.URL, 100, 30*time.Second))
	for range 100 {
		r.Record(context.Background(), models.AuditEvent{Action: "tag.create"})
	}
	start := time.Now()
	r.Close()
	if elapsed := time.Since(start); elapsed > shutdownGrace+3*time.Second {
		t.Fatalf("Close took %s", elapsed)
	}
	if store.count() != 100 {
		t.Fatalf("stored %d of 100", store.count())
	}
}

// ctxStore fails like a database call with a cancelled context.
type ctxStore struct{ memStore }

func (c *ctxStore) RecordAuditEvents(ctx context.Context, events ...models.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.memStore.RecordAuditEvents(ctx, events...)
}

// TestEventOutlivesRequest: an event is stored even when the request that
// made the change was cancelled (the client went away) in the meantime.
func TestEventOutlivesRequest(t *testing.T) {
	store := &ctxStore{}
	r := New(store, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Record(ctx, models.AuditEvent{Action: "manifest.push"})
	if store.count() != 1 {
		t.Fatal("event lost with the request's context")
	}
}
