#!/usr/bin/env bash
# HTTPS side by side: runtime-smol (1 thread), runtime-std and nginx (1 and 2 workers)
# with the same certificate (ECDSA P-256, made here with openssl), wrk over TLS, loopback
# only, each run bounded in time. Scenarios as ../shared/bench: a = keep-alive small file
# (c32), d = the 64 MiB file (c4). Prints one line per server and scenario.
# usage: runtime-smol/bench/tls-compare.sh [SECONDS]   (from the repository root, after
#        cargo build --release -p runtime-std -p runtime-smol; needs wrk, nginx, openssl)
set -euo pipefail
secs=${1:-5}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/tls-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
cp "$repo/../shared/bench/fixture/"* "$work/www/"
dd if=/dev/urandom of="$work/www/big.bin" bs=1M count=64 status=none
chmod -R a+rX "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nginx_conf() { # PORT WORKERS DIR
  cat > "$3/nginx.conf" <<CONF
daemon off; master_process on; worker_processes $2; pid $3/nginx.pid; error_log stderr warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types; sendfile on; tcp_nopush on; access_log off;
  client_body_temp_path $3/cb; proxy_temp_path $3/p; fastcgi_temp_path $3/f;
  uwsgi_temp_path $3/u; scgi_temp_path $3/s;
  server {
    listen 127.0.0.1:$1 ssl; root $work/www;
    ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
  }
}
CONF
}

run() { # NAME PORT
  local name=$1 port=$2
  for i in $(seq 1 50); do
    curl -sk -o /dev/null "https://127.0.0.1:$port/index.html" && break; sleep 0.1
  done
  wrk -t1 -c32 -d2s "https://127.0.0.1:$port/index.html" >/dev/null
  local a d
  a=$(wrk -t1 -c32 -d"${secs}s" --latency "https://127.0.0.1:$port/index.html" \
      | awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} END {print r " req/s, p99 " p}')
  d=$(wrk -t1 -c4 -d"${secs}s" "https://127.0.0.1:$port/big.bin" \
      | awk '/Transfer\/sec/ {print $2}')
  printf '%-18s a: %s   d: %s/s\n' "$name" "$a" "$d"
}

p=$(free_port); RUST_LOG=warn "$repo/target/release/runtime-smol" --port "$p" --root "$work/www" \
  --threads 1 --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" >/dev/null 2>&1 &
pid=$!; run runtime-smol-t1 "$p"; kill "$pid"; wait "$pid" 2>/dev/null || true

p=$(free_port); RUST_LOG=warn "$repo/target/release/runtime-std" --port "$p" --root "$work/www" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" >/dev/null 2>&1 &
pid=$!; run runtime-std "$p"; kill "$pid"; wait "$pid" 2>/dev/null || true

for w in 2 1; do
  d="$work/nginx-w$w"; mkdir -p "$d"; p=$(free_port); nginx_conf "$p" "$w" "$d"
  nginx -p "$d/" -e stderr -c "$d/nginx.conf" 2>/dev/null & pid=$!
  run "nginx-w$w" "$p"; kill "$pid"; wait "$pid" 2>/dev/null || true
done
