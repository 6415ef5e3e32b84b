package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"keppel/internal/auth"
)

// BenchmarkVerify measures the verification of a token, as done on every
// authenticated request.
func BenchmarkVerify(b *testing.B) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ts := auth.NewTokenService("registry.example.com", time.Hour, key, nil, time.Now)
	token, _, err := ts.Issue("alice", false, auth.Grants{auth.RepositoryScope("team/app", "pull", "push")})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := ts.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifiedTokensStillExpire: remembering a verified token must not
// extend its life.
func TestVerifiedTokensStillExpire(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	ts := auth.NewTokenService("registry.example.com", time.Hour, key, nil, func() time.Time { return now })
	token, _, err := ts.Issue("alice", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := ts.Verify(token); err != nil {
			t.Fatalf("fresh token: %v", err)
		}
	}
	now = now.Add(time.Hour + time.Minute)
	if _, err := ts.Verify(token); err == nil {
		t.Fatal("an expired token was accepted from the cache")
	}
	// A token of another service never verifies, cached or not.
	other := auth.NewTokenService("other.example.com", time.Hour, key, nil, func() time.Time { return now })
	foreign, _, _ := other.Issue("alice", false, nil)
	if _, err := ts.Verify(foreign); err == nil {
		t.Fatal("foreign token accepted")
	}
}
