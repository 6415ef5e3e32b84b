package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits that hold whatever the configuration says.
const (
	MaxDuration  = 10 * time.Minute
	MaxOpsLimit  = 10_000_000
	MaxClients   = 1024
	setupTimeout = 10 * time.Minute
)

// warmupIndex is the operation index of the untimed warm-up operation; the
// timed ones count from 0 and stay below MaxOpsLimit.
const warmupIndex = 1<<63 - 1

// Config configures a run.
type Config struct {
	Registry string // base URL, loopback only
	Username string
	Password string
	Repo     string // e.g. "bench/load"
	Clients  int    // workers of the parallel scenarios
	Duration time.Duration
	MaxOps   int64 // per scenario
	PID      int   // server process to observe; 0 for none
	NoVerify bool  // do not hash pulled blobs
	Sizes    Sizes
	// Progress, if set, receives one line per scenario phase.
	Progress io.Writer
}

func (c *Config) validate() error {
	if err := CheckLoopback(c.Registry); err != nil {
		return err
	}
	if c.Repo == "" || !strings.Contains(c.Repo, "/") {
		return fmt.Errorf("repository %q must be <account>/<name>", c.Repo)
	}
	if c.Clients < 1 || c.Clients > MaxClients {
		return fmt.Errorf("clients must be between 1 and %d", MaxClients)
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		return fmt.Errorf("duration must be positive and at most %s", MaxDuration)
	}
	if c.MaxOps < 1 || c.MaxOps > MaxOpsLimit {
		return fmt.Errorf("max ops must be between 1 and %d", MaxOpsLimit)
	}
	return nil
}

// ParseScenarios turns a comma-separated list (or "all") into scenario
// names, rejecting unknown ones.
func ParseScenarios(list string) ([]string, error) {
	if strings.TrimSpace(list) == "all" {
		return Scenarios(), nil
	}
	var out []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if Describe(name) == "" {
			return nil, fmt.Errorf("unknown scenario %q (known: %s, all)", name, strings.Join(Scenarios(), ", "))
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario given")
	}
	return out, nil
}

// Run runs the named scenarios one after another and returns their
// results. A scenario whose setup fails ends the run with an error (with
// the results so far); failed operations are counted, not fatal.
func Run(ctx context.Context, cfg Config, names []string) ([]Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c, err := NewClient(cfg.Registry, cfg.Username, cfg.Password, cfg.Clients)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	nonce := uint64(time.Now().UnixNano())
	var results []Result
	for k, name := range names {
		var sc *scenario
		for i := range scenarios {
			if scenarios[i].name == name {
				sc = &scenarios[i]
			}
		}
		if sc == nil {
			return results, fmt.Errorf("unknown scenario %q", name)
		}
		clients := 1
		if sc.parallel {
			clients = cfg.Clients
		}
		e := env{c: c, cfg: cfg, repo: cfg.Repo, nonce: nonce + uint64(k)*1_000_003, clients: cfg.Clients}
		progress(cfg, "%s: setup", name)
		setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
		f, err := sc.setup(setupCtx, e)
		if err == nil {
			// One untimed operation fetches the token and opens a
			// connection, and fails early if the scenario cannot work.
			_, err = f(setupCtx, warmupIndex)
		}
		cancel()
		if err != nil {
			return results, fmt.Errorf("%s: setup: %w", name, err)
		}
		if cfg.PID > 0 {
			waited, settled := settle(ctx, cfg.PID)
			progress(cfg, "%s: the server was idle after %s (settled: %v)", name, waited.Round(time.Millisecond), settled)
		}
		progress(cfg, "%s: running %d client(s) for up to %s or %d ops", name, clients, cfg.Duration, cfg.MaxOps)
		r := measure(ctx, cfg, f, clients)
		r.Scenario = name
		if !sc.bulk {
			r.MBPerS = 0
		}
		results = append(results, r)
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}

func progress(cfg Config, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, format+"\n", args...)
	}
}

// measure runs f on clients workers until the duration ends or MaxOps
// operations have started. Operations cut off by the deadline count
// neither as operations nor as errors.
func measure(parent context.Context, cfg Config, f op, clients int) Result {
	var cpuBefore float64
	var rssReset bool
	if cfg.PID > 0 {
		cpuBefore, _ = procCPUSeconds(cfg.PID)
		rssReset = resetPeakRSS(cfg.PID)
	}
	ctx, cancel := context.WithTimeout(parent, cfg.Duration)
	defer cancel()

	var (
		next     atomic.Uint64
		mu       sync.Mutex
		lat      []time.Duration
		ops      int64
		errs     int64
		bytes    int64
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var myLat []time.Duration
			var myOps, myErrs, myBytes int64
			var myFirst string
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= uint64(cfg.MaxOps) {
					break
				}
				t0 := time.Now()
				n, err := f(ctx, i)
				d := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					break // cut off by the deadline
				}
				myBytes += n
				if err != nil {
					myErrs++
					if myFirst == "" {
						myFirst = err.Error()
					}
					continue
				}
				myOps++
				myLat = append(myLat, d)
			}
			mu.Lock()
			lat = append(lat, myLat...)
			ops += myOps
			errs += myErrs
			bytes += myBytes
			if firstErr == "" {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	r := Result{Clients: clients, Ops: ops, Errors: errs, Elapsed: elapsed, Bytes: bytes, FirstError: firstErr}
	if s := elapsed.Seconds(); s > 0 {
		r.OpsPerS = float64(ops) / s
		r.MBPerS = float64(bytes) / 1e6 / s
	}
	r.P50 = Percentile(lat, 50)
	r.P99 = Percentile(lat, 99)
	if cfg.PID > 0 {
		if after, err := procCPUSeconds(cfg.PID); err == nil {
			r.ServerCPUSeconds = after - cpuBefore
		}
		if rss, err := procPeakRSS(cfg.PID); err == nil {
			r.ServerPeakRSS = rss
			r.PeakRSSReset = rssReset
		}
	}
	return r
}

// WriteText writes the results as an aligned table.
func WriteText(w io.Writer, results []Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %7s %8s %6s %10s %9s %10s %10s %9s %10s\n",
		"scenario", "clients", "ops", "errors", "ops/s", "MB/s", "p50", "p99", "cpu s", "peak RSS")
	for _, r := range results {
		mb, cpu, rss := "-", "-", "-"
		if r.MBPerS > 0 {
			mb = fmt.Sprintf("%.1f", r.MBPerS)
		}
		if r.ServerPeakRSS > 0 {
			cpu = fmt.Sprintf("%.2f", r.ServerCPUSeconds)
			rss = fmt.Sprintf("%.1f MiB", float64(r.ServerPeakRSS)/(1<<20))
		}
		fmt.Fprintf(&b, "%-22s %7d %8d %6d %10.1f %9s %10s %10s %9s %10s\n",
			r.Scenario, r.Clients, r.Ops, r.Errors, r.OpsPerS, mb, round(r.P50), round(r.P99), cpu, rss)
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(&b, "%s: first error: %s\n", r.Scenario, r.FirstError)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// Settling: before a timed run, wait until the server has finished what
// the setup or an earlier scenario left it to do in the background (such
// as writing the storage copies of pushed manifests), so that a scenario
// neither pays for an earlier one's work nor leaves its own to the next.
const (
	settleWindow  = 250 * time.Millisecond
	settleIdleCPU = 0.1 // at most this share of one core during a window
	settleMax     = 30 * time.Second
)

// settle waits until the process pid used less than settleIdleCPU of a
// core during a window, at most settleMax. It reports how long it waited and
// whether the process became idle.
func settle(ctx context.Context, pid int) (time.Duration, bool) {
	start := time.Now()
	prev, err := procCPUSeconds(pid)
	if err != nil {
		return 0, false
	}
	for time.Since(start) < settleMax {
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-time.After(settleWindow):
		}
		cur, err := procCPUSeconds(pid)
		if err != nil {
			return time.Since(start), false
		}
		if cur-prev <= settleIdleCPU*settleWindow.Seconds() {
			return time.Since(start), true
		}
		prev = cur
	}
	return time.Since(start), false
}
