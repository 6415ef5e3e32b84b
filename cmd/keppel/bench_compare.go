package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"keppel/internal/loadgen"
)

const (
	benchAccount   = "bench"
	startTimeout   = 60 * time.Second
	stopTimeout    = 15 * time.Second
	maxLogTailSize = 4096
)

func newBenchCompareCommand() *cobra.Command {
	var (
		distBin, keppelBin, pgURL, scenarios, s3Bin string
		rounds                                      int
		base                                        loadgen.Config
		asJSON, skipLimits, tiny, s3Redirect        bool
	)
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Start Distribution and Keppel on loopback and compare them over alternating rounds",
		Long: `Start the CNCF Distribution registry (--distribution; filesystem storage,
delete enabled, access log off, log level error, OTEL_TRACES_EXPORTER=none),
Keppel in embedded mode (--keppel, ` + "`keppel server`" + ` with a fresh data directory)
and, with --postgres-url, Keppel on PostgreSQL (in a throwaway database
keppel_bench_<random> on that server, dropped afterwards), each on a free
127.0.0.1 port in a fresh temporary directory that is removed afterwards.

For each round and scenario, the scenario runs against every target, in
alternating order (A,B,C, then C,B,A, …), with the server's PID so its CPU
seconds and peak RSS are reported. Then, per scenario, it prints the
median of each figure per target and the median ratio Keppel/Distribution
of the scenario's metric (throughput, higher is better; p50 latency for the
catalog, lower is better) with its spread (min–max over the rounds). Without
--distribution the ratios are relative to Keppel in embedded mode.

With --s3-server (a versitygw binary), every target stores its content in
its own bucket of one S3 server that runs on loopback over a temporary
directory: Distribution with its S3 driver, Keppel with storage.driver s3.
The targets' names then end in -s3. Both serve blob content themselves,
unless --s3-redirect makes both answer blob GETs with redirects to
presigned URLs of the S3 server (names ending in -s3-redirect).

Unless --skip-limits, it first measures the machine's limits for context:
sha256 throughput of one core, loopback TCP throughput, disk write+fsync
throughput in the data directories' file system, and a minimal Go HTTP
server's request rate with 32 clients.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keppelBin == "" {
				return errors.New("--keppel is required")
			}
			names, err := loadgen.ParseScenarios(scenarios)
			if err != nil {
				return err
			}
			if base.Duration > loadgen.MaxDuration {
				return fmt.Errorf("--duration is capped at %s", loadgen.MaxDuration)
			}
			if rounds < 1 || rounds > loadgen.MaxRounds {
				return fmt.Errorf("--rounds must be between 1 and %d", loadgen.MaxRounds)
			}
			if pgURL != "" {
				if err := checkLoopbackPostgres(pgURL); err != nil {
					return err
				}
			}
			progress := cmd.ErrOrStderr()
			base.Progress = progress
			base.Sizes = loadgen.DefaultSizes()
			limitSizes := loadgen.DefaultLimitSizes()
			if tiny {
				base.Sizes = loadgen.Sizes{BigBlob: 1 << 20, Chunk: 1 << 18, Layer: 4096, Tags: 5, Repos: 3, PageSize: 2}
				limitSizes = loadgen.LimitSizes{HashBytes: 1 << 20, TCPDuration: 50 * time.Millisecond, DiskBytes: 1 << 20, HTTPClients: 4, HTTPTime: 100 * time.Millisecond}
			}
			ctx := cmd.Context()

			var procs []*benchProcess
			defer func() {
				for i := len(procs) - 1; i >= 0; i-- {
					procs[i].stop(progress)
				}
			}()
			var targets []loadgen.Target
			var store *benchS3
			suffix := ""
			// storageFor returns the S3 bucket of a target (nil without
			// --s3-server).
			storageFor := func(name string) (*loadgen.S3Bucket, error) {
				if store == nil {
					return nil, nil
				}
				b, err := store.bucket(ctx, name)
				return &b, err
			}
			if s3Bin != "" {
				store, err = startS3ForBench(ctx, s3Bin, progress)
				if store != nil {
					procs = append(procs, store.proc)
				}
				if err != nil {
					return err
				}
				suffix = "-s3"
				if s3Redirect {
					suffix = "-s3-redirect"
				}
			}
			if distBin != "" {
				bucket, err := storageFor("distribution")
				if err != nil {
					return err
				}
				p, err := startDistribution(ctx, distBin, bucket, s3Redirect, suffix, progress)
				if p != nil {
					procs = append(procs, p)
				}
				if err != nil {
					return err
				}
				targets = append(targets, p.target)
			}
			bucket, err := storageFor("keppel-embedded")
			if err != nil {
				return err
			}
			p, err := startKeppelForBench(ctx, keppelBin, "keppel-embedded"+suffix, s3Env(bucket, s3Redirect), progress)
			if p != nil {
				procs = append(procs, p)
			}
			if err != nil {
				return err
			}
			targets = append(targets, p.target)
			limitsDir := p.dir
			if pgURL != "" {
				dbURL, drop, err := createBenchDatabase(ctx, pgURL)
				if err != nil {
					return err
				}
				defer func() {
					if err := drop(); err != nil {
						fmt.Fprintf(progress, "dropping the benchmark database: %v\n", err)
					}
				}()
				bucket, err := storageFor("keppel-postgres")
				if err != nil {
					return err
				}
				p, err := startKeppelForBench(ctx, keppelBin, "keppel-postgres"+suffix, append(s3Env(bucket, s3Redirect), "KEPPEL_DB_URL="+dbURL), progress)
				if p != nil {
					procs = append(procs, p)
				}
				if err != nil {
					return err
				}
				targets = append(targets, p.target)
			}

			var limits *loadgen.Limits
			if !skipLimits {
				fmt.Fprintln(progress, "measuring the machine's limits")
				l, err := loadgen.ProbeLimits(ctx, limitsDir, limitSizes)
				if err != nil {
					return err
				}
				limits = &l
			}

			base.Repo = benchAccount + "/load"
			result, runErr := loadgen.Compare(ctx, loadgen.CompareConfig{
				Base: base, Targets: targets, Reference: 0, Rounds: rounds, Scenarios: names,
			})
			if result != nil {
				out := cmd.OutOrStdout()
				if asJSON {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					if err := enc.Encode(map[string]any{"targets": targets, "limits": limits, "comparison": result}); err != nil {
						return err
					}
				} else {
					if limits != nil {
						if err := loadgen.WriteLimits(out, *limits); err != nil {
							return err
						}
					}
					if err := loadgen.WriteComparison(out, result); err != nil {
						return err
					}
				}
			}
			if runErr != nil {
				return runErr
			}
			for _, r := range result.Runs {
				if r.Errors > 0 {
					return fmt.Errorf("some operations failed (%s, %s, round %d: %s)", r.Target, r.Scenario, r.Round+1, r.FirstError)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&distBin, "distribution", "", "path to the CNCF Distribution registry binary (optional)")
	f.StringVar(&keppelBin, "keppel", "", "path to the keppel binary to benchmark (required)")
	f.StringVar(&pgURL, "postgres-url", "", "PostgreSQL server (loopback) to also benchmark Keppel on, in a throwaway database")
	f.StringVar(&s3Bin, "s3-server", "", "versitygw binary: store every target's content in an S3 server on loopback")
	f.BoolVar(&s3Redirect, "s3-redirect", false, "with --s3-server: answer blob GETs with redirects to presigned S3 URLs")
	f.IntVar(&rounds, "rounds", 3, "alternating rounds")
	f.StringVar(&scenarios, "scenario", "all", "comma-separated scenarios, or all")
	f.IntVar(&base.Clients, "clients", 32, "workers of the parallel scenarios")
	f.DurationVar(&base.Duration, "duration", 10*time.Second, "timed part of each scenario per target and round")
	f.Int64Var(&base.MaxOps, "max-ops", 1_000_000, "operations per scenario, target and round at most")
	f.BoolVar(&base.NoVerify, "no-verify", false, "do not hash pulled blobs (measures the servers rather than the client)")
	f.BoolVar(&asJSON, "json", false, "print the limits, every run and the summary as JSON")
	f.BoolVar(&skipLimits, "skip-limits", false, "do not measure the machine's limits")
	f.BoolVar(&tiny, "tiny", false, "tiny content sizes and probes (for tests)")
	_ = f.MarkHidden("tiny")
	return cmd
}

// benchProcess is a registry started for a comparison.
type benchProcess struct {
	name    string
	cmd     *exec.Cmd
	dir     string
	logPath string
	target  loadgen.Target
	done    chan struct{}
}

// stop ends the process with SIGTERM (SIGKILL after stopTimeout) and
// removes its directory.
func (p *benchProcess) stop(progress io.Writer) {
	if p.cmd.Process != nil {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopTimeout):
				fmt.Fprintf(progress, "%s did not stop within %s; killing it\n", p.name, stopTimeout)
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		fmt.Fprintf(progress, "removing %s: %v\n", p.dir, err)
	}
}

func (p *benchProcess) logTail() string {
	buf, _ := os.ReadFile(p.logPath)
	if len(buf) > maxLogTailSize {
		buf = buf[len(buf)-maxLogTailSize:]
	}
	return string(buf)
}

func freeLoopbackAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startBenchProcess starts bin in dir with env (added to the environment
// without any KEPPEL_ variables) and waits until ready reports true.
func startBenchProcess(ctx context.Context, name, dir, bin string, args, env []string, ready func() bool) (*benchProcess, error) {
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEPPEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &benchProcess{name: name, cmd: cmd, dir: dir, logPath: logFile.Name(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return p, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for !ready() {
		select {
		case <-p.done:
			return p, fmt.Errorf("%s exited during startup:\n%s", name, p.logTail())
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("%s did not become ready within %s:\n%s", name, startTimeout, p.logTail())
		}
	}
	return p, nil
}

func httpStatus(method, u, user, pass string, body io.Reader) (int, error) {
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return 0, err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// s3Env returns keppel's environment for the bucket (none for nil).
func s3Env(b *loadgen.S3Bucket, redirect bool) []string {
	if b == nil {
		return nil
	}
	return loadgen.KeppelS3Env(*b, redirect)
}

func startDistribution(ctx context.Context, bin string, bucket *loadgen.S3Bucket, redirect bool, suffix string, progress io.Writer) (*benchProcess, error) {
	dir, err := os.MkdirTemp("", "keppel-bench-distribution-")
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddress()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	config := loadgen.DistributionConfig(filepath.Join(dir, "data"), addr)
	if bucket != nil {
		config = loadgen.DistributionS3Config(*bucket, addr, redirect)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	u := "http://" + addr
	fmt.Fprintf(progress, "starting distribution on %s\n", u)
	p, err := startBenchProcess(ctx, "distribution", dir, bin, []string{"serve", cfgPath}, []string{"OTEL_TRACES_EXPORTER=none"}, func() bool {
		_, err := httpStatus(http.MethodGet, u+"/v2/", "", "", nil)
		return err == nil
	})
	if p == nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.target = loadgen.Target{Name: "distribution" + suffix, URL: u, PID: p.cmd.Process.Pid}
	return p, err
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

func startKeppelForBench(ctx context.Context, bin, name string, env []string, progress io.Writer) (*benchProcess, error) {
	dir, err := os.MkdirTemp("", "keppel-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddress()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	u := "http://" + addr
	password := randomHex(16)
	env = append([]string{
		"KEPPEL_DATA_DIR=" + filepath.Join(dir, "data"),
		"KEPPEL_API_LISTEN_ADDRESS=" + addr,
		"KEPPEL_API_PUBLIC_URL=" + u,
		"KEPPEL_ADMIN_PASSWORD=" + password,
		"KEPPEL_LOG_LEVEL=warn",
	}, env...)
	fmt.Fprintf(progress, "starting %s on %s\n", name, u)
	p, err := startBenchProcess(ctx, name, dir, bin, []string{"server"}, env, func() bool {
		status, err := httpStatus(http.MethodGet, u+"/healthcheck", "", "", nil)
		return err == nil && status == http.StatusOK
	})
	if p == nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err != nil {
		return p, err
	}
	status, err := httpStatus(http.MethodPut, u+"/keppel/v1/accounts/"+benchAccount, "admin", password,
		strings.NewReader(`{"account":{"auth_tenant_id":"bench"}}`))
	if err == nil && status != http.StatusCreated && status != http.StatusOK {
		err = fmt.Errorf("HTTP %d", status)
	}
	if err != nil {
		return p, fmt.Errorf("%s: creating account %s: %w", name, benchAccount, err)
	}
	p.target = loadgen.Target{Name: name, URL: u, PID: p.cmd.Process.Pid, Username: "admin", Password: password}
	return p, nil
}

// checkLoopbackPostgres accepts postgres URLs whose host is a loopback IP
// address, localhost or a Unix socket directory.
func checkLoopbackPostgres(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("--postgres-url %q must be a postgres:// URL", raw)
	}
	host := u.Hostname()
	if h := u.Query().Get("host"); h != "" {
		host = h
	}
	if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--postgres-url: host %q is not on loopback", host)
}

// createBenchDatabase creates keppel_bench_<random> on the server and
// returns its URL and a function that drops it.
func createBenchDatabase(ctx context.Context, serverURL string) (string, func() error, error) {
	name := "keppel_bench_" + randomHex(6)
	connCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(connCtx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("connecting to %s: %w", serverURL, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(connCtx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("creating database %s: %w", name, err)
	}
	u, _ := url.Parse(serverURL)
	u.Path = "/" + name
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	return u.String(), drop, nil
}
