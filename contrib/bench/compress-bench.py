#!/usr/bin/env python3
"""Compression and archives, measured in one run (issue 26's benchmark).

usage: contrib/bench/compress-bench.py [--runs 3] [--duration 8] [--tree-mib 1024]
                                      SMOL_BIN [SWS_BIN]

1. A repeated GET of a cached 100 KiB JavaScript file (resources/app.js and other text of
   this repository, repeated to 100 KiB), with wrk (1 thread, 32 keep-alive
   connections): runtime-smol (SMOL_BIN, --threads 1) with `Accept-Encoding: br, gzip`
   against the same file in identity (no Accept-Encoding), and against
   static-web-server (SWS_BIN, its compression on: its default; --threads-multiplier 1)
   with the same header. Runs alternate servers, median reported.
2. A cold 20 MB JSON file compressed as a stream, per coding (zstd, br, gzip): MB/s
   (the file's bytes over curl's time_total) and server CPU per MB (utime+stime from
   /proc), the server restarted before each so that no cache is warm.
3. GET /?zip of a 1 GiB tree (a quarter text, three quarters random bytes: text is
   deflated, the rest stored): MB/s of the archive and of the tree, CPU per MB.

Loopback only; every process started is stopped by its PID; the work directory is removed.
"""
import argparse, json, os, random, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

TCK = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def start_smol(bin_, root, extra=()):
    port = free_port()
    p = subprocess.Popen([bin_, "--port", str(port), "--host", "127.0.0.1", "--root", root,
                          "--threads", "1", *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "RUST_LOG": "warn"})
    wait_port(port)
    return p, port


def start_sws(bin_, root):
    port = free_port()
    p = subprocess.Popen([bin_, "--port", str(port), "--host", "127.0.0.1", "--root", root,
                          "--threads-multiplier", "1", "--log-level", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def wrk(port, path, header, duration):
    args = ["wrk", "-t1", "-c32", f"-d{duration}s", "--latency"]
    if header:
        args += ["-H", header]
    out = subprocess.run(args + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99, int(non2xx.group(1)) if non2xx else 0


def curl(port, path, header, out="/dev/null"):
    args = ["curl", "-sS", "-o", out, "-w", "%{http_code} %{time_total} %{size_download}"]
    if header:
        args += ["-H", header]
    r = subprocess.run(args + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=900)
    code, secs, size = r.stdout.split()
    return int(code), float(secs), int(size)


def text_corpus():
    chunks = []
    for d in ("resources", "protocol/src", "host/src"):
        for dirpath, _, files in os.walk(os.path.join(REPO, d)):
            for f in sorted(files):
                if f.endswith((".js", ".rs", ".css", ".html")):
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        chunks.append(fh.read())
    return b"\n".join(chunks)


def make_root(work, tree_mib):
    root = os.path.join(work, "root")
    os.makedirs(root)
    corpus = text_corpus()
    with open(os.path.join(root, "app.bundle.js"), "wb") as f:
        f.write((corpus * (1 + (100 << 10) // len(corpus)))[: 100 << 10])
    rng = random.Random(7)
    with open(os.path.join(root, "big.json"), "w") as f:
        f.write("[")
        n = 0
        while f.tell() < 20_000_000:
            if n:
                f.write(",")
            f.write(json.dumps({"id": n, "name": f"item-{rng.randrange(10**6)}",
                                "tags": [rng.choice(["red", "green", "blue", "amber"]) for _ in range(3)],
                                "price": round(rng.random() * 1000, 2), "in_stock": rng.random() < 0.7}))
            n += 1
        f.write("]\n")
    tree = os.path.join(root, "tree")
    left = tree_mib << 20
    i = 0
    with open("/dev/urandom", "rb") as urandom:
        while left > 0:
            sub = os.path.join(tree, f"d{i % 16:02}")
            os.makedirs(sub, exist_ok=True)
            size = min(left, 8 << 20)
            if i % 4 == 0:
                name, data = f"f{i}.txt", (corpus * (1 + size // len(corpus)))[:size]
            else:
                name, data = f"f{i}.bin", urandom.read(size)
            with open(os.path.join(sub, name), "wb") as f:
                f.write(data)
            left -= size
            i += 1
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--tree-mib", type=int, default=1024)
    ap.add_argument("smol")
    ap.add_argument("sws", nargs="?")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="compress-bench-")
    try:
        root = make_root(work, a.tree_mib)
        print(f"# load before: {open('/proc/loadavg').read().split()[:3]}", flush=True)
        ae = "Accept-Encoding: br, gzip"
        rows = {"smol br,gzip": [], "smol identity": [], "sws br,gzip": []}
        for run in range(a.runs):
            p, port = start_smol(a.smol, root)
            try:
                curl(port, "/app.bundle.js", ae)  # fills the variant cache
                code, _, size = curl(port, "/app.bundle.js", ae)
                assert code == 200 and size < 100 << 10, (code, size)
                rows["smol br,gzip"].append(wrk(port, "/app.bundle.js", ae, a.duration))
                rows["smol identity"].append(wrk(port, "/app.bundle.js", None, a.duration))
            finally:
                stop(p)
            if a.sws:
                p, port = start_sws(a.sws, root)
                try:
                    code, _, size = curl(port, "/app.bundle.js", ae)
                    assert code == 200 and size < 100 << 10, ("sws did not compress", code, size)
                    rows["sws br,gzip"].append(wrk(port, "/app.bundle.js", ae, a.duration))
                finally:
                    stop(p)
        print("\n## 1. cached 100 KiB JS, wrk -t1 -c32, median of", a.runs)
        print("| server | req/s | p99 | non-2xx | runs (req/s) |\n|---|---|---|---|---|")
        med = {}
        for k, v in rows.items():
            if not v:
                continue
            med[k] = statistics.median(r[0] for r in v)
            p99 = sorted(v, key=lambda r: r[0])[len(v) // 2][1]
            print(f"| {k} | {med[k]:,.0f} | {p99} | {sum(r[2] for r in v)} | {', '.join(f'{r[0]:,.0f}' for r in v)} |")
        print(f"\nbr,gzip / identity on smol: {med['smol br,gzip'] / med['smol identity']:.2f}x")
        if "sws br,gzip" in med:
            print(f"smol / static-web-server, same request: {med['smol br,gzip'] / med['sws br,gzip']:.2f}x")

        print("\n## 2. cold 20 MB JSON, compressed as a stream (server restarted each time)")
        print("| coding | MB/s | server CPU ms per MB | wire bytes |\n|---|---|---|---|")
        mb = os.path.getsize(os.path.join(root, "big.json")) / 1e6
        for coding in ("zstd", "br", "gzip"):
            res = []
            for _ in range(a.runs):
                p, port = start_smol(a.smol, root)
                try:
                    c0 = cpu(p.pid)
                    code, secs, size = curl(port, "/big.json", f"Accept-Encoding: {coding}")
                    c1 = cpu(p.pid)
                    assert code == 200 and size < mb * 1e6, (code, size)
                    res.append((mb / secs, (c1 - c0) * 1000 / mb, size))
                finally:
                    stop(p)
            m = sorted(res)[len(res) // 2]
            print(f"| {coding} | {m[0]:.0f} | {m[1]:.1f} | {m[2]:,} |")

        print(f"\n## 3. GET /tree/?zip of a {a.tree_mib} MiB tree (1/4 text deflated, 3/4 random stored)")
        print("| run | tree MB/s | archive bytes | server CPU ms per MB |\n|---|---|---|---|")
        tree_mb = a.tree_mib * (1 << 20) / 1e6
        for run in range(a.runs):
            p, port = start_smol(a.smol, root, ["--dir-listing"])
            try:
                c0 = cpu(p.pid)
                code, secs, size = curl(port, "/tree/?zip", None)
                c1 = cpu(p.pid)
                assert code == 200 and size > tree_mb * 1e6 * 0.5, (code, size)
                print(f"| {run + 1} | {tree_mb / secs:.0f} | {size:,} | {(c1 - c0) * 1000 / tree_mb:.1f} |")
            finally:
                stop(p)
        print(f"\n# load after: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
