#!/bin/bash
# Alternates servers round by round, so that a machine whose speed drifts (other
# tenants of the host, invisible from inside) weighs on all of them alike; compare.sh
# measures one server after the other. Loopback only; every server is stopped by its
# PID after its turn.
#
#   runtime-smol/bench/interleave.sh ROUNDS SECONDS CONNS ROOT NAME=COMMAND...
#
# COMMAND must listen on 127.0.0.1:18080 in the foreground. Prints, per round and
# server, the req/s of 3 wrk -t1 runs on /index.html (after a 1 s warm-up). With
# WRK_HEADER='Name: value' in the environment, every request carries that header (the
# --auth benchmark: an Authorization line). CURL_ARGS likewise for the start probe.
set -u
hdr=()
[ -n "${WRK_HEADER:-}" ] && hdr=(-H "$WRK_HEADER")
rounds=$1 secs=$2 conns=$3 root=$4
shift 4
[ -f "$root/index.html" ] || { echo "no $root/index.html" >&2; exit 2; }
for r in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*} cmd=${spec#*=}
    setsid bash -c "$cmd" >/dev/null 2>&1 &
    pid=$!
    up=no
    for _ in $(seq 50); do
      curl -sf -o /dev/null "${hdr[@]}" http://127.0.0.1:18080/index.html && { up=yes; break; }
      sleep 0.1
    done
    if [ $up = no ]; then
      echo "round $r $name: did not answer on 127.0.0.1:18080" >&2
      kill -- -"$pid" 2>/dev/null; wait "$pid" 2>/dev/null
      exit 1
    fi
    wrk -t1 -c"$conns" -d1s "${hdr[@]}" http://127.0.0.1:18080/index.html >/dev/null
    line=""
    for _ in 1 2 3; do
      line="$line $(wrk -t1 -c"$conns" -d"${secs}s" "${hdr[@]}" http://127.0.0.1:18080/index.html | awk '/Requests\/sec/ {printf "%d", $2}')"
    done
    kill -- -"$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    echo "round $r $name:$line"
  done
done
