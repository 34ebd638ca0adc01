#!/usr/bin/env bash
# moat probe against nmap on the same lab targets, in one run: a full
# 65,535-port TCP connect scan of a moat-protected host (default drop:
# almost every port filtered) and of an unprotected one (almost every port
# closed), by `moat probe --no-udp --ports all` and by `nmap -sT -p- -T4`,
# one after the other from the same attacker namespace. Prints the wall
# times, their ratio, peak RSS, and whether the open/closed/filtered
# verdicts agree port for port. Needs root, nftables, iproute2, nmap,
# openssh-server, redis-server and nginx (the lab of TestProbeLab).
# TARGETS=198.51.100.1 limits it to the protected host; SYN=1 adds
# `moat probe --syn` against `nmap -sS` on each.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nmap >/dev/null || { echo "needs nmap (apt-get install -y nmap)" >&2; exit 1; }
echo "load: $(uptime)"
echo "nmap: $(nmap --version | head -1)"
LOG=${LOG:-/tmp/moat-bench-probe.log}
MOAT_TEST_STRICT=1 MOAT_PROBE_BENCH=1 MOAT_PROBE_BENCH_TARGETS="${TARGETS:-}" MOAT_PROBE_BENCH_SYN="${SYN:-}" \
  go test -count=1 -timeout 30m -v -run '^TestProbeBenchVersusNmap$' ./internal/probe/ >"$LOG" 2>&1 || true
grep -E '^(target|  verdicts)|^(--- |ok|FAIL)' "$LOG" || true
echo "load after: $(uptime)"
echo "full log: $LOG"
