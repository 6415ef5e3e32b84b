package e2e

import (
	"encoding/json"
	"testing"

	"keppel/internal/test"
)

// TestLastPulledAt: pulls are not written on the pull path but batched, and
// show up as last_pulled_at in the management API after a flush.
func TestLastPulledAt(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{})
	token := s.Token(t, "repository:test/pulled:pull,push")
	f := setupPulledImage(t, s, token)
	before := s.Snapshot(t)
	for range 3 {
		if r := s.Do(t, "GET", "/v2/test/pulled/manifests/v1", token, nil, nil); r.Status != 200 {
			t.Fatalf("pull: %d", r.Status)
		}
	}
	if r := s.Do(t, "HEAD", "/v2/test/pulled/manifests/"+f, token, nil, nil); r.Status != 200 {
		t.Fatalf("head: %d", r.Status)
	}
	if after := s.Snapshot(t); after != before {
		t.Fatalf("pulls wrote to the database before a flush:\n%s", test.DiffLines(before, after))
	}
	s.FlushPulls(t)
	r := s.Do(t, "GET", "/keppel/v1/accounts/test/repositories/pulled/_manifests", s.Token(t), nil, nil)
	var body struct {
		Manifests []struct {
			LastPulledAt *int64 `json:"last_pulled_at"`
			Tags         []struct {
				Name         string `json:"name"`
				LastPulledAt *int64 `json:"last_pulled_at"`
			} `json:"tags"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Manifests) != 1 {
		t.Fatalf("manifests: %d %s", r.Status, r.Body)
	}
	m := body.Manifests[0]
	if m.LastPulledAt == nil || len(m.Tags) != 1 || m.Tags[0].LastPulledAt == nil {
		t.Fatalf("last_pulled_at not recorded: %s", r.Body)
	}
}

func setupPulledImage(t *testing.T, s *test.Server, token string) string {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := randomBytes(t, 100)
	cd := pushBlob(t, s, "test/pulled", token, config)
	ld := pushBlob(t, s, "test/pulled", token, layer)
	m := manifestJSON(cd, ld, len(config), len(layer))
	putManifest(t, s, "test/pulled", token, "v1", m)
	return digestOf(m)
}
