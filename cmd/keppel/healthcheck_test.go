package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestHealthcheckCommand(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthcheck" || !healthy.Load() {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()

	if out, err := run(t, "", "healthcheck", "--url", srv.URL+"/healthcheck"); err != nil {
		t.Errorf("healthcheck of a healthy server: %v (output %q)", err, out)
	}
	healthy.Store(false)
	if _, err := run(t, "", "healthcheck", "--url", srv.URL+"/healthcheck"); err == nil {
		t.Error("healthcheck of an unhealthy server succeeded")
	}
	srv.Close()
	if _, err := run(t, "", "healthcheck", "--url", srv.URL+"/healthcheck", "--timeout", "1s"); err == nil {
		t.Error("healthcheck of a stopped server succeeded")
	}
}
