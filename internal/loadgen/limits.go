package loadgen

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LimitSizes sizes the machine-limit probes.
type LimitSizes struct {
	HashBytes   int64         // bytes to hash with sha256 on one core
	TCPDuration time.Duration // how long to push bytes over loopback TCP
	DiskBytes   int64         // bytes to write and fsync
	HTTPClients int           // clients of the minimal HTTP server probe
	HTTPTime    time.Duration // how long they send requests
}

// DefaultLimitSizes are the sizes of issue 4: a few seconds in all.
func DefaultLimitSizes() LimitSizes {
	return LimitSizes{HashBytes: 256 << 20, TCPDuration: time.Second, DiskBytes: 256 << 20, HTTPClients: 32, HTTPTime: 2 * time.Second}
}

// Limits are the machine's limits, for context next to a comparison.
type Limits struct {
	CPUs            int     `json:"cpus"`
	SHA256MBPerS    float64 `json:"sha256_mb_per_second_one_core"`
	LoopbackMBPerS  float64 `json:"loopback_tcp_mb_per_second"`
	DiskFsyncMBPerS float64 `json:"disk_write_fsync_mb_per_second"`
	HTTPReqPerS     float64 `json:"minimal_http_requests_per_second"`
	HTTPClients     int     `json:"minimal_http_clients"`
}

// Upper bounds on the probe sizes, whatever the caller asks.
const (
	maxProbeBytes = 4 << 30
	maxProbeTime  = 30 * time.Second
)

// ProbeLimits measures the machine's limits; dir is where the disk probe
// writes (and removes) its temporary file.
func ProbeLimits(ctx context.Context, dir string, s LimitSizes) (Limits, error) {
	if s.HashBytes <= 0 || s.HashBytes > maxProbeBytes || s.DiskBytes <= 0 || s.DiskBytes > maxProbeBytes {
		return Limits{}, fmt.Errorf("probe sizes must be positive and at most %d bytes", int64(maxProbeBytes))
	}
	if s.TCPDuration <= 0 || s.TCPDuration > maxProbeTime || s.HTTPTime <= 0 || s.HTTPTime > maxProbeTime {
		return Limits{}, fmt.Errorf("probe durations must be positive and at most %s", maxProbeTime)
	}
	if s.HTTPClients < 1 || s.HTTPClients > MaxClients {
		return Limits{}, fmt.Errorf("probe clients must be between 1 and %d", MaxClients)
	}
	l := Limits{CPUs: runtime.NumCPU(), HTTPClients: s.HTTPClients}
	var err error
	if l.SHA256MBPerS, err = probeSHA256(s.HashBytes); err != nil {
		return l, fmt.Errorf("sha256 probe: %w", err)
	}
	if l.LoopbackMBPerS, err = probeLoopback(ctx, s.TCPDuration); err != nil {
		return l, fmt.Errorf("loopback probe: %w", err)
	}
	if l.DiskFsyncMBPerS, err = probeDisk(dir, s.DiskBytes); err != nil {
		return l, fmt.Errorf("disk probe: %w", err)
	}
	if l.HTTPReqPerS, err = probeHTTP(ctx, s.HTTPClients, s.HTTPTime); err != nil {
		return l, fmt.Errorf("http probe: %w", err)
	}
	return l, nil
}

// probeBuffer is 1 MiB of pseudo-random bytes.
func probeBuffer() []byte {
	buf := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{'k', 'e', 'p', 'p', 'e', 'l'})
	_, _ = r.Read(buf)
	return buf
}

// probeSHA256 hashes n bytes (a 1 MiB buffer, repeated) on one goroutine.
func probeSHA256(n int64) (float64, error) {
	buf := probeBuffer()
	h := sha256.New()
	start := time.Now()
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		h.Write(buf[:k])
		left -= k
	}
	_ = h.Sum(nil)
	return mbPerS(n, time.Since(start)), nil
}

// probeLoopback writes to a loopback TCP listener for d and returns what
// the reader received per second.
func probeLoopback(ctx context.Context, d time.Duration) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	var received atomic.Int64
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		buf := make([]byte, 256<<10)
		for {
			n, err := conn.Read(buf)
			received.Add(int64(n))
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := probeBuffer()[:256<<10]
	start := time.Now()
	deadline := start.Add(d)
	_ = conn.SetWriteDeadline(deadline.Add(5 * time.Second))
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := conn.Write(buf); err != nil {
			conn.Close()
			return 0, err
		}
	}
	conn.Close()
	select {
	case err := <-done:
		if err != nil {
			return 0, err
		}
	case <-time.After(10 * time.Second):
		return 0, errors.New("reader did not finish")
	}
	return mbPerS(received.Load(), time.Since(start)), nil
}

// probeDisk writes n bytes to a temporary file in dir, fsyncs it and
// removes it.
func probeDisk(dir string, n int64) (float64, error) {
	f, err := os.CreateTemp(dir, "keppel-bench-disk-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := probeBuffer()
	start := time.Now()
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			return 0, err
		}
		left -= k
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return mbPerS(n, time.Since(start)), nil
}

// probeHTTP runs a minimal net/http server on loopback that answers "ok"
// and sends it GET requests from clients goroutines for d.
func probeHTTP(ctx context.Context, clients int, d time.Duration) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "ok")
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		count    atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	const maxRequests = 50_000_000
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil && count.Load() < maxRequests {
				req, _ := http.NewRequestWithContext(runCtx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				if err != nil {
					if runCtx.Err() == nil {
						firstErr.CompareAndSwap(nil, err.Error())
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e, ok := firstErr.Load().(string); ok {
		return 0, errors.New(e)
	}
	return float64(count.Load()) / elapsed.Seconds(), nil
}

func mbPerS(n int64, d time.Duration) float64 {
	if d <= 0 {
		d = time.Nanosecond
	}
	return float64(n) / 1e6 / d.Seconds()
}

// WriteLimits writes the limits as text.
func WriteLimits(w io.Writer, l Limits) error {
	var b strings.Builder
	fmt.Fprintf(&b, "machine limits (%d CPUs):\n", l.CPUs)
	fmt.Fprintf(&b, "  sha256, one core:            %8.0f MB/s\n", l.SHA256MBPerS)
	fmt.Fprintf(&b, "  loopback TCP, one stream:    %8.0f MB/s\n", l.LoopbackMBPerS)
	fmt.Fprintf(&b, "  disk write + fsync:          %8.0f MB/s\n", l.DiskFsyncMBPerS)
	fmt.Fprintf(&b, "  minimal Go HTTP, %3d clients: %7.0f requests/s\n", l.HTTPClients, l.HTTPReqPerS)
	_, err := io.WriteString(w, b.String())
	return err
}
