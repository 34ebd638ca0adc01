#!/usr/bin/env bash
# The audit's reachability verdicts against the kernel, long form: STATES
# random firewall states (default 500) loaded into a lab namespace, each
# listener at each address compared with a real TCP exchange from an
# attacker namespace. Prints the seed, the case counts, the disagreements
# (0 is the target) and the rate of uncertain verdicts; the full log, with
# every disagreeing state written out, goes to LOG. Needs root, nftables,
# iptables and iproute2. SEED reruns a given sequence.
set -euo pipefail
cd "$(dirname "$0")/.."
STATES=${STATES:-500}
SEED=${SEED:-$(date +%s%N)}
LOG=${LOG:-/tmp/moat-reachdiff.log}
echo "load: $(uptime)"
MOAT_TEST_STRICT=1 MOAT_DIFF_STATES="$STATES" MOAT_DIFF_SEED="$SEED" \
  go test -count=1 -timeout 90m -v -run '^TestReachabilityDifferential$' ./internal/audit/ >"$LOG" 2>&1 || true
grep -E 'differential harness|kernel reachable|^\s+seed [0-9]+$|^(--- |ok|FAIL)' "$LOG" || true
echo "full log: $LOG"
