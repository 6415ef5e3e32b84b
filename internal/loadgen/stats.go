package loadgen

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Percentile returns the p-th percentile (0 < p ≤ 100) of the durations by
// the nearest-rank method: the smallest value such that at least p percent
// of the values are less than or equal to it. It sorts ds in place and
// returns 0 for an empty slice.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(float64(len(ds))*p/100 + 0.999999999)
	rank = max(1, min(rank, len(ds)))
	return ds[rank-1]
}

// Result is what one scenario measured.
type Result struct {
	Scenario string        `json:"scenario"`
	Clients  int           `json:"clients"`
	Ops      int64         `json:"ops"`
	Errors   int64         `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Bytes    int64         `json:"bytes"`
	OpsPerS  float64       `json:"ops_per_second"`
	MBPerS   float64       `json:"mb_per_second,omitempty"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	// FirstError is the first error seen, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
	// Server figures, when a PID was given: CPU seconds (user+system)
	// spent during the timed part and peak resident memory (VmHWM; since
	// the scenario began if the kernel let us reset it, else since the
	// server started).
	ServerCPUSeconds float64 `json:"server_cpu_seconds,omitempty"`
	ServerPeakRSS    int64   `json:"server_peak_rss_bytes,omitempty"`
	PeakRSSReset     bool    `json:"server_peak_rss_reset,omitempty"`
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go
// supports.
const clockTicks = 100

// procCPUSeconds returns user+system CPU seconds of the process from
// /proc/<pid>/stat.
func procCPUSeconds(pid int) (float64, error) {
	buf, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	s := string(buf)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(s[end+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return float64(utime+stime) / clockTicks, nil
}

// procPeakRSS returns VmHWM of the process in bytes.
func procPeakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmHWM: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("VmHWM not found in /proc/%d/status", pid)
}

// resetPeakRSS asks the kernel to reset VmHWM to the current RSS (writing 5
// to clear_refs; allowed for processes of the same user). It reports
// whether that worked.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}
