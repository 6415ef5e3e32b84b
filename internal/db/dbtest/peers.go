package dbtest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"keppel/internal/db"
	"keppel/internal/models"
)

// testPeers walks a peer through the rotation rule: a delivered password
// becomes the previous one, an undelivered one is replaced and the
// previous one stays.
func testPeers(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	const host = "keppel.eu-de-2.example.com"
	const hour = time.Hour

	_, err := s.GetPeer(ctx, host)
	wantErr(t, "GetPeer of an unknown host", err, db.ErrNotFound)
	marked, err := s.MarkPeerPasswordDelivered(ctx, host, "h0")
	wantErr(t, "MarkPeerPasswordDelivered of an unknown host", err, nil)
	if marked {
		t.Fatal("MarkPeerPasswordDelivered marked a password of an unknown host")
	}

	issue := func(hash string, at time.Time, wantStored bool) {
		t.Helper()
		stored, err := s.IssuePeerPassword(ctx, host, hash, at, at.Add(-hour), at.Add(-time.Minute))
		wantErr(t, "IssuePeerPassword("+hash+")", err, nil)
		if stored != wantStored {
			t.Fatalf("IssuePeerPassword(%s) stored = %v, want %v", hash, stored, wantStored)
		}
	}
	deliver := func(hash string, want bool) {
		t.Helper()
		marked, err := s.MarkPeerPasswordDelivered(ctx, host, hash)
		wantErr(t, "MarkPeerPasswordDelivered("+hash+")", err, nil)
		if marked != want {
			t.Fatalf("MarkPeerPasswordDelivered(%s) = %v, want %v", hash, marked, want)
		}
	}
	want := func(what string, current, previous string, delivered bool, issuedAt time.Time) {
		t.Helper()
		p, err := s.GetPeer(ctx, host)
		wantErr(t, "GetPeer", err, nil)
		if p.Hostname != host || p.OurPasswordHash != current || p.OurPreviousPasswordHash != previous ||
			p.OurPasswordDelivered != delivered || p.OurPasswordIssuedAt == nil || !p.OurPasswordIssuedAt.Equal(issuedAt) {
			t.Fatalf("%s: got %+v (issued at %v), want current %q, previous %q, delivered %v, issued at %v",
				what, p, p.OurPasswordIssuedAt, current, previous, delivered, issuedAt)
		}
	}

	t0 := f.tick()
	issue("h1", t0, true)
	want("first password", "h1", "", false, t0)
	deliver("h1", true)
	want("first password delivered", "h1", "", true, t0)

	// Not due yet: neither an hour old nor undelivered.
	issue("h-early", t0.Add(30*time.Minute), false)
	want("after an early rotation", "h1", "", true, t0)

	t1 := t0.Add(hour + time.Second)
	issue("h2", t1, true)
	want("second password", "h2", "h1", false, t1)
	deliver("h1", false) // a stale confirmation changes nothing
	want("after a stale confirmation", "h2", "h1", false, t1)

	// h2 was never delivered: after a minute it is due again, and its
	// replacement keeps h1, which the peer still holds.
	issue("h-too-soon", t1.Add(30*time.Second), false)
	t2 := t1.Add(2 * time.Minute)
	issue("h3", t2, true)
	want("replacement of an undelivered password", "h3", "h1", false, t2)
	deliver("h3", true)
	t3 := t2.Add(hour + time.Second)
	issue("h4", t3, true)
	want("rotation after the replacement", "h4", "h3", false, t3)

	// The other direction: the password the peer issued to us.
	p, _ := s.GetPeer(ctx, host)
	if p.TheirPasswordSealed != "" || p.TheirPasswordReceivedAt != nil {
		t.Fatalf("no password was received, but the row has %+v", p)
	}
	r1 := f.tick()
	wantErr(t, "StoreReceivedPeerPassword", s.StoreReceivedPeerPassword(ctx, host, "sealed-1", r1), nil)
	r2 := f.tick()
	wantErr(t, "StoreReceivedPeerPassword again", s.StoreReceivedPeerPassword(ctx, host, "sealed-2", r2), nil)
	p, err = s.GetPeer(ctx, host)
	wantErr(t, "GetPeer", err, nil)
	if p.TheirPasswordSealed != "sealed-2" || p.TheirPasswordReceivedAt == nil || !p.TheirPasswordReceivedAt.Equal(r2) {
		t.Fatalf("after two received passwords: %+v", p)
	}
	want("our side after receiving", "h4", "h3", false, t3)

	// A peer that sent a password first has a row without one of ours:
	// it is due at once.
	other := "127.0.0.3:8080"
	wantErr(t, "StoreReceivedPeerPassword(other)", s.StoreReceivedPeerPassword(ctx, other, "sealed", r2), nil)
	p, err = s.GetPeer(ctx, other)
	wantErr(t, "GetPeer(other)", err, nil)
	wantEqual(t, "new peer row", p, models.Peer{Hostname: other, TheirPasswordSealed: "sealed", TheirPasswordReceivedAt: &r2})
	stored, err := s.IssuePeerPassword(ctx, other, "o1", r2, r2.Add(-hour), r2.Add(-time.Minute))
	if err != nil || !stored {
		t.Fatalf("IssuePeerPassword for a peer without a password of ours: %v, %v", stored, err)
	}
	if p, _ := s.GetPeer(ctx, other); p.OurPasswordHash != "o1" || p.TheirPasswordSealed != "sealed" {
		t.Fatalf("after issuing: %+v", p)
	}
}

// testConcurrentPeerRotation lets several callers rotate the same peer at
// once, as several janitor processes would: exactly one may succeed.
func testConcurrentPeerRotation(t *testing.T, s db.Store) {
	ctx := t.Context()
	f := newFixture(s)
	for round, host := range []string{"new.example.com", "old.example.com"} {
		now := f.tick()
		if round == 1 {
			// a peer whose delivered password is due
			if _, err := s.IssuePeerPassword(ctx, host, "old", now.Add(-2*time.Hour), now.Add(-3*time.Hour), now.Add(-3*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.MarkPeerPasswordDelivered(ctx, host, "old"); err != nil {
				t.Fatal(err)
			}
		}
		const callers = 8
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			stored []string
		)
		for i := range callers {
			wg.Go(func() {
				hash := fmt.Sprintf("h%d", i)
				ok, err := s.IssuePeerPassword(ctx, host, hash, now, now.Add(-time.Hour), now.Add(-time.Minute))
				if err != nil {
					t.Errorf("IssuePeerPassword(%s): %v", hash, err)
					return
				}
				if ok {
					mu.Lock()
					stored = append(stored, hash)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(stored) != 1 {
			t.Fatalf("%s: %d concurrent rotations succeeded (%v), want exactly 1", host, len(stored), stored)
		}
		p, err := s.GetPeer(ctx, host)
		wantErr(t, "GetPeer", err, nil)
		wantPrevious := ""
		if round == 1 {
			wantPrevious = "old"
		}
		if p.OurPasswordHash != stored[0] || p.OurPreviousPasswordHash != wantPrevious {
			t.Fatalf("%s: after the race %+v, want current %s and previous %q", host, p, stored[0], wantPrevious)
		}
	}
}
