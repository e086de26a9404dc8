#!/usr/bin/env bash
# Issue 17's figures: uploads per second to the local folder and to a single-node Garage
# (started here on loopback), and keep-alive GETs per second with 1, 2 and 4
# runtime-smol processes sharing one port (--reuse-port). wrk, bounded runs, 127.0.0.1.
# usage: runtime-smol/bench/store-compare.sh [SECONDS]  (after cargo build --release;
#        needs wrk and garage on PATH)
set -euo pipefail
secs=${1:-5}
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin="$repo/target/release/runtime-smol"
work=$(mktemp -d /tmp/store-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/www/uploads"
cp "$repo/../shared/bench/fixture/"* "$work/www/"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"bench":true,"items":[1,2,3,4,5,6,7,8,9,10]}'
wrk.headers["Content-Type"] = "application/json"
LUA
wait_up() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/index.html" && return; sleep 0.05; done; }
rate() { awk '/Requests\/sec/ {print $2}'; }

# Garage: one node, a bucket, a key.
gp=$(free_port); sp=$(free_port); ap=$(free_port)
cat > "$work/garage.toml" <<TOML
metadata_dir = "$work/g/meta"
data_dir = "$work/g/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$gp"
rpc_public_addr = "127.0.0.1:$gp"
rpc_secret = "4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$sp"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$ap"
TOML
g() { garage -c "$work/garage.toml" "$@"; }
garage -c "$work/garage.toml" server >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 1 100); do g status >/dev/null 2>&1 && break; sleep 0.1; done
id=$(g node id -q 2>/dev/null | cut -d@ -f1)
g layout assign -z dc1 -c 1G "$id" >/dev/null; g layout apply --version 1 >/dev/null
g bucket create uploads >/dev/null
key=$(g key create bench-key)
kid=$(awk '/Key ID:/ {print $3}' <<<"$key"); ksec=$(awk '/Secret key:/ {print $3}' <<<"$key")
g bucket allow --read --write uploads --key bench-key >/dev/null

p=$(free_port); RUST_LOG=warn "$bin" --port "$p" --root "$work/www" --threads 1 >/dev/null 2>&1 & pids+=($!)
wait_up "$p"
echo "uploads/s, local folder (fsync each): $(wrk -t1 -c8 -d"${secs}s" -s "$work/post.lua" "http://127.0.0.1:$p/upload" | rate)"
p=$(free_port); AWS_ENDPOINT_URL="http://127.0.0.1:$sp" AWS_REGION=garage AWS_ACCESS_KEY_ID="$kid" \
  AWS_SECRET_ACCESS_KEY="$ksec" RUST_LOG=warn "$bin" --port "$p" --root "$work/www" --threads 1 \
  --upload-store s3://uploads/bench >/dev/null 2>&1 & pids+=($!)
wait_up "$p"
echo "uploads/s, Garage (one node, loopback): $(wrk -t1 -c8 -d"${secs}s" -s "$work/post.lua" "http://127.0.0.1:$p/upload" | rate)"

for n in 1 2 4; do
  p=$(free_port); mine=()
  for _ in $(seq 1 "$n"); do
    RUST_LOG=warn "$bin" --port "$p" --root "$work/www" --threads 1 --reuse-port >/dev/null 2>&1 &
    mine+=($!); pids+=($!)
  done
  wait_up "$p"; sleep 0.3
  echo "keep-alive GET/s, $n process(es) on one port: $(wrk -t1 -c32 -d"${secs}s" "http://127.0.0.1:$p/index.html" | rate)"
  kill "${mine[@]}" 2>/dev/null || true
done
