#!/usr/bin/env python3
"""Small GETs beside a big download (issue 29), against a server on 127.0.0.1:PORT.

200 GETs of /sample.txt (5 ms apart, one keep-alive connection, in this process) while
`wrk -t1 -c1 -d4s` downloads /big.txt again and again in another process (two threads of
one Python process would measure the GIL, not the server). Prints p50, p99 and max of
the GETs and wrk's transfer rate. Bounded: about 4.5 s.

    truncate -s 512M ROOT/big.txt; cp ../shared/bench/fixture/sample.txt ROOT/
    RUST_LOG=warn target/release/runtime-smol --port 8080 --host 127.0.0.1 --root ROOT --threads 1 &
    python3 runtime-smol/bench/big-beside-small.py 8080

usage: big-beside-small.py PORT [GETS]"""
import socket, subprocess, sys, time
port = int(sys.argv[1]); GETS = int(sys.argv[2]) if len(sys.argv) > 2 else 200
wrk = subprocess.Popen(["wrk", "-t1", "-c1", "-d4s", f"http://127.0.0.1:{port}/big.txt"], stdout=subprocess.PIPE, text=True)
time.sleep(0.5)
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); return s
c = conn(); req = b"GET /sample.txt HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
times = []
for i in range(GETS):
    time.sleep(0.005)
    a = time.perf_counter(); c.sendall(req); data = b""
    while True:
        d = c.recv(65536)
        if not d: raise SystemExit("closed")
        data += d
        if b"\r\n\r\n" in data:
            h, _, body = data.partition(b"\r\n\r\n")
            cl = int([l.split(b":")[1] for l in h.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
            if len(body) >= cl: break
    times.append((time.perf_counter() - a) * 1000)
    if b"connection: close" in h.lower():
        c.close(); c = conn()
out = wrk.communicate()[0]
rate = [l.split()[-1] for l in out.splitlines() if "Transfer/sec" in l]
times.sort()
pct = lambda p: times[min(len(times)-1, int(len(times)*p/100))]
print(f"p50 {pct(50):.2f} ms  p99 {pct(99):.2f} ms  max {times[-1]:.2f} ms  download {rate[0] if rate else '?'}/s  (at {time.strftime('%H:%M:%S')}; load {open('/proc/loadavg').read().split()[0]})", flush=True)
