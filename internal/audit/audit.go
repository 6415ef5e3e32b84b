// Package audit records who changed what, when, from where, and with which
// outcome. Events are written to the metadata store in the request that
// causes them, and optionally posted to a webhook in the background: a slow
// or failing webhook never blocks or loses the change or the stored event.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"keppel/internal/models"
)

// Store is where events are kept (the metadata store implements it).
type Store interface {
	RecordAuditEvents(ctx context.Context, events ...models.AuditEvent) error
}

// Outcomes of events.
const (
	Success = "success"
	Failure = "failure"
)

// Recorder records events.
type Recorder struct {
	store Store
	log   *slog.Logger
	now   func() time.Time

	webhookURL string
	client     *http.Client
	queue      chan models.AuditEvent
	dropped    atomic.Int64
	wg         sync.WaitGroup
	stopOnce   sync.Once
	stop       chan struct{}
	// ctx ends in-flight deliveries when Close is called.
	ctx    context.Context
	cancel context.CancelFunc
}

// Option configures a Recorder.
type Option func(*Recorder)

// WithWebhook posts every event as JSON to url. Up to queueSize events wait
// for delivery; beyond that, webhook deliveries (not the stored events) are
// dropped and counted.
func WithWebhook(url string, queueSize int, timeout time.Duration) Option {
	return func(r *Recorder) {
		r.webhookURL = url
		r.queue = make(chan models.AuditEvent, queueSize)
		r.client = &http.Client{Timeout: timeout}
	}
}

// WithClock injects the clock.
func WithClock(now func() time.Time) Option { return func(r *Recorder) { r.now = now } }

// New returns a recorder. Call Close to stop webhook delivery.
func New(store Store, log *slog.Logger, opts ...Option) *Recorder {
	r := &Recorder{store: store, log: log, now: time.Now, stop: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(r)
	}
	if r.queue != nil {
		r.wg.Add(1)
		go r.deliver()
	}
	return r
}

// Record stores the events of one request in one transaction (filling in
// the time if unset) and queues them for the webhook. An error storing them
// is logged, not returned: the change the events describe has happened and
// must not be reported as failed.
func (r *Recorder) Record(ctx context.Context, events ...models.AuditEvent) {
	if len(events) == 0 {
		return
	}
	now := r.now()
	for i := range events {
		if events[i].Time.IsZero() {
			events[i].Time = now
		}
		if events[i].Outcome == "" {
			events[i].Outcome = Success
		}
	}
	// The change has happened: store its events even if the client has
	// gone away in the meantime (but not forever).
	storeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.store.RecordAuditEvents(storeCtx, events...); err != nil {
		r.log.Error("cannot store audit events", "action", events[0].Action, "actor", events[0].Actor,
			"events", len(events), "error", err)
	}
	r.Deliver(events...)
}

// Deliver queues events that were stored already (with the change they
// describe, in its transaction) for the webhook.
func (r *Recorder) Deliver(events ...models.AuditEvent) {
	if r.queue == nil {
		return
	}
	for _, e := range events {
		select {
		case r.queue <- e:
		default:
			n := r.dropped.Add(1)
			r.log.Warn("audit webhook queue is full; delivery dropped (the event is stored)", "action", e.Action, "dropped_total", n)
		}
	}
}

// Dropped returns how many webhook deliveries were dropped.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Close stops webhook delivery after the queued events had one attempt.
func (r *Recorder) Close() {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.cancel()
	})
	r.wg.Wait()
}

// webhookEvent is the JSON posted to the webhook.
type webhookEvent struct {
	ID           int64           `json:"id,omitempty"`
	Time         time.Time       `json:"time"`
	Actor        string          `json:"actor"`
	RemoteAddr   string          `json:"remote_addr,omitempty"`
	Action       string          `json:"action"`
	AuthTenantID string          `json:"auth_tenant_id,omitempty"`
	AccountName  string          `json:"account,omitempty"`
	Target       string          `json:"target,omitempty"`
	Outcome      string          `json:"outcome"`
	Reason       string          `json:"reason,omitempty"`
	Details      json.RawMessage `json:"details,omitempty"`
}

// Render returns the wire form of an event (also used by the API).
func Render(e models.AuditEvent) any {
	w := webhookEvent{ID: e.ID, Time: e.Time.UTC(), Actor: e.Actor, RemoteAddr: e.RemoteAddr, Action: e.Action,
		AuthTenantID: e.AuthTenantID, AccountName: e.AccountName, Target: e.Target, Outcome: e.Outcome, Reason: e.Reason}
	if e.DetailsJSON != "" && json.Valid([]byte(e.DetailsJSON)) {
		w.Details = json.RawMessage(e.DetailsJSON)
	}
	return w
}

func (r *Recorder) deliver() {
	defer r.wg.Done()
	for {
		select {
		case e := <-r.queue:
			r.post(e)
		case <-r.stop:
			// On shutdown, queued events get one attempt within a bounded
			// time; what does not make it is dropped (it is stored).
			deadline := time.Now().Add(shutdownGrace)
			for {
				select {
				case e := <-r.queue:
					if time.Now().After(deadline) {
						r.dropped.Add(1)
						continue
					}
					r.postOnceBefore(e, deadline)
				default:
					return
				}
			}
		}
	}
}

// shutdownGrace bounds how long Close waits for queued deliveries.
const shutdownGrace = 5 * time.Second

// postOnceBefore makes one delivery attempt that ends by the deadline.
func (r *Recorder) postOnceBefore(e models.AuditEvent, deadline time.Time) {
	body, err := json.Marshal(Render(e))
	if err != nil {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := r.postOnce(ctx, body); err != nil {
		r.dropped.Add(1)
		r.log.Warn("audit webhook delivery failed at shutdown (the event is stored)", "action", e.Action, "error", err)
	}
}

// post tries to deliver one event, with a few retries.
func (r *Recorder) post(e models.AuditEvent) {
	body, err := json.Marshal(Render(e))
	if err != nil {
		r.log.Error("cannot encode audit event", "error", err)
		return
	}
	const attempts = 3
	for i := 0; i < attempts; i++ {
		if err = r.postOnce(r.ctx, body); err == nil {
			return
		}
		if r.ctx.Err() != nil {
			r.dropped.Add(1)
			return // shutting down: the event is stored, delivery is given up
		}
		if i == attempts-1 {
			break
		}
		select {
		case <-r.stop:
			i = attempts // shutting down: no more waiting
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		}
	}
	r.log.Warn("audit webhook delivery failed (the event is stored)", "action", e.Action, "error", err)
}

func (r *Recorder) postOnce(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.webhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		// The URL may carry a secret: report only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("posting to webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
	}
	return nil
}
