#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after the other, each
# for a bounded time.
#
# Usage: scripts/fuzz.sh [package pattern...]     (default: ./...)
# Environment:
#   FUZZTIME  how long each target runs, as for `go test -fuzztime`
#             (a duration like 20s or 5m, or a count like 10000x); default 20s
#
# A failing input is written by `go test` to the package's
# testdata/fuzz/<target>/ directory; commit it as a regression test together
# with the fix. The script exits non-zero if any target failed.
#
# Go's fuzz coordinator can end a duration-bounded run with a bare
# "context deadline exceeded" failure at the deadline when the machine is
# busy (golang/go#75804, fixed after Go 1.26). Such a run writes no failing
# input; the script reports it, replays the target's corpus to make sure
# nothing reproducible was found, and does not count it as a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime="${FUZZTIME:-20s}"
if [[ $# -eq 0 ]]; then
  set -- ./...
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# corpus_listing prints the inputs stored for one target, one per line.
corpus_listing() {
  local dir="$1/testdata/fuzz/$2"
  if [[ -d "$dir" ]]; then
    ls -1 "$dir"
  fi
}

# Only packages with test files can have fuzz targets.
mapfile -t packages < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "$@")

failed=()
flaked=()
ran=0
for entry in "${packages[@]}"; do
  [[ -n "$entry" ]] || continue
  pkg="${entry%% *}"
  dir="${entry#* }"
  if ! listing="$(go test -list '^Fuzz' "$pkg")"; then
    echo "!! cannot list the fuzz targets of $pkg" >&2
    failed+=("$pkg (listing)")
    continue
  fi
  mapfile -t targets < <(grep -E '^Fuzz' <<<"$listing" || true)
  for target in "${targets[@]}"; do
    [[ -n "$target" ]] || continue
    echo "== $pkg $target ($fuzztime)"
    ran=$((ran + 1))
    before="$(corpus_listing "$dir" "$target")"
    if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$log"; then
      continue
    fi
    after="$(corpus_listing "$dir" "$target")"
    if [[ "$before" == "$after" ]] && grep -q '^    context deadline exceeded$' "$log" &&
      go test -run="^${target}\$" "$pkg" >/dev/null; then
      echo "!! $target: deadline race of the fuzz coordinator, no failing input; not counted" >&2
      flaked+=("$pkg $target")
    else
      failed+=("$pkg $target")
    fi
  done
done

echo "== ran $ran fuzz targets: $((ran - ${#failed[@]} - ${#flaked[@]})) passed, ${#flaked[@]} deadline races, ${#failed[@]} failed"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
