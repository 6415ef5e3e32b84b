package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ChangeChannel is the channel on which the database announces changes of
// cached metadata (see migrations/0002_change_notifications.sql).
const ChangeChannel = "keppel_changes"

// ChangeHandler receives the changes that Listen reports. Its methods are
// called from one goroutine.
type ChangeHandler interface {
	// Reset says that Listen is listening (again): anything may have
	// changed before.
	Reset()
	// Disable says that Listen lost its connection: changes are not
	// reported until the next Reset.
	Disable()
	// InvalidateAccount reports a change of the account or of the set of
	// its repositories.
	InvalidateAccount(name string)
	// InvalidateRepository reports a change of the repository's manifests,
	// tags or blob mounts.
	InvalidateRepository(id int64)
}

// Listen reports the changes that any process commits to the database at
// url to h, until ctx ends. It reconnects after losing its connection,
// waiting between attempts from 50 ms up to 5 s; h is disabled meanwhile.
func Listen(ctx context.Context, url string, h ChangeHandler, log *slog.Logger) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		log.Error("cannot listen for changes: cannot parse the database URL")
		return
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, cfg, h, func() { backoff = 50 * time.Millisecond })
		h.Disable()
		if ctx.Err() != nil {
			return
		}
		log.Warn("listening for database changes failed; cached metadata is bypassed until it resumes",
			"error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnce listens on one connection until it fails or ctx ends.
func listenOnce(ctx context.Context, cfg *pgx.ConnConfig, h ChangeHandler, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+ChangeChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Only from here on is every change reported.
	h.Reset()
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		applyChange(h, n.Payload)
	}
}

// applyChange passes one notification's payload to h. An unknown payload
// resets h, to be safe.
func applyChange(h ChangeHandler, payload string) {
	kind, key, ok := strings.Cut(payload, ":")
	switch {
	case ok && kind == "a":
		h.InvalidateAccount(key)
		return
	case ok && kind == "r":
		if id, err := strconv.ParseInt(key, 10, 64); err == nil {
			h.InvalidateRepository(id)
			return
		}
	}
	h.Reset()
}
