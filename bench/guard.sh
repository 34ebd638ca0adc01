#!/usr/bin/env bash
# The guard against fail2ban on the same input, in one run.
#
#   bench/guard.sh [filters|bans|race]  (default: every part)
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

# race: the real daemon process against fail2ban, through the kernel. A
# network namespace holds table inet moat (moat apply firewall) and, run by
# hand without systemd, `moat run` and Debian's fail2ban 1.0.2 (backend
# pyinotify, banaction nftables-multiport, database in memory), each
# following its own copy of the same sshd log. bench/guard-race writes
# the lines and watches `nft monitor` in the namespace:
#   - RACE single failures (maxretry 1), one attacker at a time, each
#     line written to both logs: time from write() to the element in each
#     daemon's set, p50/p99/max and the ratio;
#   - the burst: 5,000 attackers x 40 lines (maxretry 5) written at once,
#     to moat's log, then to fail2ban's: time until all are banned
#     (fail2ban is given F2B_TIMEOUT);
#   - the spray: SPRAY single failures from distinct addresses to moat
#     (tracked, not banned), then moat's RSS and peak RSS with them and
#     the burst's bans.
# Needs root, iproute2, nftables; installs fail2ban and python3-pyinotify
# from Debian's packages when missing.
race() {
  local pkg
  for pkg in fail2ban python3-pyinotify; do
    dpkg -s "$pkg" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null
  done
  CGO_ENABLED=0 go build -trimpath -o bin/moat ./cmd/moat
  go build -o bin/guard-race ./bench/guard-race
  RACE_NS="moat-race-$$"
  RACE_DIR=$(mktemp -d)
  trap race_cleanup EXIT
  local ns=$RACE_NS d=$RACE_DIR
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "mr$$" type veth peer name eth0 netns "$ns"
  ip -n "$ns" link set eth0 up
  ip -n "$ns" addr add 192.0.2.1/24 dev eth0
  : >"$d/moat.log"; : >"$d/moat-burst.log"; : >"$d/f2b.log"; : >"$d/f2b-burst.log"

  cat >"$d/moat.yaml" <<EOF
ssh:
  port: 22
  exposure: public
firewall:
  public_interface: eth0
guard:
  jails:
    sshd:
      source: file
      paths: [$d/moat.log]
      maxretry: 1
      bantime: 1h
    burst:
      filter: sshd
      source: file
      paths: [$d/moat-burst.log]
      maxretry: 5
      bantime: 1h
EOF
  ip netns exec "$ns" bin/moat apply firewall --yes -c "$d/moat.yaml" --root "$d/root" >/dev/null
  ip netns exec "$ns" bin/moat run -c "$d/moat.yaml" --state "$d/state" --socket "$d/moat.sock" >"$d/moat-run.log" 2>&1 &
  local moat_pid=$!
  echo "$moat_pid" >"$d/moat.pid"

  mkdir -p "$d/f2b"
  cp -r /etc/fail2ban/. "$d/f2b/"
  rm -f "$d"/f2b/jail.d/*
  cat >"$d/f2b/fail2ban.local" <<EOF
[Definition]
logtarget = $d/f2b-server.log
socket = $d/f2b.sock
pidfile = $d/f2b.pid
dbfile = :memory:
EOF
  cat >"$d/f2b/jail.local" <<EOF
[DEFAULT]
banaction = nftables-multiport
banaction_allports = nftables-allports
backend = pyinotify
ignoreself = false
findtime = 600
bantime = 3600
[sshd]
enabled = true
port = 22
logpath = $d/f2b.log
maxretry = 1
[sshd-burst]
enabled = true
filter = sshd
port = 22
logpath = $d/f2b-burst.log
maxretry = 5
EOF
  ip netns exec "$ns" fail2ban-server -f -x -c "$d/f2b" >"$d/f2b-out.log" 2>&1 &
  local f2b_pid=$!
  echo "$f2b_pid" >"$d/f2b-server.pid"

  local i
  for i in $(seq 100); do
    if bin/moat jail status --socket "$d/moat.sock" >/dev/null 2>&1 &&
      grep -q "Jail 'sshd-burst' started" "$d/f2b-server.log" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  sleep 0.5 # both sources reach the end of their empty files

  echo "machine: $(nproc) cores, $(. /etc/os-release; echo "$PRETTY_NAME"), fail2ban $(fail2ban-server -V 2>/dev/null | head -1), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  bin/guard-race -phase race -ns "$ns" -n "${RACE:-200}" -moat-log "$d/moat.log" -f2b-log "$d/f2b.log"
  # The same with fail2ban left idle: on 2 cores the two daemons wake for
  # each line together and share the CPUs.
  bin/guard-race -phase race -ns "$ns" -first "${RACE:-200}" -n "${RACE:-200}" -moat-log "$d/moat.log"
  bin/guard-race -phase burst -ns "$ns" -moat-burst-log "$d/moat-burst.log" -f2b-burst-log "$d/f2b-burst.log" \
    -f2b-timeout "${F2B_TIMEOUT:-180s}"
  bin/guard-race -phase spray -ns "$ns" -moat-burst-log "$d/moat-burst.log" -spray "${SPRAY:-1000000}" \
    -moat-pid "$moat_pid" -moat bin/moat -socket "$d/moat.sock"
  echo "  fail2ban  RSS $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$f2b_pid/status"), peak RSS $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$f2b_pid/status") (after the race and the burst)"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# race_cleanup stops what race started, by pid, and removes its namespace.
race_cleanup() {
  [ -n "${RACE_DIR:-}" ] && [ -d "$RACE_DIR" ] || return 0
  local pid
  for pid in $(cat "$RACE_DIR/moat.pid" "$RACE_DIR/f2b-server.pid" 2>/dev/null); do
    kill "$pid" 2>/dev/null || true
  done
  sleep 1
  ip netns delete "$RACE_NS" 2>/dev/null || true
  rm -rf "$RACE_DIR"
}

case "${1:-all}" in
  filters) filters ;;
  bans) bans ;;
  race) race ;;
  all) filters; bans; race ;;
  *) echo "usage: bench/guard.sh [filters|bans|race]" >&2; exit 2 ;;
esac
