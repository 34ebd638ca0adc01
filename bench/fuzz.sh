#!/usr/bin/env bash
# Every fuzz target, each for a given time: the long runs CI cannot give.
#
#   bench/fuzz.sh [-t DURATION] [-p WORKERS] [PACKAGE...]
#
# DURATION is per target (go test's -fuzztime: 5m, 90s, 100000x; default
# 5m, or FUZZTIME). PACKAGE defaults to every package of the module
# (./...); a target is a func FuzzXxx in a _test.go file. WORKERS is go
# test's -parallel (default 1: the machine may be shared).
#
# A finding is a failing input: go test writes it to the package's
# testdata/fuzz/FuzzXxx/ directory, where it stays as a seed, so that
# `go test` replays it from then on (commit it with the fix). The script
# goes on with the next target and, at the end, lists every target that
# failed and every new file under testdata/fuzz, and exits 1 if any failed.
# The corpus the fuzzer grows but that found nothing stays in go's cache
# (go env GOCACHE)/fuzz, not in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

dur=${FUZZTIME:-5m}
workers=${FUZZ_WORKERS:-1}
while getopts "t:p:h" o; do
  case $o in
    t) dur=$OPTARG ;;
    p) workers=$OPTARG ;;
    *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
before=$(git status --porcelain --untracked-files=all -- '*/testdata/fuzz/*' 2>/dev/null || true)

failed=()
ran=0
start=$(date +%s)
# go list resolves the patterns; only packages with test files can hold
# targets.
while read -r pkg dir; do
  [ -n "$pkg" ] || continue
  # Targets by their declarations, so nothing is built for packages that
  # have none.
  mapfile -t targets < <(grep -hoE '^func Fuzz[A-Za-z0-9_]+\(' "$dir"/*_test.go 2>/dev/null |
    sed -e 's/^func //' -e 's/($//' | sort -u)
  for t in "${targets[@]}"; do
    ran=$((ran + 1))
    printf '%-50s %-28s ' "$pkg" "$t"
    s=$(date +%s)
    if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$dur" -parallel "$workers" "$pkg" >"$log/out" 2>&1; then
      echo "ok   $(($(date +%s) - s))s $(grep -oE 'execs: [0-9]+' "$log/out" | tail -1)"
    elif grep -q 'context deadline exceeded' "$log/out" && ! grep -q 'Failing input' "$log/out"; then
      # go test ends this way when the time is up before the seed corpus
      # has been run once: nothing failed, the time was too short.
      echo "ok   $(($(date +%s) - s))s (too short to get past the seed corpus)"
    else
      echo "FAIL $(($(date +%s) - s))s"
      sed 's/^/    /' "$log/out" | grep -vE '^    fuzz: elapsed' | tail -25
      failed+=("$pkg $t")
    fi
  done
done < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "${pkgs[@]}")

after=$(git status --porcelain --untracked-files=all -- '*/testdata/fuzz/*' 2>/dev/null || true)
echo
echo "$ran targets, $dur each, $(($(date +%s) - start))s in all; load: $(uptime | sed 's/.*load average: //')"
new=$(comm -13 <(echo "$before" | sort) <(echo "$after" | sort) | sed 's/^...//')
if [ -n "$new" ]; then
  echo "new findings kept as seeds (commit them with their fix):"
  echo "$new" | sed 's/^/  /'
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "no failures"
