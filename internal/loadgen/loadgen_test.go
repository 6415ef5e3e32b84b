package loadgen

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"keppel/internal/test"
)

func TestScenariosAgainstKeppel(t *testing.T) {
	srv := test.NewServer(t, test.Options{})
	cfg := Config{
		Registry: srv.URL,
		Username: "admin",
		Password: test.AdminPassword,
		Repo:     "test/load",
		Clients:  4,
		Duration: 300 * time.Millisecond,
		MaxOps:   20,
		Sizes:    Sizes{BigBlob: 3<<20 + 17, Chunk: 1 << 20, Layer: 4096, Tags: 30, Repos: 12, PageSize: 7},
	}
	if testing.Verbose() {
		cfg.Progress = testWriter{t}
	}
	results, err := Run(context.Background(), cfg, Scenarios())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(Scenarios()) {
		t.Fatalf("got %d results, want %d", len(results), len(Scenarios()))
	}
	for _, r := range results {
		if r.Ops == 0 || r.Errors != 0 {
			t.Errorf("%s: %d ops, %d errors (first: %s)", r.Scenario, r.Ops, r.Errors, r.FirstError)
		}
		if r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: p50 %s, p99 %s", r.Scenario, r.P50, r.P99)
		}
	}
	var out strings.Builder
	if err := WriteText(&out, results); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
}

func TestNoVerifyAndServerStats(t *testing.T) {
	srv := test.NewServer(t, test.Options{})
	cfg := Config{
		Registry: srv.URL, Username: "admin", Password: test.AdminPassword, Repo: "test/load",
		Clients: 2, Duration: 200 * time.Millisecond, MaxOps: 5, NoVerify: true,
		PID:   selfPID(),
		Sizes: Sizes{BigBlob: 1 << 20, Chunk: 1 << 18, Layer: 1024, Tags: 3, Repos: 2, PageSize: 2},
	}
	results, err := Run(context.Background(), cfg, []string{"blob-pull", "pull-storm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Ops == 0 || r.Errors != 0 {
			t.Errorf("%s: %d ops, %d errors (first: %s)", r.Scenario, r.Ops, r.Errors, r.FirstError)
		}
		if r.Ops > 5 {
			t.Errorf("%s: %d ops despite MaxOps 5", r.Scenario, r.Ops)
		}
		if r.ServerPeakRSS <= 0 {
			t.Errorf("%s: no peak RSS of the server process", r.Scenario)
		}
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, u := range []string{
		"http://10.0.0.1:5000", "http://example.com", "https://192.168.1.2", "http://localhost:5000",
		"http://0.0.0.0:5000", "ftp://127.0.0.1", "http://[::ffff:8.8.8.8]:5000",
	} {
		if _, err := NewClient(u, "", "", 1); err == nil {
			t.Errorf("NewClient(%q) accepted a non-loopback registry", u)
		}
		_, err := Run(context.Background(), Config{Registry: u, Repo: "a/b", Clients: 1, Duration: time.Second, MaxOps: 1, Sizes: DefaultSizes()}, []string{"manifest-get"})
		if err == nil {
			t.Errorf("Run(%q) accepted a non-loopback registry", u)
		}
	}
	if !errors.Is(CheckLoopback("http://10.1.2.3"), ErrNotLoopback) {
		t.Error("CheckLoopback does not wrap ErrNotLoopback")
	}
	for _, u := range []string{"http://127.0.0.1:5000", "http://127.1.2.3", "http://[::1]:8080"} {
		if err := CheckLoopback(u); err != nil {
			t.Errorf("CheckLoopback(%q): %v", u, err)
		}
	}
}

func TestRealmMustBeLoopback(t *testing.T) {
	c, err := NewClient("http://127.0.0.1:1", "u", "p", 1)
	if err != nil {
		t.Fatal(err)
	}
	err = c.fetchToken(context.Background(), "s", `Bearer realm="http://203.0.113.1/token",service="x"`)
	if !errors.Is(err, ErrNotLoopback) {
		t.Errorf("fetchToken with a remote realm: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(3, 1, 2), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
	} {
		if got := Percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

func TestParseChallenge(t *testing.T) {
	got := parseChallenge(`Bearer realm="http://127.0.0.1:5000/keppel/v1/auth",service="127.0.0.1:5000",scope="repository:a/b:pull,push"`)
	if got["realm"] != "http://127.0.0.1:5000/keppel/v1/auth" || got["service"] != "127.0.0.1:5000" || got["scope"] != "repository:a/b:pull,push" {
		t.Errorf("parseChallenge: %v", got)
	}
}

func TestBlobSource(t *testing.T) {
	src, err := newBlobSource(100_000, 42)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 3; i++ {
		b, err := io.ReadAll(src.Reader(i))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != src.size || digestOf(b) != src.Digest(i) {
			t.Fatalf("blob %d: %d bytes, digest %s, want %s", i, len(b), digestOf(b), src.Digest(i))
		}
		part, _ := io.ReadAll(src.Section(i, 1000, 500))
		if string(part) != string(b[1000:1500]) {
			t.Fatalf("blob %d: section differs", i)
		}
	}
	if src.Digest(0) == src.Digest(1) {
		t.Fatal("blobs 0 and 1 have the same digest")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
