#!/usr/bin/env bash
# The guard against fail2ban on the same input, in one run.
#
#   bench/guard.sh [filters|bans]  (default: every part)
#
# filters: a generated auth.log (LINES lines, OpenSSH 9, thousands of IPv4
# and IPv6 attackers, logins and other daemons' noise) read by
# `moat filter test sshd` on one core (GOMAXPROCS=1) and by Debian's
# fail2ban-regex with /etc/fail2ban/filter.d/sshd.conf. fail2ban-regex reads
# about 20k lines/s, so it reads the first F2B_LINES lines only: lines/s
# are compared, not times. Each figure is the median of RUNS runs.
# Installs fail2ban from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-1000000}
F2B_LINES=${F2B_LINES:-100000}
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d)}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

filters() {
  if ! command -v fail2ban-regex >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q fail2ban >/dev/null
  fi
  CGO_ENABLED=0 go build -trimpath -o bin/moat ./cmd/moat
  local gen
  gen=$(go run ./bench/gen-sshd-log -lines "$LINES" -o "$WORK/auth.log" 2>&1)
  head -n "$F2B_LINES" "$WORK/auth.log" >"$WORK/auth-head.log"
  local lines f2b_lines
  lines=$(wc -l <"$WORK/auth.log")
  f2b_lines=$(wc -l <"$WORK/auth-head.log")

  # Each run records wall-clock and CPU (user+sys) lines/s: on a shared
  # machine the CPU figure is what the code costs, the wall figure what
  # the run took.
  local mw=() mc=() ml=() fw=() fc=() out t
  TIMEFORMAT='%R %U %S'
  for _ in $(seq "$RUNS"); do
    t=$( { time GOMAXPROCS=1 bin/moat filter test sshd "$WORK/auth.log" --json >"$WORK/moat.json"; } 2>&1 )
    mw+=("$(rate "$lines" "$t" wall)"); mc+=("$(rate "$lines" "$t" cpu)")
    ml+=("$(jq -r '.lines_per_second | floor' "$WORK/moat.json")")
  done
  for _ in $(seq "$RUNS"); do
    t=$( { time fail2ban-regex "$WORK/auth-head.log" /etc/fail2ban/filter.d/sshd.conf >"$WORK/f2b.out" 2>&1; } 2>&1 )
    fw+=("$(rate "$f2b_lines" "$t" wall)"); fc+=("$(rate "$f2b_lines" "$t" cpu)")
  done
  local mmw mmc mml mfw mfc
  mmw=$(printf '%s\n' "${mw[@]}" | median); mmc=$(printf '%s\n' "${mc[@]}" | median)
  mml=$(printf '%s\n' "${ml[@]}" | median)
  mfw=$(printf '%s\n' "${fw[@]}" | median); mfc=$(printf '%s\n' "${fc[@]}" | median)

  echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(. /etc/os-release; echo "$PRETTY_NAME"), $(go version | awk '{print $3}'), $(fail2ban-regex --version 2>/dev/null | head -1)"
  echo "log: $lines lines ($gen)"
  echo "moat filter test sshd (GOMAXPROCS=1), all $lines lines:"
  jq -r '"  lines \(.lines): matched \(.matched), ignored \(.ignored), missed \(.missed); failures \(.failures), \(.attributed) attributed to \(.addresses) addresses"' "$WORK/moat.json"
  printf '  %10.0f lines/s wall clock  (runs: %s)\n' "$mmw" "${mw[*]}"
  printf '  %10.0f lines/s CPU time    (runs: %s)\n' "$mmc" "${mc[*]}"
  printf '  %10.0f lines/s parse loop, as moat reports it (runs: %s)\n' "$mml" "${ml[*]}"
  echo "fail2ban-regex $WORK/auth-head.log /etc/fail2ban/filter.d/sshd.conf, first $f2b_lines lines:"
  grep -E '^Lines:' "$WORK/f2b.out" | sed 's/^/  /'
  printf '  %10.0f lines/s wall clock  (runs: %s)\n' "$mfw" "${fw[*]}"
  printf '  %10.0f lines/s CPU time    (runs: %s)\n' "$mfc" "${fc[*]}"
  awk -v mw="$mmw" -v mc="$mmc" -v fw="$mfw" -v fc="$mfc" \
    'BEGIN {printf "ratio moat / fail2ban-regex: %.0fx wall clock, %.0fx CPU time (medians of %d runs)\n", mw / fw, mc / fc, '"$RUNS"'}'
}

# rate LINES "REAL USER SYS" wall|cpu prints lines per second.
rate() {
  awk -v n="$1" -v how="$3" '{s = (how == "wall") ? $1 : $2 + $3; printf "%.0f", n / (s > 0 ? s : 0.001)}' <<<"$2"
}

# bans: the whole data path in process (file → filter → jail → SQLite store
# → table inet moat's ban set over netlink, in a lab network namespace):
# time from a failure line appended to the log to the attacker's address in
# the kernel set, p50/p99 over BANS single bans (maxretry 1); and a burst of
# 200,000 lines from 5,000 attackers written at once (maxretry 5), timed
# until all 5,000 are banned. Needs root and nftables.
bans() {
  echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  go test -run '^$' -bench 'BenchmarkTimeToBan' -benchtime "${BANS:-1000}x" ./internal/daemon | grep -E '^Benchmark'
  go test -run '^$' -bench 'BenchmarkBurst' -benchtime "${BURSTS:-3}x" ./internal/daemon | grep -E '^Benchmark'
}

case "${1:-all}" in
  filters) filters ;;
  bans) bans ;;
  all) filters; bans ;;
  *) echo "usage: bench/guard.sh [filters|bans]" >&2; exit 2 ;;
esac
