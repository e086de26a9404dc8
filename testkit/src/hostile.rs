//! Issue 13 over real sockets, shared by both runtimes: hostile clients and bad days —
//! slow readers, idle keep-alive connections, a small descriptor limit, a second copy
//! of the server, a big download beside small requests, 503s under overload, a log sink
//! that stops reading, the shared memory budget of upload bodies, and numeric flags out
//! of range.
//!
//! A runtime's test file expands the macro with its binary:
//!
//! ```ignore
//! testkit::hostile_tests!(env!("CARGO_BIN_EXE_runtime-std"));
//! ```
//!
//! Everything runs on 127.0.0.1 against servers the test starts itself (stopped by PID
//! when dropped), every loop is bounded in time and count, and the timing limits are
//! generous (a 2-core machine shared with other work) yet far below what the behaviour
//! would take if it regressed (a worker held for the idle timeout, a download that hogs
//! its executor thread, a log write that blocks). Where the runtimes differ by design,
//! the test says what each is expected to do. The figures are printed (`--nocapture`).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::{check_common, run_to_exit, Client, Fixture, Response, Server};

/// Expands to one `#[test]` per case, run against the binary at `$bin`.
#[macro_export]
macro_rules! hostile_tests {
    ($bin:expr) => {
        $crate::hostile_tests!(@cases $bin;
            slow_readers_are_dropped_and_a_fresh_client_is_served,
            idle_keep_alive_clients_do_not_hold_the_workers,
            a_stalled_request_does_not_hold_up_parked_connections,
            a_crawl_and_uploads_succeed_under_ulimit_256,
            a_raised_open_file_limit_is_logged,
            a_second_instance_fails_and_the_clean_up_spares_live_and_outside_temporaries,
            a_big_download_does_not_starve_small_gets,
            every_503_is_read_whole,
            a_stalled_log_sink_does_not_stop_serving,
            upload_bodies_share_a_memory_budget,
            out_of_range_numbers_are_usage_errors,
        );
    };
    (@cases $bin:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::hostile::$name($bin);
            }
        )*
    };
}

fn is_smol(bin: &str) -> bool {
    Path::new(bin)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("runtime-smol"))
}

fn runtime(bin: &str) -> &'static str {
    if is_smol(bin) {
        "runtime-smol"
    } else {
        "runtime-std"
    }
}

/// A keep-alive GET.
fn get(s: &Server, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.host())
}

/// The end of a long log, for failure messages.
fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn lines_with<'a>(logs: &'a str, needles: &[&str]) -> Vec<&'a str> {
    logs.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect()
}

/// A JSON document of exactly `len` bytes (at least 12).
fn json_of_len(len: usize) -> String {
    let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(len - 10));
    assert_eq!(body.len(), len);
    body
}

/// The nearest-rank percentile (`p` in 0..=100) of sorted values.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
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

/// The TCP state (`/proc/net/tcp`: 1 established, 4 FIN_WAIT1, …) of the server's side
/// of the connection from `client_port` to `server_port`; `None` once it is gone.
fn server_side_state(server_port: u16, client_port: u16) -> Option<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |a: &str| {
        a.rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 3 && port(f[1]) == Some(server_port) && port(f[2]) == Some(client_port))
            .then(|| u8::from_str_radix(f[3], 16).ok())
            .flatten()
    })
}

const TCP_ESTABLISHED: u8 = 1;

/// A connection to 127.0.0.1:`port` whose receive buffer is set to `rcvbuf` bytes before
/// the handshake (so the window it offers stays that small).
fn connect_small_rcvbuf(port: u16, rcvbuf: usize) -> TcpStream {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    sockopt::set_socket_recv_buffer_size(&fd, rcvbuf).expect("SO_RCVBUF");
    rustix::net::connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).expect("connect");
    TcpStream::from(fd)
}

// ----- 1. Slow readers -----

/// Two clients read a 64 MiB download at 100 bytes a second through a small receive
/// buffer (`SO_RCVBUF` 4096, set before connecting), with `--idle-timeout 2` (the window of host::pace: at least 1 KiB/s) and
/// `--threads 2` — on runtime-std they hold both workers. Each is dropped by the server
/// (its side of the connection leaves ESTABLISHED, the access log says `write failed`)
/// after one to a few windows, within 10 s; a fresh client sent right after them is
/// answered (runtime-std: once a slow one's worker is free; runtime-smol: at once).
pub fn slow_readers_are_dropped_and_a_fresh_client_is_served(bin: &str) {
    const SLOW: usize = 2;
    const LIMIT: Duration = Duration::from_secs(10);
    let fx = Fixture::new();
    File::create(fx.root.join("big.txt"))
        .and_then(|f| f.set_len(64 << 20))
        .expect("big.txt");
    let s = Server::builder(bin)
        .fixture(fx)
        .args(&["--idle-timeout", "2", "--threads", "2"])
        .start();
    let start = Instant::now();
    let mut slow: Vec<(TcpStream, u16, Option<Duration>, usize)> = (0..SLOW)
        .map(|_| {
            let mut c = connect_small_rcvbuf(s.port, 4096);
            c.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            c.write_all(get(&s, "/big.txt").as_bytes()).expect("send");
            // The answer has started: a worker (runtime-std) is busy with this one.
            let mut first = [0u8; 100];
            let n = c.read(&mut first).expect("the download starts");
            assert!(
                first[..n].starts_with(b"HTTP/1.1 200 "),
                "{:?}",
                &first[..n]
            );
            let port = c.local_addr().expect("addr").port();
            (c, port, None, n)
        })
        .collect();
    let port = s.port;
    let host = s.host();
    let fresh = thread::spawn(move || {
        let t = Instant::now();
        let mut c = Client::connect(port);
        let r = c.request(&format!(
            "GET /sample.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ));
        (r.status, t.elapsed())
    });
    // 100 bytes a second each, watching the server's side of each connection.
    let mut next_read = start + Duration::from_secs(1);
    while slow.iter().any(|x| x.2.is_none()) && start.elapsed() < LIMIT + Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(100));
        let read_now = Instant::now() >= next_read;
        if read_now {
            next_read += Duration::from_secs(1);
        }
        for (c, client_port, closed, read) in slow.iter_mut().filter(|x| x.2.is_none()) {
            if read_now {
                let mut buf = [0u8; 100];
                if let Ok(n) = c.read(&mut buf) {
                    *read += n;
                }
            }
            if server_side_state(s.port, *client_port) != Some(TCP_ESTABLISHED) {
                *closed = Some(start.elapsed());
            }
        }
    }
    let (status, fresh_took) = fresh.join().expect("fresh client");
    assert_eq!(status, 200, "the fresh client");
    let logs = s.logs();
    for (_, client_port, closed, read) in &slow {
        let closed = closed.unwrap_or_else(|| {
            panic!(
                "a reader at 100 B/s ({read} bytes read) still held its connection after \
                 {LIMIT:?}; logs:\n{}",
                tail(&logs)
            )
        });
        assert!(
            closed <= LIMIT && closed >= Duration::from_millis(1500),
            "slow reader dropped after {closed:?} (window 2 s)"
        );
        let peer = format!("127.0.0.1:{client_port} ");
        assert_eq!(
            lines_with(&logs, &[&peer, "\"GET /big.txt\" 200", "write failed"]).len(),
            1,
            "no `write failed` access-log line for {peer}:\n{}",
            tail(&logs)
        );
    }
    assert!(
        lines_with(&logs, &["under 1024 bytes/s"]).len() >= SLOW,
        "the reason is logged (debug):\n{}",
        tail(&logs)
    );
    let fresh_limit = if is_smol(bin) {
        Duration::from_secs(3)
    } else {
        LIMIT
    };
    assert!(
        fresh_took <= fresh_limit,
        "the fresh client waited {fresh_took:?}"
    );
    s.get("/sample.txt").expect_status(200);
    let closed: Vec<String> = slow
        .iter()
        .map(|x| format!("{:.1?}", x.2.unwrap_or_default()))
        .collect();
    eprintln!(
        "{}: {SLOW} readers at 100 B/s dropped after {closed:?}; fresh client answered in \
         {fresh_took:.2?}",
        runtime(bin)
    );
}

// ----- 2. Idle keep-alive connections -----

/// `--threads 2 --queue 4`: four clients each make one request and stay open and
/// silent. Each is answered within 1 s (runtime-std: the third and fourth once an idle
/// one yields its worker: runtime-std parks a connection between requests), a fifth
/// client then gets its answer within 1 s (five times, each a new connection), and the
/// four idle ones are still served afterwards, one by one and all at once. Without
/// parking, runtime-std would keep the fifth (and the third and fourth) waiting for the
/// 30 s idle timeout.
pub fn idle_keep_alive_clients_do_not_hold_the_workers(bin: &str) {
    const IDLE: usize = 4;
    let limit = Duration::from_secs(1);
    let s = Server::start(bin, &["--threads", "2", "--queue", "4"]);
    let want = std::fs::read(s.fx.root.join("sample.txt")).expect("sample");
    let timed = |c: &mut Client, what: &str| {
        let t = Instant::now();
        let r = c.request(&get(&s, "/sample.txt"));
        let took = t.elapsed();
        r.expect_status(200);
        assert_eq!(r.body, want);
        assert!(
            took <= limit,
            "{what} answered after {took:?}; logs:\n{}",
            tail(&s.logs())
        );
        took
    };
    let mut idle: Vec<Client> = Vec::new();
    let mut first = Vec::new();
    for i in 0..IDLE {
        let mut c = s.connect();
        first.push(timed(&mut c, &format!("idle client {i}")));
        idle.push(c);
    }
    // All four are now idle between requests (on runtime-std two hold the workers).
    thread::sleep(Duration::from_millis(500));
    let mut fifth = Vec::new();
    for i in 0..5 {
        let mut c = s.connect();
        let t = Instant::now();
        let r = c.request(&format!(
            "GET /sample.txt HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.host()
        ));
        let took = t.elapsed();
        r.expect_status(200);
        assert!(
            took <= limit,
            "fresh client {i} with {IDLE} idle ones open answered after {took:?}; logs:\n{}",
            tail(&s.logs())
        );
        fifth.push(took);
        thread::sleep(Duration::from_millis(100));
    }
    let mut again = Vec::new();
    for (i, c) in idle.iter_mut().enumerate() {
        again.push(timed(c, &format!("idle client {i}, second request")));
    }
    // All four at once (two workers on runtime-std).
    let t = Instant::now();
    for c in &mut idle {
        c.send(get(&s, "/sample.txt"));
    }
    for c in &mut idle {
        let r = c.read_response();
        r.expect_status(200);
        assert_eq!(r.body, want);
    }
    let together = t.elapsed();
    assert!(
        together <= 2 * limit,
        "the four idle clients together took {together:?}"
    );
    if !is_smol(bin) {
        assert!(
            s.wait_log(&["parked between requests"], Duration::from_secs(2))
                .is_some(),
            "runtime-std: no connection was parked:\n{}",
            tail(&s.logs())
        );
    }
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{}: {IDLE} idle keep-alive clients (worst first answer {:.1?}); a fresh client \
         answered in at most {:.1?}; the idle ones again in at most {:.1?}, all four at once \
         {together:.1?}",
        runtime(bin),
        max(&first),
        max(&fifth),
        max(&again)
    );
}

// ----- 3. Descriptors -----

/// The `i`th file of the crawl: its name in its first line, then a pattern.
/// `--threads 3`: three keep-alive clients each make a request and wait between
/// requests (runtime-std: parked, holding no worker). Then one sends half a request
/// head and stops (its worker blocks until the head deadline), and one asks for a
/// 64 MiB file that it does not read (its worker blocks in the write). The third
/// client's next five requests are each answered within 1 s: on runtime-std a worker
/// about to block hands the watch over parked connections to an idle one (without it,
/// the third would wait for the head deadline, 10 s); runtime-smol never blocks.
pub fn a_stalled_request_does_not_hold_up_parked_connections(bin: &str) {
    let limit = Duration::from_secs(1);
    let fx = Fixture::new();
    File::create(fx.root.join("big.bin"))
        .and_then(|f| f.set_len(64 << 20))
        .expect("big.bin");
    let s = Server::start_in(bin, fx, &["--threads", "3", "--head-timeout", "10"]);
    let mut half = s.connect();
    let mut hog = Client::from_stream(connect_small_rcvbuf(s.port, 4096));
    let mut third = s.connect();
    for c in [&mut half, &mut hog, &mut third] {
        c.request(&get(&s, "/sample.txt")).expect_status(200);
    }
    thread::sleep(Duration::from_millis(200));
    half.send(format!(
        "GET /sample.txt HTTP/1.1\r\nHost: {}\r\n",
        s.host()
    ));
    thread::sleep(Duration::from_millis(200));
    hog.send(get(&s, "/big.bin"));
    thread::sleep(Duration::from_millis(300));
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let t = Instant::now();
        let r = third.request(&get(&s, "/sample.txt"));
        let took = t.elapsed();
        r.expect_status(200);
        assert!(
            took <= limit,
            "request {i} of the third client, beside a stalled head and an unread \
             download, answered after {took:?}; logs:\n{}",
            tail(&s.logs())
        );
        worst = worst.max(took);
    }
    // Both stalled ones are still in progress: the half head is finished now and answered.
    half.send("\r\n");
    half.read_response().expect_status(200);
    eprintln!(
        "{}: beside a stalled head and an unread 64 MiB download, a parked client's five \
         requests answered in at most {worst:.1?}",
        runtime(bin)
    );
}

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

// ----- 4. A second instance, and the start-up clean-up -----

/// `uploads/.tmp-x.json` is "in flight" (this test holds an exclusive `flock` on it, as
/// a writer does until its rename) and `.tmp-y.json` is a crash's leftover. The server's
/// start-up removes `.tmp-y` (and says so) and spares `.tmp-x`. A second server on the
/// same port exits 1 with one line saying the port is in use, and removes nothing — not
/// `.tmp-x`, not even a stale `.tmp-w.json` made meanwhile (the clean-up runs only once
/// the port is bound); the first keeps serving. Once the lock is gone, a restart removes
/// both. Finally, with `uploads` a symlink to a directory outside the root that holds
/// `.tmp-z.json`, start-up deletes nothing there (and logs why) and serves.
pub fn a_second_instance_fails_and_the_clean_up_spares_live_and_outside_temporaries(bin: &str) {
    // Every server runs on this root (a server's own fixture goes when it is dropped).
    let fx = Fixture::new();
    let root = fx.root.clone();
    let base = fx.base.path();
    let uploads = root.join("uploads");
    let live = uploads.join(".tmp-x.json");
    std::fs::write(&live, "{\"in\":\"flight\"").expect("write");
    let lock = File::options().write(true).open(&live).expect("open");
    lock.try_lock().expect("flock .tmp-x.json");
    std::fs::write(uploads.join(".tmp-y.json"), "{\"stale\"").expect("write");
    let s = Server::builder(bin)
        .fixture(Fixture::at(&root))
        .rust_log("info")
        .start();
    assert!(
        live.exists(),
        "start-up removed a temporary still being written"
    );
    assert!(
        !uploads.join(".tmp-y.json").exists(),
        "start-up left a stale temporary"
    );
    assert!(
        s.wait_log(
            &["WARN", "removed 1 unfinished upload"],
            Duration::from_secs(2)
        )
        .is_some(),
        "{}",
        s.logs()
    );
    std::fs::write(uploads.join(".tmp-w.json"), "{\"stale\"").expect("write");
    let port = s.port.to_string();
    let root_arg = root.to_str().expect("utf-8 root");
    let (status, out, err) = run_to_exit(bin, &["--port", &port, "--root", root_arg], base);
    assert_eq!(
        status.code(),
        Some(1),
        "a second server on port {port}: {status}, stdout {out:?}, stderr {err:?}"
    );
    assert!(out.is_empty(), "it announced itself: {out:?}");
    assert!(
        err.contains("already in use") && err.trim().lines().count() == 1,
        "one clear line: {err:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&live).ok().as_deref(),
        Some("{\"in\":\"flight\""),
        "the second server touched the temporary in flight"
    );
    assert!(
        uploads.join(".tmp-w.json").exists(),
        "a server that could not bind its port cleaned up the running one's uploads/"
    );
    s.get("/sample.txt").expect_status(200);
    s.upload("application/json", "{\"still\":\"serving\"}")
        .expect_status(201);
    // The writer is gone: both temporaries are a crash's leftovers now.
    drop(s);
    drop(lock);
    let s = Server::start_in(bin, Fixture::at(&root), &[]);
    assert!(!live.exists() && !uploads.join(".tmp-w.json").exists());
    assert!(s
        .wait_log(&["removed 2 unfinished upload"], Duration::from_secs(2))
        .is_some());
    assert_eq!(s.fx.uploads().len(), 1, "{:?}", s.fx.uploads());
    drop(s);
    drop(fx);
    // uploads/ a symlink to a directory outside the root.
    let fx = Fixture::new();
    let elsewhere = fx.base.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    std::fs::write(elsewhere.join(".tmp-z.json"), "{").expect("write");
    std::fs::remove_dir(fx.root.join("uploads")).expect("rmdir");
    std::os::unix::fs::symlink(&elsewhere, fx.root.join("uploads")).expect("symlink");
    let s = Server::builder(bin).fixture(fx).rust_log("info").start();
    assert!(
        elsewhere.join(".tmp-z.json").exists(),
        "start-up followed a symlinked uploads/ and deleted outside the root"
    );
    assert!(
        s.wait_log(&["nothing removed"], Duration::from_secs(2))
            .is_some(),
        "{}",
        s.logs()
    );
    s.get("/sample.txt").expect_status(200);
    assert!(elsewhere.join(".tmp-z.json").exists());
}

// ----- 5. A big download beside small requests -----

/// While one client downloads a 512 MiB file (sparse: read from the page cache) as fast
/// as it can, again and again on one keep-alive connection, another client's 200 small
/// GETs have a p99 under 50 ms — on runtime-smol with `--threads 1` (one executor thread
/// for both: the download must yield), on runtime-std with `--threads 2` (a worker
/// each). The download must make progress during the measurement.
pub fn a_big_download_does_not_starve_small_gets(bin: &str) {
    const BIG: u64 = 512 << 20;
    const GETS: usize = 200;
    const P99_LIMIT: Duration = Duration::from_millis(50);
    let fx = Fixture::new();
    File::create(fx.root.join("big.txt"))
        .and_then(|f| f.set_len(BIG))
        .expect("big.txt");
    let threads = if is_smol(bin) { "1" } else { "2" };
    let s = Server::builder(bin)
        .fixture(fx)
        .args(&["--threads", threads, "--max-requests", "1000"])
        .rust_log("info")
        .start();
    let downloaded = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let downloader = {
        let (downloaded, stop) = (Arc::clone(&downloaded), Arc::clone(&stop));
        let (port, request) = (s.port, get(&s, "/big.txt"));
        thread::spawn(move || -> Result<usize, String> {
            let mut c = Client::connect(port);
            let start = Instant::now();
            let mut whole = 0;
            let mut buf = vec![0u8; 1 << 20];
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
                c.send(request.as_bytes());
                // The head alone (the body is counted here, not buffered).
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match c.stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        other => return Err(format!("head: {other:?}")),
                    }
                }
                if !head.starts_with(b"HTTP/1.1 200 ") {
                    return Err(String::from_utf8_lossy(&head).into_owned());
                }
                let mut left = BIG;
                while left > 0 {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(whole);
                    }
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    match c.stream.read(&mut buf[..want]) {
                        Ok(0) => return Err("closed mid-body".into()),
                        Ok(n) => {
                            left -= n as u64;
                            downloaded.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) => return Err(format!("body: {e}")),
                    }
                }
                whole += 1;
            }
            Ok(whole)
        })
    };
    let until = Instant::now() + Duration::from_secs(10);
    while downloaded.load(Ordering::Relaxed) < 1 << 20 && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
    assert!(
        downloaded.load(Ordering::Relaxed) >= 1 << 20,
        "the download did not start"
    );
    let mut c = s.connect();
    let want = std::fs::read(s.fx.root.join("sample.txt")).expect("sample");
    let request = get(&s, "/sample.txt");
    let d0 = downloaded.load(Ordering::Relaxed);
    let t0 = Instant::now();
    // Spread over about a second, so that they meet every phase of the downloads (the
    // head and open of the next one too).
    let mut times: Vec<Duration> = (0..GETS)
        .map(|_| {
            thread::sleep(Duration::from_millis(5));
            let t = Instant::now();
            let r = c.request(&request);
            let took = t.elapsed();
            r.expect_status(200);
            assert_eq!(r.body, want);
            took
        })
        .collect();
    let span = t0.elapsed();
    let moved = downloaded.load(Ordering::Relaxed) - d0;
    stop.store(true, Ordering::Relaxed);
    let whole = downloader
        .join()
        .expect("downloader")
        .unwrap_or_else(|e| panic!("the download failed: {e}"));
    times.sort_unstable();
    let (p50, p99, max) = (
        percentile(&times, 50),
        percentile(&times, 99),
        times[GETS - 1],
    );
    eprintln!(
        "{} --threads {threads}: {GETS} GETs in {span:.2?} beside a 512 MiB download \
         ({} MiB moved meanwhile, {:.0} MiB/s, {whole} whole downloads): p50 {p50:.2?}, \
         p99 {p99:.2?}, max {max:.2?}",
        runtime(bin),
        moved >> 20,
        moved as f64 / (1 << 20) as f64 / span.as_secs_f64()
    );
    assert!(
        moved >= 1 << 20,
        "the download stalled during the measurement ({moved} bytes)"
    );
    assert!(
        p99 < P99_LIMIT,
        "p99 {p99:?} (p50 {p50:?}, max {max:?}) beside a big download"
    );
}

// ----- 6. Every 503 is read whole -----

/// The only place is taken — runtime-std `--threads 1 --queue 0` with its worker held,
/// runtime-smol `--max-connections 1` — by a client that has sent nothing yet. 50
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

// ----- 7. A stalled log sink -----

/// The thread named `name` of a process: what it waits in (`wchan`), if readable.
fn thread_wchan(pid: u32, name: &str) -> Option<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.filter_map(Result::ok).find_map(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
        (comm.trim() == name)
            .then(|| std::fs::read_to_string(t.path().join("wchan")).ok())
            .flatten()
    })
}

/// With `RUST_LOG=info` and stderr a pipe nobody reads (it fills after a few hundred
/// lines; a server that wrote its log lines itself would then stop in every thread),
/// 3,000 keep-alive requests from 4 clients all succeed within 30 s, and the server
/// still answers at once afterwards. The log writer thread is then seen blocked on the
/// full pipe (where the kernel tells), so the sink really was stalled.
pub fn a_stalled_log_sink_does_not_stop_serving(bin: &str) {
    const CLIENTS: usize = 4;
    const REQUESTS: usize = 3000;
    let limit = Duration::from_secs(30);
    let s = Server::builder(bin)
        .args(&["--threads", "4"])
        .rust_log("info")
        .stderr_unread()
        .start();
    let want = std::fs::read(s.fx.root.join("sample.txt")).expect("sample");
    let start = Instant::now();
    thread::scope(|scope| {
        for _ in 0..CLIENTS {
            let (s, want) = (&s, &want);
            scope.spawn(move || {
                let mut c = s.connect();
                for _ in 0..REQUESTS / CLIENTS {
                    assert!(
                        start.elapsed() < limit,
                        "3,000 requests took over {limit:?}"
                    );
                    let r = c.request(&get(s, "/sample.txt"));
                    r.expect_status(200);
                    assert_eq!(&r.body, want);
                    if r.closes() {
                        c = s.connect();
                    }
                }
            });
        }
    });
    let took = start.elapsed();
    let t = Instant::now();
    s.get("/sample.txt").expect_status(200);
    let after = t.elapsed();
    assert!(
        after < Duration::from_secs(1),
        "a request after the storm took {after:?}"
    );
    let wchan = thread_wchan(s.pid(), "log-writer");
    if let Some(w) = wchan.as_deref().filter(|w| !w.is_empty() && *w != "0") {
        assert!(
            w.contains("pipe"),
            "the log writer waits in {w:?}, not on the full pipe: was the sink stalled?"
        );
    }
    eprintln!(
        "{}: {REQUESTS} requests with an unread stderr in {took:.2?}, then one in \
         {after:.1?}; the log writer waits in {wchan:?}",
        runtime(bin)
    );
}

// ----- 8. The memory budget of upload bodies -----

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

// ----- 9. Bounded numeric flags -----

/// Every numeric flag out of its range is a usage error (exit 2, the flag named on
/// stderr, nothing on stdout) — for runtime-std `--queue 99999999999` and `65537`, for
/// runtime-smol `--max-connections 0` and `1000001`, for both `--body-timeout 0`,
/// `--max-body-memory 10` and the other bounds; the other runtime's flag is refused
/// even in range. The bounds themselves start a server that serves.
pub fn out_of_range_numbers_are_usage_errors(bin: &str) {
    let fx = Fixture::new();
    let root = fx.root.to_str().expect("utf-8 root").to_string();
    let mut bad: Vec<[&str; 2]> = vec![
        ["--body-timeout", "0"],
        ["--body-timeout", "86401"],
        ["--idle-timeout", "0"],
        ["--idle-timeout", "18446744073709551616"],
        ["--head-timeout", "0"],
        ["--max-body-memory", "10"],
        ["--max-body-memory", "1023"],
        ["--max-body-memory", "1099511627777"],
        ["--max-body", "1073741825"],
        ["--max-requests", "0"],
        ["--max-requests", "1000001"],
        ["--threads", "0"],
        ["--threads", "4097"],
    ];
    let (own, foreign): (&[[&str; 2]], [&str; 2]) = if is_smol(bin) {
        (
            &[["--max-connections", "0"], ["--max-connections", "1000001"]],
            ["--queue", "4"],
        )
    } else {
        (
            &[
                ["--queue", "99999999999"],
                ["--queue", "65537"],
                ["--queue", "-1"],
            ],
            ["--max-connections", "4"],
        )
    };
    bad.extend_from_slice(own);
    bad.push(foreign);
    for [flag, value] in &bad {
        let (status, out, err) = run_to_exit(
            bin,
            &["--port", "0", "--root", &root, flag, value],
            fx.base.path(),
        );
        assert_eq!(
            status.code(),
            Some(2),
            "{flag} {value}: {status}, stderr {err:?}"
        );
        assert!(out.is_empty(), "{flag} {value}: stdout {out:?}");
        // clap names the flag, except for a value that looks like a flag itself (`-1`).
        assert!(
            err.starts_with("error:") && (err.contains(flag) || err.contains(value)),
            "{flag} {value}: {err:?}"
        );
    }
    let edges: &[&str] = if is_smol(bin) {
        &["--max-connections", "1000000"]
    } else {
        &["--queue", "65536"]
    };
    let s = Server::builder(bin)
        .fixture(fx)
        .args(edges)
        .args(&[
            "--max-body-memory",
            "1024",
            "--body-timeout",
            "86400",
            "--idle-timeout",
            "86400",
            "--max-requests",
            "1000000",
        ])
        .start();
    s.get("/sample.txt").expect_status(200);
    eprintln!(
        "{}: {} out-of-range values refused with exit 2; the bounds accepted",
        runtime(bin),
        bad.len()
    );
}
