#!/usr/bin/env bash
# Keep-alive GETs with --metrics and --access-log FILE on, against the same server without
# them (issue 27's benchmark): wrk -t1 -c32 on resources/index.html, runs alternating
# off/on, for each binary given. Loopback only; each server is stopped by its PID.
# usage: contrib/bench/ops-overhead.sh [RUNS] [SECS] BIN...
set -euo pipefail
runs=${1:-3}; secs=${2:-5}; shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)/resources
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
one() { # BIN on|off -> req/s
  local bin=$1 mode=$2 extra=()
  [[ $mode == on ]] && extra=(--metrics 127.0.0.1:0 --access-log "$work/access.log")
  RUST_LOG=warn "$bin" --port 0 --root "$root" "${extra[@]}" >"$work/out" 2>/dev/null &
  local pid=$!
  for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
  local addr; addr=$(grep -o 'http://[0-9.:]*' "$work/out" | head -1)
  local rps; rps=$(wrk -t1 -c32 -d"${secs}s" "$addr/index.html" | awk '/Requests\/sec/ {print $2}')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$rps"
}
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
for bin in "$@"; do
  offs=(); ons=()
  for _ in $(seq "$runs"); do offs+=("$(one "$bin" off)"); ons+=("$(one "$bin" on)"); done
  med() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
  off=$(med "${offs[@]}"); on=$(med "${ons[@]}")
  printf '%s: off %s (%s), on %s (%s), on/off %.3f\n' "$(basename "$bin")" "$off" "${offs[*]}" "$on" "${ons[*]}" "$(echo "$on / $off" | bc -l)"
done
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
