package test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ncw/swift/v2"
)

// SwiftServer is a real OpenStack Swift for tests, as scripts/swift-aio.sh
// starts it (scripts/test.sh exports its KEPPEL_TEST_SWIFT_* variables).
type SwiftServer struct {
	AuthURL, User, Key string
	// Conn is an authenticated connection for checks and cleanup.
	Conn *swift.Connection
}

// SwiftFromEnvironment returns the Swift server of KEPPEL_TEST_SWIFT_AUTH_URL
// (with KEPPEL_TEST_SWIFT_USER and KEPPEL_TEST_SWIFT_KEY). Without it the
// test is skipped, unless KEPPEL_TEST_REQUIRE_SWIFT is set (as
// scripts/test.sh does), in which case it fails.
func SwiftFromEnvironment(t testing.TB) *SwiftServer {
	t.Helper()
	s := &SwiftServer{AuthURL: os.Getenv("KEPPEL_TEST_SWIFT_AUTH_URL"), User: os.Getenv("KEPPEL_TEST_SWIFT_USER"), Key: os.Getenv("KEPPEL_TEST_SWIFT_KEY")}
	if s.AuthURL == "" {
		if os.Getenv("KEPPEL_TEST_REQUIRE_SWIFT") != "" {
			t.Fatal("KEPPEL_TEST_SWIFT_AUTH_URL is not set: run scripts/test.sh, which starts Swift")
		}
		t.Skip("KEPPEL_TEST_SWIFT_AUTH_URL is not set (scripts/test.sh starts Swift); skipping the tests against a real Swift")
	}
	s.Conn = &swift.Connection{AuthUrl: s.AuthURL, UserName: s.User, ApiKey: s.Key}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Conn.Authenticate(ctx); err != nil {
		t.Fatalf("authenticating at the test Swift %s: %v", s.AuthURL, err)
	}
	return s
}

// ContainerPrefix returns a fresh container name prefix and deletes every
// container with it (and their objects) when the test ends.
func (s *SwiftServer) ContainerPrefix(t testing.TB) string {
	t.Helper()
	prefix := "keppel-test-" + randomHex(6) + "-"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		names, err := s.Conn.ContainerNamesAll(ctx, &swift.ContainersOpts{Prefix: prefix})
		if err != nil {
			t.Errorf("listing test containers: %v", err)
			return
		}
		for _, c := range names {
			objs, _ := s.Conn.ObjectNamesAll(ctx, c, nil)
			for _, o := range objs {
				_ = s.Conn.ObjectDelete(ctx, c, o)
			}
			if err := s.Conn.ContainerDelete(ctx, c); err != nil {
				t.Errorf("deleting test container %s: %v", c, err)
			}
		}
	})
	return prefix
}

// Env returns the KEPPEL_* variables that point a keppel process at this
// Swift, with containers of a fresh prefix that are deleted after the test.
func (s *SwiftServer) Env(t testing.TB) []string {
	t.Helper()
	return []string{
		"KEPPEL_STORAGE_DRIVER=swift",
		"KEPPEL_SWIFT_AUTH_URL=" + s.AuthURL,
		"KEPPEL_SWIFT_USER_NAME=" + s.User,
		"KEPPEL_SWIFT_PASSWORD=" + s.Key,
		"KEPPEL_SWIFT_CONTAINER_PREFIX=" + s.ContainerPrefix(t),
	}
}
