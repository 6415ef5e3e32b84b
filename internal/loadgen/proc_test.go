package loadgen

import (
	"os"
	"testing"
	"time"
)

func selfPID() int { return os.Getpid() }

// TestSettleWaitsForBackgroundWork burns CPU in this process for a while:
// settle must wait until that ends, and return quickly once idle.
func TestSettleWaitsForBackgroundWork(t *testing.T) {
	const busyFor = 700 * time.Millisecond
	stop := time.Now().Add(busyFor)
	done := make(chan struct{})
	go func() {
		defer close(done)
		x := 0
		for time.Now().Before(stop) {
			x++
		}
		_ = x
	}()
	waited, settled := settle(t.Context(), os.Getpid())
	<-done
	if !settled || waited < busyFor-2*settleWindow {
		t.Fatalf("settle returned after %s (settled %v) while the process was busy for %s", waited, settled, busyFor)
	}
	waited, settled = settle(t.Context(), os.Getpid())
	if !settled || waited > 4*settleWindow {
		t.Fatalf("settle on an idle process took %s (settled %v)", waited, settled)
	}
}
