#!/usr/bin/env bash
# Runs the whole test suite: static checks, unit and end-to-end tests with the
# race detector (SQLite and a real PostgreSQL), the OCI conformance suite
# against the real binary (SQLite, PostgreSQL, and PostgreSQL with a real S3
# server and with a real Swift), and bounded fuzzing.
# It finds or starts what the tests need and is safe to run repeatedly.
#
# Environment:
#   KEPPEL_TEST_POSTGRES_URL  PostgreSQL server to create throwaway databases on
#                             (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
#   KEPPEL_TEST_REDIS_URL     Redis server for the rate limit tests
#                             (default redis://127.0.0.1:6379/0, started if down)
#   FUZZTIME                  time per fuzz target (default 20s; 0 skips fuzzing)
#   KEPPEL_CACHE_DIR          where built tools are cached (default ~/.cache/keppel-ci)
set -euo pipefail
cd "$(dirname "$0")/.."

CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111
VERSITYGW_VERSION=v1.8.0
DISTRIBUTION_VERSION=v3.1.2
CRANE_VERSION=v0.22.1 # the go-containerregistry version of go.mod
CACHE_DIR=${KEPPEL_CACHE_DIR:-$HOME/.cache/keppel-ci}
export KEPPEL_TEST_POSTGRES_URL=${KEPPEL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
FUZZTIME=${FUZZTIME:-20s}

log() { printf '\n=== %s\n' "$*"; }

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  else
    echo "PostgreSQL is not installed; install it (Debian: apt-get install postgresql) or set KEPPEL_TEST_POSTGRES_URL" >&2
    exit 1
  fi
  for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 0.2
  done
  echo "PostgreSQL did not start" >&2
  exit 1
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  log "starting Redis"
  if command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  else
    echo "Redis is not installed; install it (Debian: apt-get install redis-server) or set KEPPEL_TEST_REDIS_URL" >&2
    exit 1
  fi
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "Redis did not start" >&2
  exit 1
}

ensure_conformance() {
  local bin="$CACHE_DIR/conformance-$CONFORMANCE_VERSION"
  if [ ! -x "$bin" ]; then
    log "building the OCI conformance suite $CONFORMANCE_VERSION"
    local src="$CACHE_DIR/conformance-src-$CONFORMANCE_VERSION"
    mkdir -p "$src"
    (
      cd "$src"
      [ -f go.mod ] || go mod init keppel-conformance-build >/dev/null 2>&1
      go get "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION"
      go build -o "$bin.tmp" github.com/opencontainers/distribution-spec/conformance
      mv "$bin.tmp" "$bin"
    )
  fi
  export KEPPEL_CONFORMANCE_BIN="$bin"
}

# go_install_tool DIR BINARY PACKAGE@VERSION builds a tool once per machine
# into $CACHE_DIR/DIR (a directory per version) and prints its path.
go_install_tool() {
  local bin="$CACHE_DIR/$1/$2"
  if [ ! -x "$bin" ]; then
    log "building $3 (once per machine)" >&2
    mkdir -p "$(dirname "$bin")"
    GOBIN="$(dirname "$bin")" GOFLAGS=-mod=mod go install "$3" >&2
  fi
  echo "$bin"
}

# versitygw is the real S3 server that the S3 driver, the conformance run on
# S3 and the scale-out tests use; each test starts its own on a loopback port.
ensure_versitygw() {
  KEPPEL_VERSITYGW_BIN=$(go_install_tool "versitygw-$VERSITYGW_VERSION" versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
  export KEPPEL_VERSITYGW_BIN KEPPEL_TEST_REQUIRE_S3=1
}

# The CNCF Distribution registry is the upstream of the pull-through tests
# (and the baseline of `keppel bench compare`).
ensure_distribution() {
  KEPPEL_DISTRIBUTION_BIN=$(go_install_tool "distribution-$DISTRIBUTION_VERSION" registry "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION")
  export KEPPEL_DISTRIBUTION_BIN KEPPEL_TEST_REQUIRE_DISTRIBUTION=1
}

# crane runs the README's tour (internal/test/e2e/readme_test.go).
ensure_crane() {
  KEPPEL_CRANE_BIN=$(go_install_tool "crane-$CRANE_VERSION" crane "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION")
  export KEPPEL_CRANE_BIN KEPPEL_TEST_REQUIRE_CRANE=1
}

# A single-replica OpenStack Swift on loopback (Debian's packages, installed
# if missing) for the Swift driver and the conformance run on Swift; it keeps
# running between runs and is reused.
ensure_swift() {
  local env
  env=$(scripts/swift-aio.sh "$CACHE_DIR/swift-aio")
  eval "$env"
  export KEPPEL_TEST_REQUIRE_SWIFT=1
}

log "static checks"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

ensure_postgres
if [ -z "${KEPPEL_TEST_REDIS_URL:-}" ]; then ensure_redis; fi
ensure_conformance
ensure_versitygw
ensure_distribution
ensure_crane
ensure_swift

log "go test -race ./..."
go test -race -count=1 -timeout 20m ./...

log "micro-benchmarks of the hot paths (one iteration each, to keep them working)"
go test -run '^$' -bench . -benchtime 1x ./internal/oci ./internal/auth ./internal/db/dbcache ./internal/scan/builtin

if [ "$FUZZTIME" != "0" ]; then
  log "fuzzing ($FUZZTIME per target)"
  FUZZTIME=$FUZZTIME scripts/fuzz.sh
fi

log "all tests passed"
