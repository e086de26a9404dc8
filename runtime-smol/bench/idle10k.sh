#!/usr/bin/env bash
# Scale check for runtime-smol (issue 4): with 2 executor threads, open 10,000 idle
# keep-alive connections, then time a second client's small-file requests (p50/p99 over
# 2,000 requests) and read the server's RSS (VmRSS / VmHWM from /proc/PID/status).
#
#   runtime-smol/bench/idle10k.sh [IDLE=10000] [REQUESTS=2000]
#
# Bounded and local: 127.0.0.1 only, fixed counts, 10 s socket timeouts, and it stops
# the server it started (by PID) however it exits. --max-connections is raised above
# the default 10,000 so that the second client is not the 10,001st connection (503).
set -euo pipefail
IDLE=${1:-10000}
REQUESTS=${2:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../.." && pwd)

# Both processes need more than 10,000 descriptors.
ulimit -n "$(( IDLE * 2 + 1000 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "ulimit -n: $(ulimit -n)"

cd "$WS"
cargo build --release -q -p runtime-smol --bin runtime-smol --example idle10k -j2
BIN="$WS/target/release/runtime-smol"
CLIENT="$WS/target/release/examples/idle10k"

ROOT=$(mktemp -d)
OUT=$(mktemp)
cp -r "$WS/resources/." "$ROOT/"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$ROOT" "$OUT"
}
trap cleanup EXIT

RUST_LOG=warn "$BIN" --port 0 --host 127.0.0.1 --root "$ROOT" \
    --max-connections "$(( IDLE + 100 ))" --threads 2 >"$OUT" 2>"$OUT.err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q listening "$OUT" && break; sleep 0.1; done
PORT=$(sed -n 's/^listening on http:\/\/.*:\([0-9]*\)$/\1/p' "$OUT")
[[ -n "$PORT" ]] || { echo "server did not start"; cat "$OUT.err"; exit 1; }
echo "runtime-smol (2 executor threads) pid $SERVER_PID on 127.0.0.1:$PORT, root $ROOT"

timeout 300 "$CLIENT" "$PORT" "$SERVER_PID" "$IDLE" "$REQUESTS" /sample.txt
status=$?
if [[ -s "$OUT.err" ]]; then echo "server warnings:"; head -5 "$OUT.err"; fi
rm -f "$OUT.err"
exit $status
