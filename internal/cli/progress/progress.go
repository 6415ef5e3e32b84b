// Package progress shows how far a transfer is on one terminal line that
// updates in place: bytes done of the total, and the rate. On anything that
// is not a terminal it prints nothing, so that pipes and logs get only the
// result of a command.
package progress

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// interval is how often the line is redrawn.
const interval = 200 * time.Millisecond

// IsTerminal reports whether w is a terminal (a character device), the
// check that decides whether a progress line is shown.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// Bar counts the bytes of a transfer and, if enabled, redraws one line on
// its writer until Finish is called. A nil *Bar or a disabled one counts
// nothing and prints nothing. All methods are safe for concurrent use.
type Bar struct {
	w       io.Writer
	label   string
	now     func() time.Time
	start   time.Time
	done    atomic.Int64
	total   atomic.Int64
	mu      sync.Mutex // serializes drawing
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
	// drain tracks the goroutine that follows an Updates channel.
	drain sync.WaitGroup
}

// New returns a bar that draws on w, labelled with what is transferred, if
// enabled is true (usually IsTerminal(w) and no --quiet); otherwise nil,
// which is a bar that does nothing.
func New(w io.Writer, label string, enabled bool) *Bar {
	if !enabled {
		return nil
	}
	b := &Bar{w: w, label: label, now: time.Now, stop: make(chan struct{}), stopped: make(chan struct{})}
	b.start = b.now()
	go b.loop()
	return b
}

// loop redraws the line every interval until Finish.
func (b *Bar) loop() {
	defer close(b.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.draw(false)
		}
	}
}

// Add counts n more bytes as done.
func (b *Bar) Add(n int64) {
	if b != nil {
		b.done.Add(n)
	}
}

// Complete counts everything expected as done, for a transfer that ended
// well although not every byte was reported (blobs that were there
// already, say).
func (b *Bar) Complete() {
	if b != nil {
		b.done.Store(max(b.done.Load(), b.total.Load()))
	}
}

// AddTotal adds n bytes to what is expected in all.
func (b *Bar) AddTotal(n int64) {
	if b != nil {
		b.total.Add(n)
	}
}

// Updates returns a channel for go-containerregistry's WithProgress options
// and follows what is sent on it until the sender closes it. For a nil bar
// it returns nil, which those options take as "no progress".
func (b *Bar) Updates() chan<- v1.Update {
	if b == nil {
		return nil
	}
	ch := make(chan v1.Update, 16)
	b.drain.Add(1)
	go func() {
		defer b.drain.Done()
		// Each update has the totals of its transfer; what changed
		// since the last one is added, so that transfers may overlap.
		var done, total int64
		for u := range ch {
			if u.Error != nil {
				continue
			}
			b.done.Add(u.Complete - done)
			b.total.Add(u.Total - total)
			done, total = u.Complete, u.Total
		}
	}()
	return ch
}

// Transport wraps rt so that the bytes of every response body read through
// it count as done.
func (b *Bar) Transport(rt http.RoundTripper) http.RoundTripper {
	if b == nil {
		return rt
	}
	return countingTransport{rt: rt, bar: b}
}

type countingTransport struct {
	rt  http.RoundTripper
	bar *Bar
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = countingBody{ReadCloser: resp.Body, bar: t.bar}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	bar *Bar
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.bar.Add(int64(n))
	return n, err
}

// Finish stops redrawing and leaves the last state of the line, ended by a
// newline. It may be called more than once.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.once.Do(func() {
		// What the transfers sent last is counted before the last line
		// (their channels are closed when they return), but a channel
		// left open does not hold Finish up for long.
		drained := make(chan struct{})
		go func() {
			b.drain.Wait()
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(time.Second):
		}
		close(b.stop)
		<-b.stopped
		b.draw(true)
	})
}

// draw writes the line, starting with a carriage return and an erase of the
// rest of the line so that it replaces the previous one.
func (b *Bar) draw(last bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line := Line(b.label, b.done.Load(), b.total.Load(), b.now().Sub(b.start))
	end := ""
	if last {
		end = "\n"
	}
	fmt.Fprintf(b.w, "\r\x1b[K%s%s", line, end)
}

// Line renders the state of a transfer: "label  1.5 MiB / 10.0 MiB  15%
// 512.0 KiB/s". An unknown total (0) leaves out the total and percentage.
func Line(label string, done, total int64, elapsed time.Duration) string {
	if total > 0 && done > total {
		done = total // bytes sent again after a retry
	}
	s := label + "  " + Bytes(done)
	if total > 0 {
		s += fmt.Sprintf(" / %s  %3d%%", Bytes(total), done*100/total)
	}
	if secs := elapsed.Seconds(); secs > 0 {
		s += "  " + Bytes(int64(float64(done)/secs)) + "/s"
	}
	return s
}

// Bytes renders a byte count with a binary unit: "999 B", "1.5 KiB",
// "12.0 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
