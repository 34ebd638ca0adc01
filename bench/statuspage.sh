#!/usr/bin/env bash
# The status page served by a real `moat run`, with 100,000 bans in the
# store (all in the last week, a tenth in force) and a year of drift
# audits every 15 minutes, in a throwaway network namespace:
#
#   sudo bench/statuspage.sh            (LOADS=100)
#
# Three series of LOADS page loads with curl, p50 and p99 of curl's
# time_total:
#   cached      loads in a row (the page is built once per change or
#               refresh interval)
#   after-ban   each load after a `moat ban` (the page is rebuilt: status,
#               the history's new entries, rendering)
#   revalidate  an idle tab's conditional request (If-None-Match: 304)
# and the peer: nginx serving the same page's bytes as a static file, the
# floor for one HTTP load here. Target: p99 <= 50 ms (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
LOADS=${LOADS:-100}

if [ "$(id -u)" != 0 ]; then
  echo "bench/statuspage.sh: needs root (a network namespace, nftables)" >&2
  exit 1
fi
for t in curl ip nginx go; do
  command -v "$t" >/dev/null || { echo "bench/statuspage.sh: needs $t (apt-get install -y curl iproute2 nginx-light)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/moat-bench-statuspage.XXXXXX)
ns=moatbench-sp-$$
moat_pid=
nginx_pid=
cleanup() {
  [ -n "$moat_pid" ] && kill "$moat_pid" 2>/dev/null && wait "$moat_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$tmp/moat" ./cmd/moat
echo "fixture: 100,000 bans, a year of audits ..."
MOAT_BENCH_STATUSPAGE_DIR=$tmp/state go test -count=1 -run '^TestStatusPageBenchFixture$' ./internal/daemon/ >/dev/null

ip netns add "$ns"
ip -n "$ns" link set lo up
cat >"$tmp/moat.yaml" <<YAML
firewall:
  mode: bans-only
guard:
  enabled: false
status_page:
  listen: 127.0.0.1:9470
  refresh: 30s
YAML
ip netns exec "$ns" "$tmp/moat" run -c "$tmp/moat.yaml" --state "$tmp/state" --socket "$tmp/moat.sock" 2>"$tmp/moat.log" &
moat_pid=$!
url=http://127.0.0.1:9470/
for _ in $(seq 200); do
  ip netns exec "$ns" curl -sf -o /dev/null "$url" && break
  sleep 0.1
done
ip netns exec "$ns" curl -sf -o "$tmp/page.html" "$url" || { cat "$tmp/moat.log"; exit 1; }

# load N [curl args...]: N loads, one time_total per line.
load() {
  local n=$1
  shift
  for _ in $(seq "$n"); do
    ip netns exec "$ns" curl -s -o /dev/null -w '%{time_total}\n' "$@" "$url"
  done
}
stats() { # p50 and p99 in ms of the times on stdin
  sort -n | awk '{t[NR]=$1*1000} END {i=int(NR*0.99); if (i<1) i=1; printf "p50 %.1f ms  p99 %.1f ms  (%d loads)\n", t[int(NR/2)+1], t[i], NR}'
}

uptime
echo -n "moat cached      "; load "$LOADS" | tee "$tmp/cached" | stats
echo -n "moat after-ban   "
for i in $(seq "$LOADS"); do
  "$tmp/moat" ban "198.18.$((i / 256)).$((i % 256))" --for 1h --reason bench --socket "$tmp/moat.sock" >/dev/null
  load 1
done | stats
etag=$(ip netns exec "$ns" curl -sI "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag" {print $2}')
codes=$(ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$url")
echo -n "moat revalidate  "; load "$LOADS" -H "If-None-Match: $etag" | stats
echo "  (conditional request answered $codes)"

# The peer: nginx serving the page's bytes as a file.
mkdir -p "$tmp/www" "$tmp/nginx"
cp "$tmp/page.html" "$tmp/www/index.html"
cat >"$tmp/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx;
  proxy_temp_path $tmp/nginx;
  fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx;
  scgi_temp_path $tmp/nginx;
  server { listen 127.0.0.1:9471; root $tmp/www; }
}
CONF
ip netns exec "$ns" nginx -c "$tmp/nginx/nginx.conf" &
nginx_pid=$!
url=http://127.0.0.1:9471/
for _ in $(seq 50); do ip netns exec "$ns" curl -sf -o /dev/null "$url" && break; sleep 0.1; done
echo -n "nginx static     "; load "$LOADS" | tee "$tmp/nginx.times" | stats
p99() { sort -n "$1" | awk '{t[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; print t[i]}'; }
awk -v m="$(p99 "$tmp/cached")" -v n="$(p99 "$tmp/nginx.times")" 'BEGIN {printf "ratio moat cached / nginx static, p99: %.2f\n", m/n}'
echo "page: $(wc -c <"$tmp/page.html") bytes"
uptime
