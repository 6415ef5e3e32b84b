package healthmonitor_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"keppel/internal/healthmonitor"
	"keppel/internal/test"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// metrics scrapes the monitor's /metrics and returns the samples by name
// with labels, e.g. `keppel_healthmonitor_checks_total{result="success"}`.
func metrics(t *testing.T, m *healthmonitor.Monitor) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

const (
	result    = "keppel_healthmonitor_result"
	lastOK    = "keppel_healthmonitor_last_success_timestamp_seconds"
	durations = "keppel_healthmonitor_duration_seconds_count"
	successes = `keppel_healthmonitor_checks_total{result="success"}`
	failures  = `keppel_healthmonitor_checks_total{result="failure"}`
)

func TestCheckAgainstRegistry(t *testing.T) {
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"healthmonitor": "tenant1"}})
	m, err := healthmonitor.New(healthmonitor.Config{Registry: s.URL, Username: "admin", Password: test.AdminPassword,
		Interval: time.Minute, Timeout: 30 * time.Second, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	got := metrics(t, m)
	if got[result] != 0 || got[successes] != 0 || got[failures] != 0 {
		t.Errorf("metrics before the first check: %v", got)
	}
	before := time.Now()
	if err := m.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	got = metrics(t, m)
	if got[result] != 1 || got[successes] != 1 || got[failures] != 0 || got[durations] != 1 ||
		got[lastOK] < float64(before.Unix()) {
		t.Errorf("metrics after a successful check: %v", got)
	}

	// The image is there for anyone to pull.
	ref, err := name.ParseReference(s.Host+"/healthmonitor/check:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: test.AdminPassword})
	first, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatalf("pulling the check image: %v", err)
	}
	firstDigest, err := first.Digest()
	if err != nil {
		t.Fatal(err)
	}

	// The next check replaces it.
	if err := m.Check(t.Context()); err != nil {
		t.Fatalf("second Check: %v", err)
	}
	if got := metrics(t, m); got[successes] != 2 {
		t.Errorf("metrics after two checks: %v", got)
	}
	old, err := name.NewDigest(s.Host+"/healthmonitor/check@"+firstDigest.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(old, auth); err == nil {
		t.Error("the image of the first check is still there")
	}
	if _, err := remote.Image(ref, auth); err != nil {
		t.Errorf("pulling the image of the second check: %v", err)
	}
}

func TestUnreachableRegistry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m, err := healthmonitor.New(healthmonitor.Config{Registry: "http://" + addr, Username: "admin", Password: "x",
		Interval: 20 * time.Millisecond, Timeout: 5 * time.Second, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metrics(t, m)
		if got[failures] >= 2 {
			if got[result] != 0 || got[successes] != 0 || got[lastOK] != 0 {
				t.Errorf("metrics of an unreachable registry: %v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two failed checks within 10s: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRepositoryFlag(t *testing.T) {
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"monitoring": "tenant1"}})
	m, err := healthmonitor.New(healthmonitor.Config{Registry: s.URL, Repository: "monitoring/probe",
		Username: "admin", Password: test.AdminPassword, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// A repository in an account that does not exist cannot be pushed to.
	m, err = healthmonitor.New(healthmonitor.Config{Registry: s.URL, Repository: "nosuchaccount/probe",
		Username: "admin", Password: test.AdminPassword, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(t.Context()); err == nil {
		t.Fatal("Check of a repository in a missing account succeeded")
	}
	if got := metrics(t, m); got[result] != 0 || got[failures] != 1 {
		t.Errorf("metrics after a failure: %v", got)
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []healthmonitor.Config{
		{Registry: ""},
		{Registry: "registry.example.com"},
		{Registry: "ftp://registry.example.com"},
		{Registry: "https://registry.example.com/v2/"},
		{Registry: "https://registry.example.com", Repository: "norepo"},
		{Registry: "https://registry.example.com", Interval: -time.Second},
	} {
		if _, err := healthmonitor.New(cfg); !errors.Is(err, healthmonitor.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
