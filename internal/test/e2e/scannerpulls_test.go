package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"keppel/internal/auth"
	"keppel/internal/test"
)

// scannerToken issues a scanner token for the repository with the
// server's own signing key, as the server does for its scanner.
func scannerToken(t *testing.T, s *test.Server, repository string) string {
	t.Helper()
	key, err := auth.LoadOrCreateKey(filepath.Join(s.DataDir, "token-key.pem"), false)
	if err != nil {
		t.Fatal(err)
	}
	token, err := auth.NewTokenService(s.Host, time.Hour, key, nil, time.Now).IssueScannerToken(repository, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestScannerPullsAreNotUserPulls: the scanner's token pulls the one
// repository, and its pulls leave last_pulled_at alone; the scanner's name
// cannot be logged in with.
func TestScannerPullsAreNotUserPulls(t *testing.T) {
	t.Parallel()
	s := test.NewServer(t, test.Options{})
	token := s.Token(t, "repository:test/pulled:pull,push")
	digest := setupPulledImage(t, s, token)
	scanner := scannerToken(t, s, "test/pulled")
	for _, ref := range []string{"v1", digest} {
		if r := s.Do(t, "GET", "/v2/test/pulled/manifests/"+ref, scanner, nil, nil); r.Status != http.StatusOK {
			t.Fatalf("scanner pull of %s: %d %s", ref, r.Status, r.Body)
		}
	}
	if r := s.Do(t, "GET", "/v2/test/other/manifests/v1", scanner, nil, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("scanner pull from another repository: %d", r.Status)
	}
	if r := s.Do(t, "DELETE", "/v2/test/pulled/manifests/"+digest, scanner, nil, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("scanner delete: %d", r.Status)
	}
	if r := s.Do(t, "GET", "/keppel/v1/accounts/test/repositories/pulled/_manifests", scanner, nil, nil); r.Status == http.StatusOK {
		t.Errorf("scanner token on the management API: %d", r.Status)
	}
	s.FlushPulls(t)
	r := s.Do(t, "GET", "/keppel/v1/accounts/test/repositories/pulled/_manifests", s.Token(t), nil, nil)
	var body struct {
		Manifests []struct {
			LastPulledAt *int64 `json:"last_pulled_at"`
			Tags         []struct {
				LastPulledAt *int64 `json:"last_pulled_at"`
			} `json:"tags"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Manifests) != 1 || len(body.Manifests[0].Tags) != 1 {
		t.Fatalf("manifests: %d %s", r.Status, r.Body)
	}
	if m := body.Manifests[0]; m.LastPulledAt != nil || m.Tags[0].LastPulledAt != nil {
		t.Fatalf("the scanner's pulls were recorded: %s", r.Body)
	}

	// A user pull still counts.
	if r := s.Do(t, "GET", "/v2/test/pulled/manifests/v1", token, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("user pull: %d", r.Status)
	}
	s.FlushPulls(t)
	r = s.Do(t, "GET", "/keppel/v1/accounts/test/repositories/pulled/_manifests", s.Token(t), nil, nil)
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Manifests) != 1 || body.Manifests[0].LastPulledAt == nil {
		t.Fatalf("the user's pull was not recorded: %s", r.Body)
	}

	q := url.Values{"service": {s.Host}, "scope": {"repository:test/pulled:pull"}}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/keppel/v1/auth?"+q.Encode(), nil)
	req.SetBasicAuth(auth.ScannerSubject, "whatever")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("a token was issued for the scanner's name")
	}
}
