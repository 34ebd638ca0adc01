#!/usr/bin/env bash
# moat audit against Lynis on this machine, in one run: wall time of each
# (median of several moat runs, and of LYNIS_RUNS Lynis runs) and the ratio.
# Needs root (both tools read what only root can). Installs Lynis from
# Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
MOAT_RUNS=${MOAT_RUNS:-11}
LYNIS_RUNS=${LYNIS_RUNS:-3}

if ! command -v lynis >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis >/dev/null
fi
CGO_ENABLED=0 go build -trimpath -o bin/moat ./cmd/moat

# time_ms CMD... prints the wall time of one run in milliseconds.
time_ms() {
  local s e
  s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N)
  echo $(( (e - s) / 1000000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

bin/moat audit --no-probe >/dev/null 2>&1 || true # warm the page cache for both
full=$(for _ in $(seq "$MOAT_RUNS"); do time_ms bin/moat audit; done | median)
noapt=$(for _ in $(seq "$MOAT_RUNS"); do time_ms bin/moat audit --skip-apt; done | median)
lynis=$(for _ in $(seq "$LYNIS_RUNS"); do time_ms lynis audit system --quick --no-colors --no-log; done | median)

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), lynis $(lynis show version 2>/dev/null)"
printf 'moat audit (full):                   %6d ms  (median of %d)\n' "$full" "$MOAT_RUNS"
printf 'moat audit --skip-apt:               %6d ms  (median of %d)\n' "$noapt" "$MOAT_RUNS"
printf 'lynis audit system --quick:          %6d ms  (median of %d)\n' "$lynis" "$LYNIS_RUNS"
awk -v l="$lynis" -v m="$full" 'BEGIN {printf "ratio lynis / moat: %.0fx\n", l / (m > 0 ? m : 1)}'
