#!/usr/bin/env python3
"""A large PUT over loopback into the web root: this server against nginx's WebDAV PUT.

usage: contrib/bench/put-vs-nginx.py [--mib 1024] [--runs 3] BIN [BIN...]

Each BIN (target/release/runtime-std, runtime-smol) is started with `-a @/:rw` on a
fresh root; nginx (nginx-light: dav_methods PUT) with client_body_temp_path on the same
file system as its root, one worker. The same file (random bytes, made once) is PUT with
curl (HTTP/1.1, no Expect) `--runs` times to each, alternating servers run by run, the
file removed after each. Reported: MB/s of the PUT (curl's time_total), MB/s until the
bytes are durable, and server CPU seconds per GiB (utime+stime of the server's processes
from /proc). This server fsyncs the file and its directory before it answers; nginx does
not (it renames its temporary into place), so for nginx "durable" adds an fsync of its
file and directory right after its answer. Loopback only; every process started is stopped by PID.
"""
import argparse, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

TCK = os.sysconf("SC_CLK_TCK")

def cpu(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / TCK

def children(pid):
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]
    except Exception:
        return []

def start_rust(bin_, root):
    p = subprocess.Popen([bin_, "--port", "0", "--root", root, "-a", "@/:rw",
                          "--max-upload", str(8 << 30), "--threads", "4"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env={**os.environ, "RUST_LOG": "warn"})
    line = p.stdout.readline()
    m = re.search(r":(\d+)", line)
    if not m:
        p.kill(); sys.exit(f"{bin_} did not start: {line!r}")
    return p, int(m.group(1)), [p.pid]

def start_nginx(root, tmp):
    s = __import__("socket").socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    os.makedirs(f"{tmp}/client_body", exist_ok=True)
    conf = f"""daemon off; master_process on; worker_processes 1; user root root;
pid {tmp}/nginx.pid; error_log stderr warn;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; client_max_body_size 0;
  client_body_temp_path {tmp}/client_body;
  server {{ listen 127.0.0.1:{port}; root {root}; dav_methods PUT; create_full_put_path off; }} }}
"""
    with open(f"{tmp}/nginx.conf", "w") as f:
        f.write(conf)
    p = subprocess.Popen(["nginx", "-p", tmp + "/", "-e", "stderr", "-c", f"{tmp}/nginx.conf"],
                         stderr=subprocess.DEVNULL)
    for _ in range(100):
        time.sleep(0.05)
        if subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"]).returncode == 0:
            break
    return p, port, [p.pid] + children(p.pid)

def put(port, src, name):
    out = subprocess.run(["curl", "-sS", "--http1.1", "-H", "Expect:", "-T", src, "-o", "/dev/null",
                          "-w", "%{http_code} %{time_total}", f"http://127.0.0.1:{port}/{name}"],
                         capture_output=True, text=True, timeout=600)
    code, secs = out.stdout.split()
    return int(code), float(secs)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("bins", nargs="+")
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="putbench-", dir="/var/tmp")
    src = f"{base}/src.bin"
    subprocess.run(["dd", "if=/dev/urandom", f"of={src}", "bs=1M", f"count={a.mib}", "status=none"], check=True)
    size = os.path.getsize(src)
    servers = []
    try:
        for b in a.bins:
            root = f"{base}/{os.path.basename(b)}"; os.makedirs(root)
            servers.append((os.path.basename(b), *start_rust(b, root), root))
        nroot = f"{base}/nginx-root"; os.makedirs(nroot)
        servers.append(("nginx-webdav", *start_nginx(nroot, f"{base}/nginx"), nroot))
        results = {s[0]: [] for s in servers}
        for run in range(a.runs):
            for name, proc, port, pids, root in servers:
                pids = pids + children(pids[0])
                subprocess.run(["sync"])
                before = cpu(pids)
                code, secs = put(port, src, f"put-{run}.bin")
                used = cpu(pids) - before
                if code not in (200, 201, 204):
                    sys.exit(f"{name}: PUT answered {code}")
                path = f"{root}/put-{run}.bin"
                # What our 201 means (the bytes on disk, the name too): for nginx, the
                # fsync of its file and directory after its answer, timed.
                t = time.monotonic()
                if name.startswith("nginx"):
                    fd = os.open(path, os.O_RDONLY); os.fsync(fd); os.close(fd)
                    fd = os.open(root, os.O_RDONLY); os.fsync(fd); os.close(fd)
                durable = secs + (time.monotonic() - t)
                got = os.path.getsize(path)
                if got != size:
                    sys.exit(f"{name}: {got} bytes stored, not {size}")
                results[name].append((size / secs / 1e6, used / (size / 2**30), size / durable / 1e6))
                os.remove(path)
                print(f"run {run + 1} {name}: {size / secs / 1e6:.0f} MB/s, durable {size / durable / 1e6:.0f} MB/s, {used:.2f} s CPU", flush=True)
        print(f"\n{a.mib} MiB PUT over loopback, {a.runs} runs, median\n")
        print("| server | MB/s (answer) | MB/s (durable) | server CPU s per GiB | fsync before answering |")
        print("| --- | ---: | ---: | ---: | --- |")
        for name in results:
            mbs = statistics.median(r[0] for r in results[name])
            c = statistics.median(r[1] for r in results[name])
            d = statistics.median(r[2] for r in results[name])
            print(f"| {name} | {mbs:.0f} | {d:.0f} | {c:.2f} | {'no' if name.startswith('nginx') else 'yes (file and directory)'} |")
    finally:
        for _, proc, *_ in servers:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(base, ignore_errors=True)

if __name__ == "__main__":
    main()
