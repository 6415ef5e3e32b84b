package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"keppel/internal/healthmonitor"
)

func newServerHealthmonitorCommand() *cobra.Command {
	var (
		client     clientFlags
		repository string
		interval   time.Duration
		timeout    time.Duration
		listen     string
	)
	cmd := &cobra.Command{
		Use:   "healthmonitor",
		Short: "Push and pull a tiny image every --interval and export the outcome as Prometheus metrics",
		Long: `Check a registry end to end, as its users see it: every --interval, push a tiny
random image (one small layer, a config and a manifest) to --repository under
the tag "latest", pull it back by digest and verify every digest. After a
successful check the image of the check before is deleted (with delete
permission), so that the repository holds one image.

The outcome is served on --listen at /metrics:
  keppel_healthmonitor_result                          1 if the last check succeeded, else 0
  keppel_healthmonitor_last_success_timestamp_seconds  when the last check succeeded
  keppel_healthmonitor_duration_seconds                histogram of check durations
  keppel_healthmonitor_checks_total{result="success|failure"}
Failures are logged on standard error.

Create the account first (e.g. ` + "`keppel account create healthmonitor --auth-tenant-id …`" + `)
and give the user (KEPPEL_USERNAME, KEPPEL_PASSWORD) push, pull and delete
permission on the repository; then alert on keppel_healthmonitor_result == 0.
See docs/operator-guide.md, "Health monitor".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			password, err := client.password(cmd)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			m, err := healthmonitor.New(healthmonitor.Config{
				Registry: strings.TrimRight(client.registry, "/"), Repository: repository,
				Username: client.username, Password: password,
				Interval: interval, Timeout: timeout, Log: log,
			})
			if err != nil {
				return err
			}
			return runHealthmonitor(cmd.Context(), m, listen, log)
		},
	}
	client.register(cmd)
	cmd.Flags().StringVar(&repository, "repository", healthmonitor.DefaultRepository, "repository to push to (ACCOUNT/REPO; the account must exist)")
	cmd.Flags().DurationVar(&interval, "interval", healthmonitor.DefaultInterval, "time between checks")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long one check may take (default: --interval)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to serve /metrics on")
	return cmd
}

// runHealthmonitor serves the metrics and runs the checks until ctx ends.
func runHealthmonitor(ctx context.Context, m *healthmonitor.Monitor, listen string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	})
	log.Info("keppel healthmonitor is running", "metrics", "http://"+ln.Addr().String()+"/metrics")

	runCtx, cancel := context.WithCancel(ctx)
	wg.Go(func() { _ = m.Run(runCtx) })
	var result error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		result = fmt.Errorf("serving metrics: %w", err)
	}
	cancel()
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdownCtx) // ending anyway
	wg.Wait()
	return result
}
