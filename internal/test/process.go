package test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildKeppel builds the keppel binary once per test process and returns
// its path.
func BuildKeppel(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keppel-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "keppel")
		cmd := exec.Command("go", "build", "-o", buildPath, "keppel/cmd/keppel")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building keppel: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Process is a keppel binary running for a test.
type Process struct {
	// URL is the base URL, Addr the host:port it listens on.
	URL, Addr string
	Cmd       *exec.Cmd
	logPath   string
	stop      func()
}

// Stop ends the process (with SIGINT, as an operator would) and waits for it.
func (p *Process) Stop() { p.stop() }

// Log returns what the process printed so far.
func (p *Process) Log() string {
	buf, _ := os.ReadFile(p.logPath)
	return string(buf)
}

// FreeAddress returns a loopback address with a port that was free a moment ago.
func FreeAddress(t testing.TB) string {
	t.Helper()
	return FreeAddressOn(t, "127.0.0.1")
}

// FreeAddressOn is FreeAddress on another loopback IP (127.0.0.2, …), so
// that several registries of a test have host names of their own.
func FreeAddressOn(t testing.TB, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartKeppel runs `keppel server` with the admin password AdminPassword, a
// fresh data directory and the extra environment, waits until it is
// healthy, and stops it when the test ends.
func StartKeppel(t testing.TB, extraEnv ...string) *Process {
	t.Helper()
	return startKeppel(t, []string{"server"}, extraEnv)
}

// StartKeppelAPI runs `keppel server api` (no janitor) like StartKeppel.
func StartKeppelAPI(t testing.TB, extraEnv ...string) *Process {
	t.Helper()
	return startKeppel(t, []string{"server", "api"}, extraEnv)
}

// StartKeppelJanitor runs `keppel server janitor` with the environment and
// waits until it runs its jobs.
func StartKeppelJanitor(t testing.TB, extraEnv ...string) *Process {
	t.Helper()
	return startKeppel(t, []string{"server", "janitor"}, extraEnv)
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	p.stop()
}

func startKeppel(t testing.TB, args []string, extraEnv []string) *Process {
	t.Helper()
	bin := BuildKeppel(t)
	addr := ""
	for _, kv := range extraEnv {
		if a, ok := strings.CutPrefix(kv, "KEPPEL_API_LISTEN_ADDRESS="); ok {
			addr = a // the caller chose the address (see FreeAddressOn)
		}
	}
	if addr == "" {
		addr = FreeAddress(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	janitorOnly := len(args) == 2 && args[1] == "janitor"
	cmd.Env = append(os.Environ(),
		"KEPPEL_API_LISTEN_ADDRESS="+addr,
		"KEPPEL_DATA_DIR="+t.TempDir(),
		"KEPPEL_ADMIN_PASSWORD="+AdminPassword,
		"KEPPEL_LOG_LEVEL=warn",
	)
	if janitorOnly {
		cmd.Env = append(cmd.Env, "KEPPEL_LOG_LEVEL=info")
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scheme, client := "http", http.DefaultClient
	for _, kv := range extraEnv {
		if strings.HasPrefix(kv, "KEPPEL_API_TLS_CERT_FILE=") && kv != "KEPPEL_API_TLS_CERT_FILE=" {
			scheme = "https"
			client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		}
	}
	p := &Process{URL: scheme + "://" + addr, Addr: addr, Cmd: cmd, logPath: logFile.Name()}
	var stopOnce sync.Once
	p.stop = func() {
		stopOnce.Do(func() {
			cancel()
			_ = cmd.Wait()
			logFile.Close()
		})
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", p.Log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for janitorOnly {
		if strings.Contains(p.Log(), "keppel janitor is running") {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the keppel janitor did not start within 30s:\n%s", p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		resp, err := client.Get(p.URL + "/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("keppel did not become healthy within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CreateAccount creates an account through the management API as admin.
func (p *Process) CreateAccount(t testing.TB, name, tenant string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, p.URL+"/keppel/v1/accounts/"+name,
		strings.NewReader(`{"account":{"auth_tenant_id":"`+tenant+`"}}`))
	req.SetBasicAuth("admin", AdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("creating account %s: HTTP %d", name, resp.StatusCode)
	}
}

// PeakRSS returns the peak resident memory of the process (VmHWM) in bytes.
func (p *Process) PeakRSS() (int64, error) {
	return procStatusBytes(p.Cmd.Process.Pid, "VmHWM:")
}

func procStatusBytes(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing %s: %w", field, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s not found in /proc/%d/status", field, pid)
}
