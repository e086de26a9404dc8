#!/usr/bin/env bash
# The figures of BENCHMARKS.md "A Garage cluster and instances behind nginx":
#  1. uploads/s to a one-node Garage and to a three-node cluster (replication_factor 3,
#     the server given the three endpoints), alternated, same client (wrk), same run;
#  2. GET req/s through nginx (contrib/nginx-balancer.conf, one worker) to 1, 2 and 3
#     instances, and straight to one instance; with the CPU each process spent per
#     request (utime + stime from /proc/PID/stat, divided by the requests wrk made);
#  3. the latency (p50, p99) of GETs through nginx while one of three instances is
#     SIGKILLed halfway through the run, and what the clients saw.
# Everything on loopback (the instances on 127.0.0.1, .2 and .3, one port), bounded
# runs, every process started here stopped by PID. RUST_LOG=warn, nginx access_log off.
# usage: contrib/bench/cluster-balancer.sh [SECONDS]   (after cargo build --release;
#        needs wrk, garage, nginx, curl)
set -euo pipefail
secs=${1:-5}
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin="$repo/target/release/runtime-smol"
work=$(mktemp -d /tmp/cluster-bench.XXXXXX)
pids=()
cleanup() {
  exec 2>/dev/null  # not the shell's "Killed" notices
  for p in "${pids[@]}"; do kill -9 "$p" || true; done
  wait || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www/uploads"
cp "$repo/../shared/bench/fixture/"* "$work/www/" 2>/dev/null || cp "$repo/resources/"*.* "$work/www/"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rate() { awk '/Requests\/sec/ {print $2}'; }
requests() { awk '/requests in/ {print $1}'; }
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"bench":true,"items":[1,2,3,4,5,6,7,8,9,10]}'
wrk.headers["Content-Type"] = "application/json"
LUA
secret=4425f5c26c5e11581d3223904324dcb5b5d5dfb14e5e7f35e38c595424f5f1e6

# garage_node DIR RF: writes DIR/garage.toml on free ports, starts the node; sets $s3.
garage_node() {
  local dir=$1 rf=$2 rpc; rpc=$(free_port); s3=$(free_port); local admin; admin=$(free_port)
  mkdir -p "$dir"
  cat > "$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = $rf
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin"
TOML
  RUST_LOG=garage=warn garage -c "$dir/garage.toml" server >/dev/null 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do garage -c "$dir/garage.toml" status >/dev/null 2>&1 && return; sleep 0.1; done
  echo "garage in $dir did not start" >&2; exit 1
}
# garage_setup CONFIG NODE_DIRS...: layout (one zone per node), bucket, key; sets $kid $ksec.
garage_setup() {
  local g="$1"; shift; local z=0 d id
  for d in "$@"; do
    id=$(garage -c "$d/garage.toml" node id -q)
    [[ $d == "$1" ]] || garage -c "$g" node connect "$id" >/dev/null
    z=$((z + 1)); garage -c "$g" layout assign -z "dc$z" -c 1G "${id%@*}" >/dev/null
  done
  garage -c "$g" layout apply --version 1 >/dev/null
  garage -c "$g" bucket create uploads >/dev/null
  local key; key=$(garage -c "$g" key create bench-key)
  kid=$(awk '/Key ID:/ {print $3}' <<<"$key"); ksec=$(awk '/Secret key:/ {print $3}' <<<"$key")
  garage -c "$g" bucket allow --read --write uploads --key bench-key >/dev/null
}

echo "== 1. uploads/s: one-node Garage against a three-node cluster (wrk -t1 -c16, ${secs}s each)"
garage_node "$work/one" 1; one_ep="http://127.0.0.1:$s3"
garage_setup "$work/one/garage.toml" "$work/one"; one_kid=$kid; one_ksec=$ksec
eps=()
for i in 0 1 2; do garage_node "$work/c$i" 3; eps+=("http://127.0.0.1:$s3"); done
garage_setup "$work/c0/garage.toml" "$work/c0" "$work/c1" "$work/c2"
three_ep=$(IFS=,; echo "${eps[*]}")
store_server() { # ENDPOINTS KEY SECRET -> $sp (port), $spid
  sp=$(free_port)
  AWS_ENDPOINT_URL="$1" AWS_REGION=garage AWS_ACCESS_KEY_ID="$2" AWS_SECRET_ACCESS_KEY="$3" \
    RUST_LOG=warn "$bin" --port "$sp" --root "$work/www" --threads 1 \
    --upload-store s3://uploads/bench >/dev/null 2>&1 & spid=$!; pids+=($spid)
  wait_http "http://127.0.0.1:$sp/index.html"
}
store_server "$one_ep" "$one_kid" "$one_ksec"; one_port=$sp
store_server "$three_ep" "$kid" "$ksec"; three_port=$sp
for round in 1 2; do
  for which in one three; do
    port=${which}_port
    r=$(wrk -t1 -c16 -d"${secs}s" -s "$work/post.lua" "http://127.0.0.1:${!port}/upload" | rate)
    echo "round $round, $which node(s): $r uploads/s"
  done
done

echo "== 2. GET /index.html through nginx (one worker) to 1, 2, 3 instances (wrk -t1 -c32, ${secs}s)"
ip=$(free_port)
for i in 1 2 3; do
  RUST_LOG=warn "$bin" --host "127.0.0.$i" --port "$ip" --root "$work/www" --threads 1 \
    >/dev/null 2>&1 & inst[$i]=$!; pids+=($!); disown "$!"
  wait_http "http://127.0.0.$i:$ip/index.html"
done
np=$(free_port)
start_nginx() { # UP (1..3): instances above UP are marked down
  local up=$1 conf
  conf=$(sed -e "s/127.0.0.1:8000/127.0.0.1:$np/" -e "s/:8080/:$ip/g" "$repo/contrib/nginx-balancer.conf")
  for i in 2 3; do ((i > up)) && conf=$(sed -e "s/server 127.0.0.$i:$ip /server 127.0.0.$i:$ip down /" <<<"$conf"); done
  mkdir -p "$work/nginx"
  printf '%s\n' "$conf" > "$work/nginx/balancer.conf"
  cat > "$work/nginx/nginx.conf" <<CONF
daemon off; master_process off; error_log $work/nginx/error.log warn; pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $work/nginx/b; proxy_temp_path $work/nginx/p;
  fastcgi_temp_path $work/nginx/f; uwsgi_temp_path $work/nginx/u; scgi_temp_path $work/nginx/s;
  include $work/nginx/balancer.conf; }
CONF
  nginx -p "$work/nginx/" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" & ngx=$!; pids+=($ngx)
  wait_http "http://127.0.0.1:$np/index.html"
}
# measure URL PIDS...: wrk, then req/s and the CPU µs per request of each PID.
measure() {
  local url=$1; shift; local before=() p i=0 out n
  for p in "$@"; do before+=("$(cpu_ticks "$p")"); done
  out=$(wrk -t1 -c32 -d"${secs}s" --latency "$url")
  n=$(requests <<<"$out")
  printf '%s req/s' "$(rate <<<"$out")"
  for p in "$@"; do
    printf ', pid %s %.1f µs/req' "$p" "$(echo "($(cpu_ticks "$p") - ${before[$i]}) * 1000000 / $tck / $n" | bc -l)"
    i=$((i + 1))
  done
  echo
}
printf 'straight to one instance: '; measure "http://127.0.0.1:$ip/index.html" "${inst[1]}"
for up in 1 2 3; do
  start_nginx "$up"
  printf 'through nginx, %s instance(s): ' "$up"
  case $up in
    1) measure "http://127.0.0.1:$np/index.html" "$ngx" "${inst[1]}" ;;
    2) measure "http://127.0.0.1:$np/index.html" "$ngx" "${inst[1]}" "${inst[2]}" ;;
    3) measure "http://127.0.0.1:$np/index.html" "$ngx" "${inst[1]}" "${inst[2]}" "${inst[3]}" ;;
  esac
  kill "$ngx"; wait "$ngx" 2>/dev/null || true
done

echo "== 3. latency through nginx to 3 instances, one SIGKILLed halfway (wrk -t1 -c32 --latency, ${secs}s)"
start_nginx 3
lat() {
  awk '/^ +Latency +[0-9]/ {max = $4} /^ +(50|99)%/ {printf "p%s %s  ", $1, $2}
       /Non-2xx/ {printf "non-2xx %s  ", $NF} /Socket errors/ {printf "%s  ", $0}
       /requests in/ {n = $1} END {printf "max %s  %s requests, no errors unless listed\n", max, n}'
}
printf 'no failover:   '; wrk -t1 -c32 -d"${secs}s" --latency "http://127.0.0.1:$np/index.html" | lat
( sleep "$(echo "$secs / 2" | bc -l)"; kill -9 "${inst[2]}" ) & pids+=($!)
printf 'with failover: '; wrk -t1 -c32 -d"${secs}s" --latency "http://127.0.0.1:$np/index.html" | lat
grep -c 'failed\|prematurely' "$work/nginx/error.log" | sed 's/^/nginx error-log lines about the killed instance: /'
