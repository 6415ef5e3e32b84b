package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"keppel/internal/test"
)

func TestServerHealthmonitor(t *testing.T) {
	clearConfigEnv(t)
	s := test.NewServer(t, test.Options{StorageDriver: "memory", Accounts: map[string]string{"healthmonitor": "tenant1"}})
	t.Setenv("KEPPEL_PASSWORD", test.AdminPassword)
	listen := test.FreeAddress(t)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	var out strings.Builder
	wg.Go(func() {
		cmd := newRootCommand()
		cmd.SetOut(io.Discard)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"server", "healthmonitor", "--registry", s.URL, "--listen", listen, "--interval", "200ms", "--timeout", "20s"})
		runErr = cmd.ExecuteContext(ctx)
	})

	deadline := time.Now().Add(30 * time.Second)
	var body string
	for !strings.Contains(body, "\nkeppel_healthmonitor_result 1\n") {
		if time.Now().After(deadline) {
			cancel()
			wg.Wait()
			t.Fatalf("no successful check within 30s; metrics:\n%s\nlog:\n%s", body, out.String())
		}
		time.Sleep(50 * time.Millisecond)
		resp, err := http.Get("http://" + listen + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
	}
	for _, name := range []string{"keppel_healthmonitor_last_success_timestamp_seconds", "keppel_healthmonitor_duration_seconds_bucket",
		`keppel_healthmonitor_checks_total{result="success"}`, `keppel_healthmonitor_checks_total{result="failure"} 0`} {
		if !strings.Contains(body, name) {
			t.Errorf("the metrics lack %s:\n%s", name, body)
		}
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Errorf("the command ended with %v", runErr)
	}
	if !strings.Contains(out.String(), "keppel healthmonitor is running") {
		t.Errorf("log: %s", out.String())
	}
}
