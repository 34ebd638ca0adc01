#!/usr/bin/env bash
# moat's gateway against nginx and Caddy as HTTPS reverse proxies, over
# HTTP/1.1 and HTTP/2, side by side in one run on this machine:
#
#   bench/gateway.sh        (RUNS=3 SECS=10 CONNS=64 STREAMS=1 IDLE=5000)
#
# A small Go upstream on loopback (bench/gateway-tools upstream); in front of
# it, each on its own port with the same self-signed certificate, HTTP/2 on:
#   - nginx (Debian's nginx-light), tuned: 2 workers, upstream keepalive 64,
#     access log off
#   - Caddy (Debian's), reverse_proxy with its defaults, no access log
#   - moat gateway serve with every policy: allowlist, geo (a generated mmdb
#     of 50,000 networks), a rate limit high enough never to trip, extra
#     headers (plus the built-in honeypot check, strip-list, host and SNI
#     checks and security headers)
# HTTP/1.1: wrk -t2 -c$CONNS -d${SECS}s --latency; HTTP/2: h2load -t2
# -c$CONNS -m$STREAMS -D$SECS (Debian's nghttp2-client; p99 from its
# per-request log). RUNS rounds, proxies interleaved; medians of req/s, p99
# latency and proxy CPU per request (utime+stime of the proxy's processes
# over the run / requests), and moat's ratios to nginx and Caddy. Then
# memory per idle keep-alive connection: RSS growth of each proxy with IDLE
# idle TLS connections, one request made on each. Profiles of moat's two
# paths: go test -run XXX -bench Proxy -cpuprofile cpu.out ./internal/gateway
# Installs nginx-light, caddy, wrk and nghttp2-client from Debian's
# packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-1}
IDLE=${IDLE:-5000}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in nginx:nginx-light caddy:caddy wrk:wrk h2load:nghttp2-client; do
  if ! command -v "${tool%%:*}" >/dev/null && ! [ -x "/usr/sbin/${tool%%:*}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${tool#*:}" >/dev/null
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # 5,000 idle connections need more than 1,024

CGO_ENABLED=0 go build -trimpath -o bin/moat ./cmd/moat
go build -o "$WORK/tools" ./bench/gateway-tools
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
"$WORK/tools" mmdb -o "$WORK/geo.mmdb"

UP=127.0.0.1:9000
"$WORK/tools" upstream -addr "$UP" & PIDS+=($!)

# --- the proxies -----------------------------------------------------------
moat_conf() { # $1 file, $2 http port, $3 https port, $4 route extras
  cat >"$1" <<EOF
gateway:
  http: 127.0.0.1:$2
  https: 127.0.0.1:$3
  acme: {storage: $WORK/acme}
  sites:
    - host: localhost
      certificate: $WORK/cert.pem
      key: $WORK/key.pem
      routes:
        - path: /
          upstream: http://$UP
$4
EOF
}
moat_conf "$WORK/policies.yaml" 8081 8444 "          allow: [127.0.0.0/8, vpn, admin]
          geo: {deny: [KP, RU]}
          rate_limit: {rate: 1000000/s, burst: 1000000}
          headers: {Permissions-Policy: 'camera=(), microphone=()', Cross-Origin-Opener-Policy: same-origin}"
bin/moat gateway serve -c "$WORK/policies.yaml" --geo "$WORK/geo.mmdb" 2>"$WORK/moat-pol.log" & PIDS+=($!); MOAT_POL=$!

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile 65536;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 100000;
  upstream app { server $UP; keepalive 64; }
  server {
    listen 127.0.0.1:8445 ssl http2;
    server_name localhost;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx.conf" -g 'daemon off;' & PIDS+=($!); NGINX_PID=$!

cat >"$WORK/Caddyfile" <<EOF
{
  admin off
  auto_https disable_redirects
  storage file_system $WORK/caddy
}
https://localhost:8446 {
  bind 127.0.0.1
  tls $WORK/cert.pem $WORK/key.pem
  reverse_proxy $UP
}
EOF
XDG_DATA_HOME=$WORK/caddy XDG_CONFIG_HOME=$WORK/caddy caddy run --config "$WORK/Caddyfile" --adapter caddyfile 2>"$WORK/caddy.log" & PIDS+=($!); CADDY_PID=$!

for port in 8444 8445 8446; do
  for _ in $(seq 100); do
    curl -skf -o /dev/null "https://localhost:$port/" && break
    sleep 0.1
  done
  curl -skf -o /dev/null "https://localhost:$port/" || { echo "nothing answers on $port"; cat "$WORK"/*.log; exit 1; }
done
# The answers are alike: same upstream body through each.
curl -sk https://localhost:8444/ -o "$WORK/body" -D "$WORK/headers.moat"
grep -qi '^permissions-policy' "$WORK/headers.moat" || { echo "policies config not in effect"; exit 1; }

# --- throughput --------------------------------------------------------------
TICK=$(getconf CLK_TCK)
pids_of() { echo "$1" $(pgrep -P "$1" || true); }
cpu_ticks() { # sum of utime+stime of the pids
  local t=0 p
  for p in "$@"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

p99_us() { sort -n | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; print a[i]}'; }

# bench_one NAME PROTO PORT PID: one run, appends "rps p99ms cpuus" to $WORK/NAME.PROTO.runs
bench_one() {
  local pids c0 c1 out rps p99 reqs
  pids=$(pids_of "$4")
  c0=$(cpu_ticks $pids)
  if [ "$2" = h1 ]; then
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "https://localhost:$3/")
    c1=$(cpu_ticks $pids)
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "$1 $2: errors:"; echo "$out"; fi
  else
    rm -f "$WORK/h2.log"
    out=$(h2load -t2 -c"$CONNS" -m"$STREAMS" -D"$SECS" --log-file="$WORK/h2.log" "https://localhost:$3/")
    c1=$(cpu_ticks $pids)
    grep -q 'Application protocol: h2' <<<"$out" || { echo "$1: h2load did not speak h2:"; echo "$out"; }
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' <<<"$out")
    reqs=$(awk '/^requests:/ {print $8}' <<<"$out") # succeeded
    p99=$(awk '{print $3}' "$WORK/h2.log" | p99_us | awk '{printf "%.2f", $1 / 1000}')
    if awk '/^requests:/ {exit !($10 > 0)}' <<<"$out"; then echo "$1 $2: failures:"; grep -E '^(requests|status codes):' <<<"$out"; fi
  fi
  echo "$rps $p99 $(awk -v c=$((c1 - c0)) -v t="$TICK" -v r="$reqs" 'BEGIN {printf "%.1f", (r > 0) ? c / t / r * 1e6 : 0}')" >>"$WORK/$1.$2.runs"
}

names=(nginx caddy moat)
ports=(8445 8446 8444)
mains=("$NGINX_PID" "$CADDY_PID" "$MOAT_POL")
for i in 0 1 2; do # warm up
  wrk -t2 -c"$CONNS" -d2s "https://localhost:${ports[$i]}/" >/dev/null
  h2load -t2 -c"$CONNS" -m"$STREAMS" -D2 "https://localhost:${ports[$i]}/" >/dev/null
done
for r in $(seq "$RUNS"); do
  for proto in h1 h2; do
    for i in 0 1 2; do
      bench_one "${names[$i]}" "$proto" "${ports[$i]}" "${mains[$i]}"
    done
  done
done
col() { awk -v c="$2" '{print $c}' "$WORK/$1.runs" | median; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r)"
echo "load: $(uptime | sed 's/.*load average/load average/')"
echo "peers: $("$NGINX" -v 2>&1 | sed 's/.*: //'), caddy $(caddy version | cut -d' ' -f1), $(go version | cut -d' ' -f3); medians of $RUNS runs of ${SECS}s, $CONNS connections"
echo "HTTP/1.1: wrk -t2 -c$CONNS --latency; HTTP/2: h2load -t2 -c$CONNS -m$STREAMS"
printf '%-8s %-6s %10s %9s %12s\n' proxy proto 'req/s' 'p99 ms' 'CPU us/req'
for proto in h1 h2; do
  for n in "${names[@]}"; do
    printf '%-8s %-6s %10.0f %9.2f %12.1f\n' "$n" "$proto" "$(col "$n.$proto" 1)" "$(col "$n.$proto" 2)" "$(col "$n.$proto" 3)"
  done
done
for proto in h1 h2; do
  awk -v p="$proto" -v a="$(col "moat.$proto" 1)" -v n="$(col "nginx.$proto" 1)" -v c="$(col "caddy.$proto" 1)" \
    -v pa="$(col "moat.$proto" 2)" -v pn="$(col "nginx.$proto" 2)" -v ca="$(col "moat.$proto" 3)" -v cn="$(col "nginx.$proto" 3)" \
    'BEGIN {printf "moat %s: req/s %.2fx nginx, %.2fx Caddy; p99 %.2fx nginx; CPU/request %.2fx nginx\n", p, a / n, a / c, pa / pn, ca / cn}'
done

# --- memory per idle keep-alive connection ------------------------------------
rss_kb() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo "$t"; }
idle_one() { # $1 name, $2 port, $3 main pid
  local pids before after line
  pids=$(pids_of "$3")
  sleep 2
  before=$(rss_kb $pids)
  exec 7> >("$WORK/tools" idle -addr "127.0.0.1:$2" -n "$IDLE" >"$WORK/idle.out")
  for _ in $(seq 600); do [ -s "$WORK/idle.out" ] && break; sleep 0.1; done
  sleep 3
  after=$(rss_kb $pids)
  line=$(cat "$WORK/idle.out")
  exec 7>&-
  sleep 2
  rm -f "$WORK/idle.out"
  awk -v n="$1" -v b="$before" -v a="$after" -v c="$IDLE" -v l="$line" \
    'BEGIN {printf "%-15s RSS %6.1f MiB -> %6.1f MiB with %d idle TLS connections (%s): %.1f KiB per connection\n", n, b/1024, a/1024, c, l, (a-b)/c}'
}
echo
idle_one moat 8444 "$MOAT_POL"
idle_one caddy 8446 "$CADDY_PID"
idle_one nginx 8445 "$NGINX_PID"
