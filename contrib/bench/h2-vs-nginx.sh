#!/usr/bin/env bash
# HTTP/2 in clear text (prior knowledge) against nginx's http2, with h2load
# (Debian nghttp2-client), on 127.0.0.1 only, in one run so that the ratios hold:
#
#   contrib/bench/h2-vs-nginx.sh [BIN] [N_SMALL] [N_BIG] [N_HUGE]
#
# With TLS=1 both servers speak HTTPS with one self-signed ECDSA P-256 certificate
# (openssl), HTTP/2 by ALPN `h2` (h2load's default over https), HTTP/1.1 by `--h1`.
# big.bin is 1 MiB; huge.bin, 64 MiB (N_HUGE requests, default 200).
#
# BIN: the server (default target/release/runtime-smol). For each file (index.html,
# 1133 B; big.bin, 1 MiB) it runs `h2load -c 32 -m 10` on our server with HTTP/2, on
# our server with HTTP/1.1 (`h2load --h1`, the same 32 connections, pipelining 1),
# then on nginx 1.22 with `listen ... http2` (2 workers, sendfile on, access_log off),
# and prints h2load's requests/s and MB/s. Every server is started here and stopped
# by its PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${1:-target/release/runtime-smol}
n_small=${2:-200000}
n_big=${3:-10000}
n_huge=${4:-200}
tls=${TLS:-0}
command -v h2load >/dev/null || { echo "h2load is needed (nghttp2-client)"; exit 1; }
work=$(mktemp -d /tmp/h2bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www" "$work/nginx"
# A small page of 1133 bytes (the size of the load harness's index.html).
head -c 1133 /dev/urandom | base64 -w 76 | head -c 1133 > "$work/www/index.html"
head -c $((1 << 20)) /dev/urandom > "$work/www/big.bin"
head -c $((64 << 20)) /dev/urandom > "$work/www/huge.bin"
scheme=http ours_tls=() nginx_listen=http2 nginx_tls=""
if [[ $tls == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  scheme=https
  ours_tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  nginx_listen="ssl http2"
  nginx_tls="ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;"
fi
chmod -R a+rX "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1"; exit 1
}

ours=$(free_port)
RUST_LOG=warn "$bin" --host 127.0.0.1 --port "$ours" --root "$work/www" \
  --max-requests 1000000 "${ours_tls[@]}" >"$work/ours.log" 2>&1 &
pids+=($!)
theirs=$(free_port)
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path       $work/nginx/proxy;
    fastcgi_temp_path     $work/nginx/fastcgi;
    uwsgi_temp_path       $work/nginx/uwsgi;
    scgi_temp_path        $work/nginx/scgi;
    server {
        listen 127.0.0.1:$theirs $nginx_listen;
        $nginx_tls
        root $work/www;
    }
}
EOF
nginx -p "$work/nginx/" -e stderr -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 &
pids+=($!)
wait_port "$ours"
wait_port "$theirs"

run() { # NAME URL N [h2load options]
  local name=$1 url=$2 n=$3
  shift 3
  local out
  out=$(timeout 300 h2load -n "$n" -c 32 -m 10 "$@" "$url" 2>&1)
  local reqs mbs ok
  reqs=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s, \([0-9.]*[KMG]*B\)\/s$/\1/p' <<<"$out")
  mbs=$(sed -n 's/^finished in .*, [0-9.]* req\/s, \([0-9.]*[KMG]*B\)\/s$/\1/p' <<<"$out")
  ok=$(sed -n 's/^requests: .* \([0-9]*\) succeeded, \([0-9]*\) failed.*/\1 ok, \2 failed/p' <<<"$out")
  printf '%-28s %12s req/s %10s/s   %s\n' "$name" "$reqs" "$mbs" "$ok"
}

echo "# $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $scheme"
for f in index.html:$n_small big.bin:$n_big huge.bin:$n_huge; do
  file=${f%%:*} n=${f##*:}
  run "ours h2 /$file" "$scheme://127.0.0.1:$ours/$file" "$n"
  run "ours http/1.1 /$file" "$scheme://127.0.0.1:$ours/$file" "$n" --h1 -m 1
  run "nginx h2 /$file" "$scheme://127.0.0.1:$theirs/$file" "$n"
done
