#!/usr/bin/env bash
# The ban sets' long runs and figures, in one run on this machine:
#
#   sudo bench/bansets.sh            (STEPS=2000 RUNS=5 FUZZTIME=2m)
#
# - the interval property test (internal/ban TestKernelSetIsExactlyTheBans)
#   RUNS times with STEPS random ban/unban/expire steps each over IPv4 and
#   IPv6 prefixes, against real nftables sets in a lab namespace (CI runs 60
#   steps); a failure prints the seed (MOAT_PROPERTY_SEED replays it)
# - the stored-prefix parser's fuzzer for FUZZTIME (a crasher lands in
#   internal/ban/testdata/fuzz: keep it as a seed)
# - the cost of one ban over netlink, a batch, and a decision (kernel then
#   store), with the load printed before and after: docs/benchmarks.md
#   ("Bans: one element over netlink, a batch, a decision")
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-2000}
RUNS=${RUNS:-5}
FUZZTIME=${FUZZTIME:-2m}

if [ "$(id -u)" != 0 ]; then
  echo "bench/bansets.sh: needs root (network namespaces, nftables)" >&2
  exit 1
fi
for i in $(seq "$RUNS"); do
  MOAT_PROPERTY_SEED=$(date +%s%N) MOAT_PROPERTY_STEPS=$STEPS go test -count=1 -run TestKernelSetIsExactlyTheBans -v -timeout 60m ./internal/ban/ |
    grep -E 'seed|steps|FAIL|ok'
done
go test -run XXX -fuzz FuzzParsePrefix -fuzztime "$FUZZTIME" ./internal/ban/
uptime
go test -run XXX -bench 'BenchmarkAddOne|BenchmarkAddBatch' -benchtime 200x ./internal/firewall/ | grep -E '^Benchmark'
go test -run XXX -bench 'BenchmarkApply(One|KernelOnly)' -benchtime 1000x ./internal/ban/ | grep -E '^Benchmark'
uptime
