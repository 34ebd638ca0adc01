#!/usr/bin/env bash
# moat's gateway against Caddy and nginx as HTTPS reverse proxies, in one
# run on this machine:
#
#   bench/gateway.sh            (RUNS=3 DUR=10s CONNS=64 IDLE=5000)
#
# A small Go upstream on loopback (bench/gateway-tools upstream); in front of
# it, each on its own port with the same self-signed certificate:
#   - nginx (Debian's), tuned: 2 workers, upstream keepalive 64, access log off
#   - Caddy (Debian's), reverse_proxy with its defaults, no access log
#   - moat gateway serve, bare (one route, no policies)
#   - moat gateway serve with every policy: allowlist, geo (a generated mmdb
#     of 50,000 networks), a rate limit high enough never to trip, extra
#     headers (plus the built-in honeypot check and security headers)
# wrk -t2 -c$CONNS -d$DUR --latency https://localhost:PORT/ against each,
# RUNS times, interleaved; medians of req/s, p99 latency and proxy CPU per
# request (utime+stime of the proxy's processes over the run / requests).
# Then memory per idle keep-alive connection: RSS growth of moat and Caddy
# (and nginx) with IDLE idle TLS connections, one request made on each.
# Installs nginx, caddy and wrk from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DUR=${DUR:-10s}
CONNS=${CONNS:-64}
IDLE=${IDLE:-5000}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in nginx caddy wrk; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$tool" >/dev/null
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
moat_conf "$WORK/bare.yaml" 8080 8443 ""
moat_conf "$WORK/policies.yaml" 8081 8444 "          allow: [127.0.0.0/8, vpn, admin]
          geo: {deny: [KP, RU]}
          rate_limit: {rate: 1000000/s, burst: 1000000}
          headers: {Permissions-Policy: 'camera=(), microphone=()', Cross-Origin-Opener-Policy: same-origin}"
bin/moat gateway serve -c "$WORK/bare.yaml" 2>"$WORK/moat-bare.log" & PIDS+=($!); MOAT_BARE=$!
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
    listen 127.0.0.1:8445 ssl;
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

for port in 8443 8444 8445 8446; do
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

bench_one() { # $1 name, $2 port, $3 main pid -> appends "rps p99ms cpuus" to $WORK/$1.runs
  local pids c0 c1 out rps p99 reqs
  pids=$(pids_of "$3")
  c0=$(cpu_ticks $pids)
  out=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency "https://localhost:$2/")
  c1=$(cpu_ticks $pids)
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "$1: errors:"; echo "$out"; fi
  echo "$rps $p99 $(awk -v c=$((c1 - c0)) -v t="$TICK" -v r="$reqs" 'BEGIN {printf "%.1f", c / t / r * 1e6}')" >>"$WORK/$1.runs"
}

names=(nginx caddy moat-bare moat-policies)
ports=(8445 8446 8443 8444)
mains=("$NGINX_PID" "$CADDY_PID" "$MOAT_BARE" "$MOAT_POL")
for i in 0 1 2 3; do wrk -t2 -c"$CONNS" -d2s "https://localhost:${ports[$i]}/" >/dev/null; done # warm up
for r in $(seq "$RUNS"); do
  for i in 0 1 2 3; do
    bench_one "${names[$i]}" "${ports[$i]}" "${mains[$i]}"
  done
done
col() { awk -v c="$2" '{print $c}' "$WORK/$1.runs" | median; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r)"
echo "peers: $("$NGINX" -v 2>&1 | sed 's/.*: //'), caddy $(caddy version | cut -d' ' -f1), $(go version | cut -d' ' -f3); wrk -t2 -c$CONNS -d$DUR --latency, medians of $RUNS runs"
printf '%-15s %10s %9s %12s\n' proxy 'req/s' 'p99 ms' 'CPU us/req'
for n in "${names[@]}"; do
  printf '%-15s %10.0f %9.2f %12.1f\n' "$n" "$(col "$n" 1)" "$(col "$n" 2)" "$(col "$n" 3)"
done
for m in moat-bare moat-policies; do
  awk -v m="$m" -v a="$(col "$m" 1)" -v n="$(col nginx 1)" -v c="$(col caddy 1)" -v pa="$(col "$m" 2)" -v pn="$(col nginx 2)" \
    'BEGIN {printf "%-15s req/s: %.2fx nginx, %.2fx Caddy; p99: %.2fx nginx\n", m, a / n, a / c, pa / pn}'
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
idle_one moat-policies 8444 "$MOAT_POL"
idle_one caddy 8446 "$CADDY_PID"
idle_one nginx 8445 "$NGINX_PID"
