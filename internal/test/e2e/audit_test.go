package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"keppel/internal/models"
	"keppel/internal/test"
)

// This file checks that every kind of change leaves an audit event that
// says who did what to which object, from where, with which outcome; that
// events can be read back with filters and paging; that no secret ends up
// in them; and that the audit webhook neither blocks nor loses changes.

// audEvent is the wire form of an audit event (API and webhook).
type audEvent struct {
	ID           int64           `json:"id"`
	Time         time.Time       `json:"time"`
	Actor        string          `json:"actor"`
	RemoteAddr   string          `json:"remote_addr"`
	Action       string          `json:"action"`
	AuthTenantID string          `json:"auth_tenant_id"`
	Account      string          `json:"account"`
	Target       string          `json:"target"`
	Outcome      string          `json:"outcome"`
	Reason       string          `json:"reason"`
	Details      json.RawMessage `json:"details"`
}

// audEvents reads events through GET /keppel/v1/audit with a query.
func audEvents(t *testing.T, s *test.Server, token string, query url.Values) ([]audEvent, []byte) {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/keppel/v1/audit?"+query.Encode(), token, nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET audit?%s: %d %s", query.Encode(), r.Status, r.Body)
	}
	var out struct {
		Events []audEvent `json:"events"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("audit answer %s: %v", r.Body, err)
	}
	return out.Events, r.Body
}

// audAll reads all events, newest first, by paging with before_id.
func audAll(t *testing.T, s *test.Server, token string) []audEvent {
	t.Helper()
	var all []audEvent
	q := url.Values{"limit": {"7"}}
	for {
		page, _ := audEvents(t, s, token, q)
		all = append(all, page...)
		if len(page) < 7 {
			return all
		}
		q.Set("before_id", strconv.FormatInt(page[len(page)-1].ID, 10))
	}
}

// audWant is what an expected event must say ("" fields are not checked,
// except Outcome, which defaults to success).
type audWant struct {
	Actor, Action, AuthTenantID, Account, Target, Outcome string
	// ReasonHas must be in the reason; DetailsHas in the details.
	ReasonHas, DetailsHas string
}

// audExpect finds the newest event with the action (and account, target)
// and checks it.
func audExpect(t *testing.T, s *test.Server, admin string, w audWant) audEvent {
	t.Helper()
	q := url.Values{"action": {w.Action}}
	if w.Account != "" {
		q.Set("account", w.Account)
	}
	if w.Actor != "" {
		q.Set("actor", w.Actor)
	}
	events, body := audEvents(t, s, admin, q)
	var found *audEvent
	for i, e := range events {
		if e.Action != w.Action || (w.Account != "" && e.Account != w.Account) || (w.Actor != "" && e.Actor != w.Actor) {
			t.Errorf("filter %s returned %+v", q.Encode(), e)
		}
		if found == nil && (w.Target == "" || e.Target == w.Target) {
			found = &events[i]
		}
	}
	if found == nil {
		t.Fatalf("no %s event for target %q: %s", w.Action, w.Target, body)
	}
	e := *found
	outcome := w.Outcome
	if outcome == "" {
		outcome = "success"
	}
	if e.Outcome != outcome {
		t.Errorf("%s: outcome %q, want %q (reason %q)", w.Action, e.Outcome, outcome, e.Reason)
	}
	if w.AuthTenantID != "" && e.AuthTenantID != w.AuthTenantID {
		t.Errorf("%s: auth_tenant_id %q, want %q", w.Action, e.AuthTenantID, w.AuthTenantID)
	}
	if e.RemoteAddr != "127.0.0.1" {
		t.Errorf("%s: remote_addr %q", w.Action, e.RemoteAddr)
	}
	if d := time.Since(e.Time); d < -time.Minute || d > time.Minute {
		t.Errorf("%s: time %s is not now", w.Action, e.Time)
	}
	if !strings.Contains(e.Reason, w.ReasonHas) || (outcome == "failure" && e.Reason == "") {
		t.Errorf("%s: reason %q, want it to contain %q", w.Action, e.Reason, w.ReasonHas)
	}
	if !strings.Contains(string(e.Details), w.DetailsHas) {
		t.Errorf("%s: details %s, want them to contain %s", w.Action, e.Details, w.DetailsHas)
	}
	return e
}

// audUserPassword is the wrong password of a failed login.
const audUserPassword = "aud-Secret-Password-42"

// TestAuditEvents makes every kind of change once and reads its event back.
func TestAuditEvents(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"aud": "atenant", "gone": "atenant"}})
	polAddUser(t, s, "aud-admin", "atenant", models.RoleAdmin)
	admin := s.Token(t)
	user := polToken(t, s, "aud-admin", "", "repository:aud/app:pull,push,delete", "repository:aud/empty:pull,push")
	// Registry tokens carry no management rights: the management API gets a
	// session token (one issued without scopes).
	userMgmt := polToken(t, s, "aud-admin", "")
	tokens := []string{admin, user, userMgmt}
	const app = "aud/app"
	a := polNewImage("aud-a", nil, 1)
	b := polNewImage("aud-b", nil, 1)
	polPushBlobs(t, s, user, app, a)
	polPushBlobs(t, s, user, app, b)
	v1 := "/keppel/v1/accounts/aud/repositories/app"

	tests := []struct {
		name   string
		change func(t *testing.T)
		want   audWant
	}{
		{"account.create", func(t *testing.T) {
			if r := polPutJSON(t, s, "/keppel/v1/accounts/aud-new", userMgmt, `{"account":{"auth_tenant_id":"atenant"}}`); r.Status != http.StatusCreated {
				t.Fatalf("PUT: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "account.create", AuthTenantID: "atenant", Account: "aud-new"}},

		{"account.update", func(t *testing.T) {
			body := `{"account":{"auth_tenant_id":"atenant","tag_policies":[{"match_repository":".*","match_tag":"locked","block_delete":true,"block_overwrite":true}]}}`
			if r := polPutJSON(t, s, "/keppel/v1/accounts/aud", userMgmt, body); r.Status != http.StatusOK {
				t.Fatalf("PUT: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "account.update", AuthTenantID: "atenant", Account: "aud"}},

		{"account.delete", func(t *testing.T) {
			if r := s.Do(t, http.MethodDelete, "/keppel/v1/accounts/gone", userMgmt, nil, nil); r.Status != http.StatusAccepted {
				t.Fatalf("DELETE: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "account.delete", AuthTenantID: "atenant", Account: "gone"}},

		{"quota.update", func(t *testing.T) {
			if r := polPutJSON(t, s, "/keppel/v1/quotas/atenant", admin, `{"manifests":{"quota":50}}`); r.Status != http.StatusOK {
				t.Fatalf("PUT: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "admin", Action: "quota.update", AuthTenantID: "atenant", DetailsHas: `"manifests":50`}},

		{"manifest.push", func(t *testing.T) {
			if r := polPutManifest(t, s, user, app, "v1", a.manifest); r.Status != http.StatusCreated {
				t.Fatalf("push: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "manifest.push", AuthTenantID: "atenant", Account: "aud", Target: app + "@" + a.digest}},

		{"tag.create", func(t *testing.T) {
			if r := polPutManifest(t, s, user, app, "locked", a.manifest); r.Status != http.StatusCreated {
				t.Fatalf("push: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "tag.create", AuthTenantID: "atenant", Account: "aud", Target: app + ":locked", DetailsHas: a.digest}},

		{"tag.move", func(t *testing.T) {
			if r := polPutManifest(t, s, user, app, "v1", b.manifest); r.Status != http.StatusCreated {
				t.Fatalf("push: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "tag.move", Account: "aud", Target: app + ":v1", DetailsHas: `"previous":"` + a.digest + `"`}},

		{"refused tag.move", func(t *testing.T) {
			if r := polPutManifest(t, s, user, app, "locked", b.manifest); r.Status != http.StatusConflict {
				t.Fatalf("push: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "manifest.push", Account: "aud", Target: app + ":locked", Outcome: "failure", ReasonHas: "tag_policies[0]"}},

		{"tag.delete via /v2", func(t *testing.T) {
			if r := s.Do(t, http.MethodDelete, "/v2/"+app+"/manifests/v1", user, nil, nil); r.Status != http.StatusAccepted {
				t.Fatalf("DELETE: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "tag.delete", AuthTenantID: "atenant", Account: "aud", Target: app + ":v1"}},

		{"refused tag.delete via /keppel/v1", func(t *testing.T) {
			if r := s.Do(t, http.MethodDelete, v1+"/_tags/locked", userMgmt, nil, nil); r.Status != http.StatusConflict {
				t.Fatalf("DELETE: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "tag.delete", Account: "aud", Target: app + ":locked", Outcome: "failure", ReasonHas: "tag_policies[0]"}},

		{"manifest.delete via /v2", func(t *testing.T) {
			if r := s.Do(t, http.MethodDelete, "/v2/"+app+"/manifests/"+b.digest, user, nil, nil); r.Status != http.StatusAccepted {
				t.Fatalf("DELETE: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "manifest.delete", AuthTenantID: "atenant", Account: "aud", Target: app + "@" + b.digest}},

		{"tag.delete via /keppel/v1", func(t *testing.T) {
			polPutJSON(t, s, "/keppel/v1/accounts/aud", admin, `{"account":{"auth_tenant_id":"atenant"}}`)
			if r := s.Do(t, http.MethodDelete, v1+"/_tags/locked", userMgmt, nil, nil); r.Status != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "tag.delete", Account: "aud", Target: app + ":locked"}},

		{"manifest.delete via /keppel/v1", func(t *testing.T) {
			if r := s.Do(t, http.MethodDelete, v1+"/_manifests/"+a.digest, admin, nil, nil); r.Status != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "admin", Action: "manifest.delete", AuthTenantID: "atenant", Account: "aud", Target: app + "@" + a.digest}},

		{"repository.delete", func(t *testing.T) {
			if r := s.Do(t, http.MethodDelete, v1, userMgmt, nil, nil); r.Status != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", r.Status, r.Body)
			}
		}, audWant{Actor: "aud-admin", Action: "repository.delete", AuthTenantID: "atenant", Account: "aud", Target: app}},

		{"login.failure", func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/keppel/v1/auth", nil)
			req.SetBasicAuth("aud-admin", audUserPassword)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("login with a wrong password: %d", resp.StatusCode)
			}
		}, audWant{Actor: "aud-admin", Action: "login.failure", Outcome: "failure", ReasonHas: "password"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := audAll(t, s, admin)
			tc.change(t)
			e := audExpect(t, s, admin, tc.want)
			if len(before) > 0 && e.ID <= before[0].ID {
				t.Errorf("the %s event (id %d) is not new (newest before: %d)", tc.want.Action, e.ID, before[0].ID)
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		all, _ := audEvents(t, s, admin, url.Values{"limit": {"1000"}})
		paged := audAll(t, s, admin)
		if len(all) < len(tests) || len(paged) != len(all) {
			t.Fatalf("%d events in one page, %d by paging", len(all), len(paged))
		}
		for i := range all {
			if all[i].ID != paged[i].ID {
				t.Errorf("event %d: id %d in one page, %d by paging", i, all[i].ID, paged[i].ID)
			}
			if i > 0 && all[i].ID >= all[i-1].ID {
				t.Errorf("events not newest first at %d", i)
			}
		}
		// Filters combine.
		events, _ := audEvents(t, s, admin, url.Values{"actor": {"admin"}, "account": {"aud"}})
		for _, e := range events {
			if e.Actor != "admin" || e.Account != "aud" {
				t.Errorf("actor+account filter returned %+v", e)
			}
		}
		if len(events) == 0 {
			t.Errorf("no events by admin in aud")
		}
		// Tenant admins read their tenant's events.
		events, _ = audEvents(t, s, userMgmt, url.Values{"auth_tenant_id": {"atenant"}, "action": {"tag.move"}})
		if len(events) != 1 {
			t.Errorf("tenant admin reads %d tag.move events", len(events))
		}
	})

	t.Run("no secrets", func(t *testing.T) {
		_, body := audEvents(t, s, admin, url.Values{"limit": {"1000"}})
		secrets := []string{test.AdminPassword, polPassword, audUserPassword}
		for _, token := range tokens {
			secrets = append(secrets, token)
			parts := strings.Split(token, ".")
			secrets = append(secrets, parts[len(parts)-1])
		}
		for _, secret := range secrets {
			if strings.Contains(string(body), secret) {
				t.Errorf("an audit event contains the secret %q", secret)
			}
		}
	})
}

// audWebhook is a webhook receiver for tests.
type audWebhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	// bodies are the events received, raw.
	bodies [][]byte
	calls  int
}

func (w *audWebhook) received() ([][]byte, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.bodies...), w.calls
}

// audNewWebhook starts a receiver on 127.0.0.1 that answers with handle.
func audNewWebhook(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *audWebhook {
	t.Helper()
	wh := &audWebhook{}
	wh.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		wh.mu.Lock()
		wh.calls++
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/json" {
			wh.bodies = append(wh.bodies, body)
		}
		wh.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(wh.srv.Close)
	return wh
}

// audChanges makes a series of changes, each of which must answer within
// a second or two, and returns the actions they must have recorded.
func audChanges(t *testing.T, s *test.Server) []string {
	t.Helper()
	admin := s.Token(t, "repository:hook/app:pull,push,delete")
	a := polNewImage("hook-a", nil, 1)
	b := polNewImage("hook-b", nil, 1)
	polPushBlobs(t, s, admin, "hook/app", a)
	polPushBlobs(t, s, admin, "hook/app", b)
	steps := []struct {
		what   string
		status int
		do     func() test.Response
	}{
		{"push", http.StatusCreated, func() test.Response { return polPutManifest(t, s, admin, "hook/app", "v1", a.manifest) }},
		{"move", http.StatusCreated, func() test.Response { return polPutManifest(t, s, admin, "hook/app", "v1", b.manifest) }},
		{"tag", http.StatusCreated, func() test.Response { return polPutManifest(t, s, admin, "hook/app", "v2", a.manifest) }},
		{"delete tag", http.StatusAccepted, func() test.Response {
			return s.Do(t, http.MethodDelete, "/v2/hook/app/manifests/v2", admin, nil, nil)
		}},
		{"delete manifest", http.StatusAccepted, func() test.Response {
			return s.Do(t, http.MethodDelete, "/v2/hook/app/manifests/"+a.digest, admin, nil, nil)
		}},
		{"create account", http.StatusCreated, func() test.Response {
			return polPutJSON(t, s, "/keppel/v1/accounts/hook-new", admin, `{"account":{"auth_tenant_id":"htenant"}}`)
		}},
		{"quota", http.StatusOK, func() test.Response {
			return polPutJSON(t, s, "/keppel/v1/quotas/htenant", admin, `{"manifests":{"quota":10}}`)
		}},
		{"delete account", http.StatusAccepted, func() test.Response {
			return s.Do(t, http.MethodDelete, "/keppel/v1/accounts/hook-new", admin, nil, nil)
		}},
	}
	start := time.Now()
	for _, st := range steps {
		t0 := time.Now()
		r := st.do()
		if r.Status != st.status {
			t.Fatalf("%s: %d %s", st.what, r.Status, r.Body)
		}
		// The webhook client waits 10 s before it gives up; a change that
		// waited for the webhook would take that long.
		if d := time.Since(t0); d > 3*time.Second {
			t.Errorf("%s took %s", st.what, d)
		}
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("the changes took %s", d)
	}
	// The content is there: the changes happened.
	if got := polResolves(t, s, admin, "hook/app", "v1"); got != b.digest {
		t.Errorf("v1 = %q, want %s", got, b.digest)
	}
	// The first event is the creation of the account "hook" by test.NewServer.
	return []string{"account.create", "manifest.push", "tag.create", "manifest.push", "tag.move", "tag.create", "tag.delete", "manifest.delete",
		"account.create", "quota.update", "account.delete"}
}

// audCheckStored checks that the events of audChanges are all stored, in order.
func audCheckStored(t *testing.T, s *test.Server, want []string) {
	t.Helper()
	events, body := audEvents(t, s, s.Token(t), url.Values{"limit": {"1000"}})
	var got []string
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Account == "hook" || events[i].Account == "hook-new" || events[i].AuthTenantID == "htenant" {
			got = append(got, events[i].Action)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("stored events %v, want %v:\n%s", got, want, body)
	}
}

// TestAuditWebhookFailures checks that a webhook that hangs or fails never
// blocks or loses a change or its stored event.
func TestAuditWebhookFailures(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"hangs", "fails"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			wh := audNewWebhook(t, func(w http.ResponseWriter, r *http.Request) {
				if mode == "hangs" {
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}
				http.Error(w, "webhook broken", http.StatusInternalServerError)
			})
			s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"hook": "htenant"},
				AuditWebhookURL: wh.srv.URL + "/events"})
			// Runs before the server is closed (cleanups run last-in first-out).
			t.Cleanup(func() { close(release) })
			want := audChanges(t, s)
			audCheckStored(t, s, want)
			if _, calls := wh.received(); calls == 0 {
				t.Errorf("the webhook was never called")
			}
		})
	}
}

// TestAuditWebhookDelivers checks that a working webhook receives every
// event as JSON.
func TestAuditWebhookDelivers(t *testing.T) {
	t.Parallel()
	wh := audNewWebhook(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"hook": "htenant"},
		AuditWebhookURL: wh.srv.URL + "/events"})
	want := audChanges(t, s)
	audCheckStored(t, s, want)

	// Delivery is asynchronous: wait for it.
	var got []audEvent
	deadline := time.Now().Add(15 * time.Second)
	for {
		bodies, _ := wh.received()
		got = got[:0]
		for _, b := range bodies {
			var e audEvent
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("webhook body %s: %v", b, err)
			}
			if e.Account == "hook" || e.Account == "hook-new" || e.AuthTenantID == "htenant" {
				got = append(got, e)
			}
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var actions []string
	for _, e := range got {
		actions = append(actions, e.Action)
		if e.Actor != "admin" || e.Outcome != "success" || e.RemoteAddr != "127.0.0.1" || e.Time.IsZero() {
			t.Errorf("webhook event %+v", e)
		}
		if strings.HasPrefix(e.Action, "manifest.") || strings.HasPrefix(e.Action, "tag.") {
			if !strings.HasPrefix(e.Target, "hook/app") {
				t.Errorf("webhook event %s has target %q", e.Action, e.Target)
			}
		}
	}
	if strings.Join(actions, " ") != strings.Join(want, " ") {
		t.Errorf("webhook received %v, want %v", actions, want)
	}
	bodies, _ := wh.received()
	for _, b := range bodies {
		if strings.Contains(string(b), test.AdminPassword) {
			t.Errorf("webhook event contains the admin password: %s", b)
		}
	}
}
