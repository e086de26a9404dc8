//! Many clients at once, or a resource at its limit (SPEC "Capacity"): the connection
//! places (`--max-connections` on both, and runtime-std's `--queue`) and
//! the `503` with `Retry-After` past them (in a flood, and each one read whole); the
//! open-file limit (exhausted, tight, raised at start); the memory budget that upload
//! bodies share. Each checks the answer at the limit and that service resumes after it.
//! Where the runtimes differ by design (a fixed pool with a queue against an executor
//! with a connection cap), the test says which capacity it expects.
//!
//! Where a test goes: here if many clients or a limit reached are the point. A few
//! clients that hold connections long are [`slow_clients`](crate::slow_clients); one
//! request over a per-request limit is [`security`](crate::security).

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::util::{
    exchange, get, get_close, is_smol, json_of_len, lines_with, poll_read, runtime, served_within,
    tail,
};
use crate::{check_common, Client, Fixture, Response, Server};

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __capacity_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] capacity;
            spec: [
                busy_workers_and_full_queue_give_503,
            ];
            more: [
                connection_flood_gets_503_and_service_resumes,
                every_503_is_read_whole,
                fd_exhaustion_is_logged_without_spinning_and_recovers,
                a_crawl_and_uploads_succeed_under_ulimit_256,
                a_raised_open_file_limit_is_logged,
                upload_bodies_share_a_memory_budget,
            ];
        }
    };
}
pub use crate::__capacity_list as list;

// ----- Connection places and 503 -----

pub fn busy_workers_and_full_queue_give_503(bin: &str) {
    // runtime-std: one worker, one queue slot; runtime-smol: two connections at most.
    let s = Server::start(
        bin,
        &["--threads", "1", "--queue", "1", "--max-connections", "2"],
    );
    // `a` and `b` take the two places without a request yet (runtime-std parks them:
    // they hold no worker, see slow_clients).
    let mut a = s.connect();
    thread::sleep(Duration::from_millis(100));
    let mut b = s.connect();
    thread::sleep(Duration::from_millis(300));
    let mut c = s.connect();
    let t = Instant::now();
    if c.is_h2() {
        // An HTTP/2 answer needs a stream: the refusal answers the first request.
        c.send(get(&s, "/"));
    }
    let r = c.read_response();
    r.expect_status(503);
    assert!(r.header("retry-after").is_some(), "{r:?}");
    // `Connection: close` is HTTP/1.1's; HTTP/2 says it with GOAWAY (the close below).
    assert!(r.closes() || c.is_h2());
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(c.closed_within(Duration::from_secs(3)));
    assert!(
        s.wait_log(&["WARN", "503"], Duration::from_secs(3))
            .is_some(),
        "503 not logged:\n{}",
        s.logs()
    );
    // Once the first client is served and leaves, the waiting one is served.
    a.send(get(&s, "/").as_bytes());
    a.read_response().expect_status(200);
    drop(a);
    let r = b.request(&get(&s, "/sample.txt"));
    r.expect_status(200);
    // And the server takes new connections again.
    drop(b);
    thread::sleep(Duration::from_millis(200));
    s.get("/").expect_status(200);
}

/// 80 connections at once, far past the capacity (`--max-connections 8`: exactly 8 held
/// on both runtimes; runtime-std's workers park a connection that has sent nothing, so
/// its queue does not fill). Every connection over capacity gets 503 with Retry-After
/// and a close, quickly, each logged at warn; the held ones are then served, and new
/// connections are served again.
pub fn connection_flood_gets_503_and_service_resumes(bin: &str) {
    const N: usize = 80;
    let (args, min_held, capacity): (&[&str], usize, usize) =
        (&["--threads", "2", "--max-connections", "8"], 8, 8);
    let s = Server::start(bin, args);
    let start = Instant::now();
    let mut conns: Vec<(TcpStream, Vec<u8>, bool)> = (0..N)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
            c.set_nonblocking(true).expect("nonblocking");
            (c, Vec::new(), false)
        })
        .collect();
    let answered = |conns: &[(TcpStream, Vec<u8>, bool)]| {
        conns
            .iter()
            .filter(|(_, got, _)| Response::status_in(got).is_some())
            .count()
    };
    while answered(&conns) < N - capacity && start.elapsed() < Duration::from_secs(5) {
        for (c, got, done) in conns.iter_mut().filter(|(_, _, d)| !*d) {
            if poll_read(c, got) == Some(true) {
                *done = true;
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    // Let anything more arrive that should not.
    thread::sleep(Duration::from_millis(300));
    for (c, got, done) in conns.iter_mut().filter(|(_, _, d)| !*d) {
        while let Some(false) = poll_read(c, got) {}
        if poll_read(c, got) == Some(true) {
            *done = true;
        }
    }
    let refused: Vec<usize> = (0..N)
        .filter(|&i| Response::status_in(&conns[i].1).is_some())
        .collect();
    let kept = N - refused.len();
    assert!(
        (min_held..=capacity).contains(&kept),
        "{kept} connections held, {} answered without a request; logs:\n{}",
        refused.len(),
        tail(&s.logs())
    );
    for &i in &refused {
        let text = String::from_utf8_lossy(&conns[i].1).to_string();
        assert_eq!(Response::status_in(&conns[i].1), Some(503), "{text}");
        let lower = text.to_ascii_lowercase();
        assert!(lower.contains("\r\nretry-after:"), "{text}");
        assert!(lower.contains("\r\nconnection: close"), "{text}");
    }
    assert!(took < Duration::from_secs(3), "503s took {took:?}");
    let warned = s
        .wait_log(&["WARN", "refused (503)"], Duration::from_secs(2))
        .map(|_| lines_with(&s.logs(), &["WARN", "refused (503)"]).len());
    assert_eq!(warned, Some(refused.len()), "one warn line per 503");
    // The 503'd connections are closed by the server.
    let until = Instant::now() + Duration::from_secs(3);
    while refused.iter().any(|&i| !conns[i].2) && Instant::now() < until {
        for &i in &refused {
            let (c, got, done) = &mut conns[i];
            if !*done && poll_read(c, got) == Some(true) {
                *done = true;
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        refused.iter().all(|&i| conns[i].2),
        "a 503 left its connection open"
    );
    // The held connections are served (runtime-std: the queued ones once a worker frees).
    // All requests are sent first: a queued one is only served once a worker is free.
    let mut held: Vec<Client> = (0..N)
        .filter(|i| !refused.contains(i))
        .map(|i| {
            let mut c = conns[i].0.try_clone().expect("clone");
            c.set_nonblocking(false).expect("blocking");
            c.write_all(get_close(&s, "/sample.txt").as_bytes())
                .expect("send on a held connection");
            Client::from_stream(c)
        })
        .collect();
    drop(conns);
    let want = std::fs::read(s.fx.root.join("sample.txt")).expect("sample");
    for c in &mut held {
        let r = exchange(c, b"").expect("held connection answered");
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], &want[..]);
    }
    // Closing them ends their lingering; then new connections are served again.
    drop(held);
    served_within(&s, "/", Duration::from_secs(2));
    for _ in 0..10 {
        s.get("/").expect_status(200);
    }
    eprintln!(
        "{N} connections, capacity {capacity}: {kept} held, {} got 503 within {took:?}",
        refused.len()
    );
}

/// The only place is taken (`--max-connections 1`; runtime-std also `--threads 1
/// --queue 0`) by a client that has sent nothing yet. 50
/// clients at once connect, wait 50 ms (the 503 is written at accept, and the server
/// closes its side), then send a whole request: each reads a complete `503` with
/// `Retry-After` and a clean end of stream — no reset, no empty read. One `warn` line
/// each. The holder is then served.
pub fn every_503_is_read_whole(bin: &str) {
    const N: usize = 50;
    let s = Server::start(
        bin,
        &["--threads", "1", "--queue", "0", "--max-connections", "1"],
    );
    // The first connection after the start line takes the only place (runtime-std once
    // refused it: the line went out before its worker waited for work).
    let mut holder = s.connect();
    assert!(
        holder.open_after(Duration::from_millis(300)),
        "the first connection after the start line was refused"
    );
    let barrier = Barrier::new(N);
    let request = format!(
        "GET /sample.txt HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.host()
    );
    let results: Vec<Result<Vec<u8>, String>> = thread::scope(|scope| {
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let (barrier, request, port) = (&barrier, &request, s.port);
                scope.spawn(move || -> Result<Vec<u8>, String> {
                    barrier.wait();
                    let mut c = TcpStream::connect(("127.0.0.1", port))
                        .map_err(|e| format!("connect: {e}"))?;
                    c.set_read_timeout(Some(Duration::from_secs(10)))
                        .map_err(|e| e.to_string())?;
                    thread::sleep(Duration::from_millis(50));
                    c.write_all(request.as_bytes())
                        .map_err(|e| format!("send: {e}"))?;
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) => return Ok(got),
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                            Err(e) => {
                                return Err(format!("{e} after {} bytes", got.len()));
                            }
                        }
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("client")).collect()
    });
    let mut failures = Vec::new();
    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(bytes) if bytes.is_empty() => failures.push(format!("{i}: empty read")),
            Ok(bytes) => match Response::parse(bytes, false, true) {
                Ok(Some((r, used))) => {
                    check_common(&r);
                    if r.status != 503 || r.header("retry-after") != Some("1") {
                        failures.push(format!("{i}: {r:?}"));
                    } else if used != bytes.len() {
                        failures.push(format!("{i}: {} bytes after the 503", bytes.len() - used));
                    }
                }
                other => failures.push(format!(
                    "{i}: {other:?} in {:?}",
                    String::from_utf8_lossy(bytes)
                )),
            },
            Err(e) => failures.push(format!("{i}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {N} clients did not read a whole 503: {failures:#?}",
        failures.len()
    );
    assert!(s
        .wait_log(&["WARN", "refused (503)"], Duration::from_secs(2))
        .is_some());
    assert_eq!(
        lines_with(&s.logs(), &["WARN", "refused (503)"]).len(),
        N,
        "one warn line per 503"
    );
    // The holder had the place all along.
    let r = holder.request(&request);
    r.expect_status(200);
    drop(holder);
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let r = s.get("/sample.txt");
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < until,
            "not served after the holder left: {r:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{}: {N} of {N} clients read a whole 503", runtime(bin));
}

// ----- Open files -----

/// user + system CPU seconds a process has used so far (`/proc/PID/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 of the line.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / clock_ticks() as f64
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The server runs under `ulimit -n 64` and gets 100 connections: accept fails with
/// EMFILE, which is logged; the accept loop pauses instead of spinning (CPU time over
/// one second well under a core); when the clients leave, it serves again.
pub fn fd_exhaustion_is_logged_without_spinning_and_recovers(bin: &str) {
    const N: usize = 100;
    let s = Server::builder(bin)
        .ulimit_nofile(64)
        .args(&[
            "--threads",
            "2",
            "--queue",
            "500",
            "--max-connections",
            "5000",
            "--idle-timeout",
            "60",
        ])
        .rust_log("info")
        .start();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).expect("limits");
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 64 ")),
        "the limit did not apply:\n{limits}"
    );
    s.get("/").expect_status(200);
    let conns: Vec<TcpStream> = (0..N)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).expect("connect"))
        .collect();
    let logged = s.wait_log(&["accept"], Duration::from_secs(5));
    let line = logged.unwrap_or_else(|| panic!("no accept error logged:\n{}", tail(&s.logs())));
    assert!(
        line.contains("Too many open files") || line.contains("os error 24"),
        "{line}"
    );
    assert!(line.contains("ERROR") || line.contains("WARN"), "{line}");
    // Still exhausted: sample the CPU time the server burns meanwhile.
    let (c0, t0) = (cpu_seconds(s.pid()), Instant::now());
    thread::sleep(Duration::from_millis(1000));
    let used = (cpu_seconds(s.pid()) - c0) / t0.elapsed().as_secs_f64();
    assert!(
        used < 0.25,
        "the server used {used:.2} of a core while out of descriptors"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    drop(conns);
    let took = served_within(&s, "/logo.png", Duration::from_secs(10));
    for _ in 0..5 {
        s.get("/sample.txt").expect_status(200);
    }
    let errors = lines_with(&s.logs(), &["accept"]).len();
    eprintln!(
        "ulimit -n 64, {N} connections: {errors} accept error lines, {used:.3} of a core while \
         exhausted, {fds} fds, served again {took:?} after the clients left"
    );
}

/// How many descriptors a process has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The soft `Max open files` of a process (`/proc/PID/limits`).
fn soft_nofile(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The `i`th file of the crawl: its name in its first line, then a pattern.
fn crawl_bytes(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("file {i:03}\n").into_bytes();
    v.extend((v.len()..len).map(|j| (j.wrapping_mul(7) ^ i) as u8));
    v
}

/// Under `ulimit -n 256` (soft and hard: nothing to raise), 600 files of 100 KiB — each
/// large enough to be sent from an open descriptor, dated an hour ago so the open-file
/// cache keeps them — are each fetched once by 8 concurrent keep-alive clients: every
/// answer is 200 with the file's bytes. Then 20 uploads at once all get 201. No error is
/// logged, and runtime-smol logs that its `--max-connections` was capped to fit.
pub fn a_crawl_and_uploads_succeed_under_ulimit_256(bin: &str) {
    const FILES: usize = 600;
    const SIZE: usize = 100 << 10;
    const CLIENTS: usize = 8;
    const UPLOADS: usize = 20;
    let fx = Fixture::empty();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for i in 0..FILES {
        let path = fx.root.join(format!("crawl/f{i:03}.txt"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, crawl_bytes(i, SIZE)).expect("write");
        File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(an_hour_ago))
            .expect("mtime");
    }
    let s = Server::builder(bin)
        .fixture(fx)
        .ulimit_nofile(256)
        .args(&["--threads", "10"])
        .rust_log("info")
        .start();
    assert_eq!(soft_nofile(s.pid()), Some(256), "the limit did not apply");
    let start = Instant::now();
    let done = AtomicBool::new(false);
    let peak_fds = thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(open_fds(s.pid()));
                thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    let mut c = s.connect();
                    for i in (t..FILES).step_by(CLIENTS) {
                        let path = format!("/crawl/f{i:03}.txt");
                        let r = c.request(&get(s, &path));
                        assert_eq!(r.status, 200, "{path}: {r:?}");
                        assert!(r.body == crawl_bytes(i, SIZE), "{path}: wrong bytes");
                        if r.closes() {
                            c = s.connect();
                        }
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().expect("crawler");
        }
        done.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler")
    });
    let crawl = start.elapsed();
    let t = Instant::now();
    let statuses: Vec<u16> = thread::scope(|scope| {
        let hs: Vec<_> = (0..UPLOADS)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    s.upload("application/json", &format!("{{\"upload\":{i}}}"))
                        .status
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("uploader"))
            .collect()
    });
    let uploads = t.elapsed();
    assert!(
        statuses.iter().all(|&st| st == 201),
        "uploads under ulimit -n 256: {statuses:?}; logs:\n{}",
        tail(&s.logs())
    );
    assert_eq!(s.fx.uploads().len(), UPLOADS);
    s.get("/crawl/f000.txt").expect_status(200);
    let logs = s.logs();
    assert!(
        lines_with(&logs, &["ERROR"]).is_empty(),
        "errors under ulimit -n 256:\n{}",
        tail(&logs)
    );
    if is_smol(bin) {
        assert!(
            logs.contains("does not fit the open-file limit of 256"),
            "runtime-smol does not say that --max-connections was capped:\n{}",
            tail(&logs)
        );
    }
    eprintln!(
        "{} under ulimit -n 256: {FILES} files of 100 KiB by {CLIENTS} clients in {crawl:.2?} \
         (peak {peak_fds} descriptors), {UPLOADS} uploads at once in {uploads:.2?}",
        runtime(bin)
    );
}

/// Started with a soft limit of 256 below a higher hard limit (`ulimit -Sn 256`), the
/// server raises the soft limit to the hard one and logs `raised the open-file limit
/// from 256 to HARD`; runtime-smol's start line then keeps its default 10,000
/// connections when they fit. Skipped when the hard limit is not above 256 or is
/// unlimited.
pub fn a_raised_open_file_limit_is_logged(bin: &str) {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let Some(hard) = hard.filter(|&h| h > 256) else {
        eprintln!("skipped: the hard open-file limit ({hard:?}) leaves nothing to raise");
        return;
    };
    let fx = Fixture::new();
    let root = fx.root.to_str().expect("utf-8 root").to_string();
    // The harness's `ulimit_nofile` sets both limits; this lowers only the soft one
    // (`exec` keeps the PID, so the server is still stopped by PID).
    let s = Server::builder("bash")
        .fixture(fx)
        .without_port_and_root()
        .args(&[
            "-c",
            "ulimit -Sn 256 && exec \"$0\" \"$@\"",
            bin,
            "--port",
            "0",
            "--root",
            &root,
        ])
        .rust_log("info")
        .start();
    let needle = format!("raised the open-file limit from 256 to {hard}");
    assert!(
        s.wait_log(&["INFO", &needle], Duration::from_secs(3))
            .is_some(),
        "no `{needle}`:\n{}",
        s.logs()
    );
    assert_eq!(soft_nofile(s.pid()), Some(hard));
    if is_smol(bin) {
        let budget = (hard / 4).clamp(4, 1024);
        let fit = hard.saturating_sub(budget).saturating_sub(64).max(16);
        let expected = fit.min(10_000);
        assert!(
            s.wait_log(
                &[&format!("at most {expected} connections")],
                Duration::from_secs(2)
            )
            .is_some(),
            "start line:\n{}",
            s.logs()
        );
    }
    s.get("/sample.txt").expect_status(200);
    eprintln!("{}: {needle}", runtime(bin));
}

// ----- The memory budget of upload bodies -----

/// `--max-body-memory 100000`: an upload with `Content-Length: 80000` whose head is
/// sent with `Expect: 100-continue` (its `100` says the budget is taken) and then only
/// part of its body holds 80,000 bytes of the budget; an upload of 50,000 then gets
/// `503` with `Retry-After: 1` and a close (one `warn` line), while one of 10,000 still
/// fits (201). Once the first completes (201, saved whole), an upload of 50,000 is
/// accepted.
pub fn upload_bodies_share_a_memory_budget(bin: &str) {
    let s = Server::start(bin, &["--max-body-memory", "100000", "--threads", "4"]);
    let first = json_of_len(80_000);
    let mut c = s.connect();
    c.send(format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        s.host(),
        first.len()
    ));
    c.read_response().expect_status(100);
    c.send(&first.as_bytes()[..30_000]);
    let r = s.upload("application/json", &json_of_len(50_000));
    r.expect_status(503).expect_header("retry-after", "1");
    assert!(r.closes(), "{r:?}");
    assert!(
        s.wait_log(&["WARN", "refused (503)"], Duration::from_secs(2))
            .is_some(),
        "{}",
        tail(&s.logs())
    );
    s.upload("application/json", &json_of_len(10_000))
        .expect_status(201);
    c.send(&first.as_bytes()[30_000..]);
    let r = c.read_response();
    r.expect_status(201);
    let location = r.header("location").expect("Location").to_string();
    let saved = std::fs::read_to_string(s.fx.root.join(location.trim_start_matches('/')))
        .expect("the first upload");
    assert!(saved == first, "the first upload was not saved whole");
    s.upload("application/json", &json_of_len(50_000))
        .expect_status(201);
    assert_eq!(s.fx.uploads().len(), 3);
    assert_eq!(
        lines_with(&s.logs(), &["WARN", "refused (503)"]).len(),
        1,
        "one 503"
    );
}
