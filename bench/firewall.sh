#!/usr/bin/env bash
# The firewall's figures for docs/benchmarks.md, in one run on this machine:
#
#   sudo bench/firewall.sh            (COUNT=5)
#
# All of it happens in network namespaces the Go benchmarks create (scratch
# namespaces and internal/lab hosts); the host's own ruleset is not touched.
#   - BenchmarkBan: 10,000 and 100,000 bans into empty ban sets, over netlink
#   - BenchmarkBanMillion: 1,000,000 bans, with the kernel memory they take
#     (growth of Slab in /proc/meminfo around the add)
#   - BenchmarkReplace: the nft transaction replacing a loaded table in
#     place, 100,000 bans kept
#   - BenchmarkApply: all of `moat apply firewall` (nft -c, lockout check,
#     transaction, boot files), with no bans and with 100,000
#   - BenchmarkConnect: TCP connects per second from an attacker host to an
#     open port of a vps host: moat with 0 and 100,000 bans, no firewall,
#     and 20,000 fail2ban-style iptables rules (installs iptables from
#     Debian's packages when missing)
# Each benchmark runs COUNT times; the medians of its metrics are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-5}

if [ "$(id -u)" != 0 ]; then
  echo "bench/firewall.sh: needs root (network namespaces, nftables)" >&2
  exit 1
fi
for tool in nft iptables-restore; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    pkg=nftables
    [ "$tool" = iptables-restore ] && pkg=iptables
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null
  fi
done

OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
run() {
  go test -run '^$' -bench "$1" -benchtime "$2" -count "$COUNT" -timeout 60m ./internal/firewall/ | tee -a "$OUT" | grep -E '^Benchmark' || true
}
run 'BenchmarkBan$|BenchmarkBanNFT' 3x
run 'BenchmarkBanMillion' 1x
run 'BenchmarkReplace' 10x
run 'BenchmarkApply' 5x
run 'BenchmarkConnect' 1x

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), $(nft --version), $(iptables --version)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians of $COUNT runs:"
# Every "value unit" pair of every benchmark line, grouped by benchmark and
# unit, median taken (plain awk: mawk has no asort).
awk '/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name)
  for (i = 3; i + 1 <= NF; i += 2) printf "%s %s\t%s\n", name, $(i+1), $i
}' "$OUT" | sort -t "$(printf '\t')" -k1,1 -k2,2g | awk -F '\t' '
{ k = $1; n[k]++; v[k, n[k]] = $2 }
END {
  for (k in n) {
    c = n[k]
    m = (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
    printf "  %-70s %14.4g\n", k, m
  }
}' | sort
