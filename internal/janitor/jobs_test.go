package janitor

import (
	"context"
	"testing"
	"time"

	"keppel/internal/storage/memory"
)

// TestExtraJobs checks that jobs from the configuration run beside the
// registry's own.
func TestExtraJobs(t *testing.T) {
	env := newTestEnv(t, memory.New(), "repo")
	ran := false
	j := New(env.svc, Config{Jobs: []Job{{Name: "peering", Interval: time.Minute, Run: func(context.Context) (bool, error) {
		ran = true
		return false, nil
	}}}}, env.log)
	if _, err := jobNamed(t, j, "peering").Run(t.Context()); err != nil || !ran {
		t.Fatalf("the extra job did not run: %v", err)
	}
	if _, err := jobNamed(t, j, "blob-sweep").Run(t.Context()); err != nil {
		t.Fatalf("the registry's jobs are gone: %v", err)
	}
}
