package progress

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{
		0:             "0 B",
		1023:          "1023 B",
		1024:          "1.0 KiB",
		1536:          "1.5 KiB",
		12 << 20:      "12.0 MiB",
		3 << 30:       "3.0 GiB",
		5 << 40:       "5.0 TiB",
		1<<62 + 1<<61: "6.0 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		done, total int64
		elapsed     time.Duration
		want        string
	}{
		{1 << 20, 4 << 20, 2 * time.Second, "push  1.0 MiB / 4.0 MiB   25%  512.0 KiB/s"},
		{5 << 20, 4 << 20, time.Second, "push  4.0 MiB / 4.0 MiB  100%  4.0 MiB/s"},
		{100, 0, 0, "push  100 B"},
	} {
		if got := Line("push", tc.done, tc.total, tc.elapsed); got != tc.want {
			t.Errorf("Line(%d, %d, %s) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

// syncBuffer is a buffer that the drawing goroutine and the test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestDisabledBarIsSilent(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	b := New(&out, "pull", false)
	b.AddTotal(10)
	b.Add(10)
	if ch := b.Updates(); ch != nil {
		t.Error("a disabled bar returned an updates channel")
	}
	rt := http.DefaultTransport
	if b.Transport(rt) != rt {
		t.Error("a disabled bar wrapped the transport")
	}
	b.Finish()
	if out.String() != "" {
		t.Errorf("a disabled bar printed %q", out.String())
	}
	if IsTerminal(&out) {
		t.Error("a buffer is a terminal")
	}
}

func TestBarFollowsUpdatesAndEndsTheLine(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	b := New(&out, "copy", true)
	ch := b.Updates()
	ch <- v1.Update{Total: 2048, Complete: 1024}
	ch <- v1.Update{Total: 2048, Complete: 2048}
	close(ch)
	// A second transfer continues where the first ended.
	ch = b.Updates()
	ch <- v1.Update{Total: 1024, Complete: 1024}
	close(ch)
	b.Finish()
	b.Finish()
	got := out.String()
	if !strings.HasPrefix(got, "\r\x1b[K") || !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
		t.Fatalf("output %q is not one line redrawn in place", got)
	}
	if !strings.Contains(got, "copy  3.0 KiB / 3.0 KiB  100%") {
		t.Errorf("last state in %q is not 3 KiB of 3 KiB", got)
	}
}

func TestTransportCountsResponseBodies(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("x"), 5000))
	}))
	defer srv.Close()
	var out syncBuffer
	b := New(&out, "pull", true)
	defer b.Finish()
	resp, err := (&http.Client{Transport: b.Transport(http.DefaultTransport)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if got := b.done.Load(); got != 5000 {
		t.Errorf("counted %d bytes, want 5000", got)
	}
}

func TestCompleteFillsTheLine(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	b := New(&out, "copy", true)
	b.AddTotal(2048)
	b.Add(1000)
	b.Complete()
	b.Finish()
	if got := out.String(); !strings.Contains(got, "2.0 KiB / 2.0 KiB  100%") {
		t.Errorf("after Complete the line is %q", got)
	}
	var nilBar *Bar
	nilBar.Complete()
	nilBar.Finish()
}
