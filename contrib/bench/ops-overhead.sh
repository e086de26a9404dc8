#!/usr/bin/env bash
# Keep-alive GETs with --metrics and --access-log FILE on, against the same server without
# them (issue 27's benchmark): wrk -t1 -c32 on resources/index.html, runs alternating
# off/on, for each binary given. Prints the median requests a second of each mode, and
# the median server CPU per request (user + system time of the server's process over the
# wrk run, from /proc, divided by the requests wrk counted), and the median of the ratios
# of each "on" run to the "off" run just before it (a pair saw the same machine): on a
# shared 2-core machine one run's throughput swings by ±15 %.
# Loopback only; each server is stopped by its PID.
# usage: contrib/bench/ops-overhead.sh [RUNS] [SECS] BIN...
set -euo pipefail
runs=${1:-3}; secs=${2:-5}; shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)/resources
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in ticks
one() { # BIN on|off -> "req/s µs-per-request"
  local bin=$1 mode=$2 extra=()
  [[ $mode == on ]] && extra=(--metrics 127.0.0.1:0 --access-log "$work/access.log")
  RUST_LOG=warn "$bin" --port 0 --root "$root" "${extra[@]}" >"$work/out" 2>/dev/null &
  local pid=$!
  for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
  local addr; addr=$(grep -o 'http://[0-9.:]*' "$work/out" | head -1)
  local before; before=$(cpu "$pid")
  wrk -t1 -c32 -d"${secs}s" "$addr/index.html" >"$work/wrk"
  local after; after=$(cpu "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$work/access.log"
  local rps total
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk")
  total=$(awk '/requests in/ {print $1}' "$work/wrk")
  echo "$rps $(echo "($after - $before) * 1000000 / $tick / $total" | bc -l)"
}
med() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
for bin in "$@"; do
  offs=(); ons=(); offc=(); onc=()
  for _ in $(seq "$runs"); do
    read -r r c < <(one "$bin" off); offs+=("$r"); offc+=("$c")
    read -r r c < <(one "$bin" on); ons+=("$r"); onc+=("$c")
  done
  # Each "on" run beside the "off" run just before it: the ratio of each pair, whose
  # two runs saw the same machine, and the median of those ratios.
  pairs=(); cpairs=()
  for i in "${!offs[@]}"; do
    pairs+=("$(echo "${ons[$i]} / ${offs[$i]}" | bc -l)")
    cpairs+=("$(echo "${offc[$i]} / ${onc[$i]}" | bc -l)")
  done
  off=$(med "${offs[@]}"); on=$(med "${ons[@]}")
  coff=$(med "${offc[@]}"); con=$(med "${onc[@]}")
  printf '%s: off %s (%s), on %s (%s), on/off %.3f\n' "$(basename "$bin")" "$off" "${offs[*]}" "$on" "${ons[*]}" "$(echo "$on / $off" | bc -l)"
  printf '%s: CPU per request off %.2f µs, on %.2f µs, off/on %.3f (runs off: %s; on: %s)\n' "$(basename "$bin")" "$coff" "$con" "$(echo "$coff / $con" | bc -l)" \
    "$(printf '%.2f ' "${offc[@]}")" "$(printf '%.2f ' "${onc[@]}")"
  printf '%s: paired, median of on/off req/s %.3f, of off/on CPU per request %.3f (pairs: %s)\n' "$(basename "$bin")" \
    "$(med "${pairs[@]}")" "$(med "${cpairs[@]}")" "$(printf '%.2f ' "${pairs[@]}")"
done
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
