#!/usr/bin/env bash
# The fleet's figures, in one run (needs root: network namespaces, nftables):
#  1. three embedded NATS nodes clustered on loopback (go test -bench):
#     A→B latency p50/p99 over 200 decisions, decisions/s applied by B and
#     C when A publishes FLEET_N at once, catch-up of FLEET_CATCHUP by a
#     returning node;
#  2. three `moat run` processes in lab namespaces (the real binary):
#     FLEET_E2E bans decided by A's jail until B holds them all, C's
#     catch-up after a restart, and each moat's resident memory with them.
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET_N=${FLEET_N:-20000}
FLEET_CATCHUP=${FLEET_CATCHUP:-100000}
FLEET_E2E=${FLEET_E2E:-100000}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -count=1 -run '^$' -bench 'BenchmarkPropagation' -benchtime "${FLEET_N}x" ./internal/fleet/ | grep -E '^Benchmark'
go test -count=1 -run '^$' -bench 'BenchmarkCatchUp' -benchtime "${FLEET_CATCHUP}x" -timeout 20m ./internal/fleet/ | grep -E '^Benchmark'
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! MOAT_FLEET_BENCH_N=$FLEET_E2E go test -count=1 -run '^TestLabFleetLoad$' -v -timeout 30m ./internal/fleet/ >"$out" 2>&1; then
  grep -v '"time"' "$out" | tail -40
  exit 1
fi
grep -E '^FLEET-BENCH' "$out" | sed 's/^FLEET-BENCH //'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
