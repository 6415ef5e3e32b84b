package auth_test

import (
	"strings"
	"testing"
	"time"

	"keppel/internal/auth"
)

func TestScannerTokens(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	c := &clock{now: now}
	ts := auth.NewTokenService(testService, time.Hour, newKey(t), nil, c.Now)
	token, err := ts.IssueScannerToken("test/app", 11*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := ts.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if !auth.IsScanner(claims) || claims.Subject != auth.ScannerSubject || !claims.ExpiresAt.Equal(now.Add(11*time.Minute)) {
		t.Fatalf("claims %+v", claims)
	}
	if !claims.Access.Allows("repository", "test/app", auth.ActionPull) || claims.Access.Allows("repository", "test/app", auth.ActionPush) ||
		claims.Access.Allows("repository", "test/other", auth.ActionPull) || len(claims.Access) != 1 {
		t.Fatalf("grants %+v", claims.Access)
	}
	c.now = now.Add(12 * time.Minute)
	if _, err := ts.Verify(token); err == nil {
		t.Fatal("an expired scanner token verified")
	}

	for _, lifetime := range []time.Duration{0, -time.Minute, 2 * time.Hour} {
		if _, err := ts.IssueScannerToken("test/app", lifetime); err == nil {
			t.Errorf("lifetime %s accepted", lifetime)
		}
	}
	if _, err := ts.IssueScannerToken("", time.Minute); err == nil {
		t.Error("a scanner token without a repository")
	}

	// Only the server itself issues tokens to the scanner's name.
	if _, _, err := ts.IssueFor(&auth.Identity{Username: auth.ScannerSubject}, nil); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("IssueFor the scanner's name: %v", err)
	}
	if _, _, err := ts.Issue(auth.ScannerSubject, false, nil); err == nil {
		t.Error("Issue for the scanner's name")
	}
	user, _, err := ts.IssueFor(&auth.Identity{Username: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if claims, err := ts.Verify(user); err != nil || auth.IsScanner(claims) || auth.IsScanner(nil) {
		t.Errorf("a user's token counts as the scanner's: %v", err)
	}
}
