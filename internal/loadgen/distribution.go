package loadgen

import "fmt"

// DistributionConfig returns the configuration of a CNCF Distribution
// registry as the benchmarks run it: filesystem storage under rootDir,
// deletes enabled, access log off, listening on addr (loopback).
func DistributionConfig(rootDir, addr string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, rootDir, addr)
}
