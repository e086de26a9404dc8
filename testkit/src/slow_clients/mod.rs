//! A few clients that hold a connection for long (SPEC "Connections": the head deadline;
//! SPEC "Capacity": what holds a worker; SPEC "Logs": a sink that stops reading): a head
//! dripped byte by byte (one, and hundreds at once: slowloris), readers at 100 bytes a
//! second, keep-alive clients that sit idle, a stalled head and an unread download beside
//! a parked client, a big download beside small GETs, and a log pipe nobody reads. Each
//! slow one is cut off at its deadline or costs nothing, and the other clients are served
//! meanwhile.
//!
//! The timing limits are generous (a 2-core machine shared with other work) yet far below
//! what the behaviour would take if it regressed (a worker held for the idle timeout, a
//! download that hogs its executor thread, a log write that blocks); where the runtimes
//! differ by design, the test says what each is expected to do. The figures are printed
//! (`--nocapture`). The runtime-smol-only slowloris test with 1,000 drippers is
//! `runtime-smol/tests/smol_only.rs::a_thousand_slowloris_connections_do_not_stall_a_normal_client`.
//!
//! Where a test goes: here if a client's slowness (or one heavy client) is the point and
//! the question is whether the others are served. Many clients at once or a limit
//! reached are [`capacity`](crate::capacity); a connection's own rules (idle timeout,
//! keep-alive) are [`connections`](crate::connections).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    expect_error_page, get, is_smol, lines_with, percentile, poll_read, runtime, served_within,
    tail,
};
use crate::{Client, Fixture, Response, Server};

mod no_worker_waits;
pub use no_worker_waits::*;

/// The cases of this group, for [`tests!`](crate::tests): `spec` run over HTTP and over
/// HTTPS, `more` over HTTP only (see [`crate::cases`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __slow_clients_list {
    ($($how:tt)*) => {
        $crate::cases! { [$($how)*] slow_clients;
            spec: [
                slow_drip_head_gets_408_while_others_are_served,
            ];
            more: [
                slowloris_drippers_get_408_and_service_recovers,
                slow_readers_are_dropped_and_a_fresh_client_is_served,
                idle_keep_alive_clients_do_not_hold_the_workers,
                a_stalled_request_does_not_hold_up_parked_connections,
                a_big_download_does_not_starve_small_gets,
                a_stalled_log_sink_does_not_stop_serving,
                heads_sent_at_one_byte_a_second_hold_no_worker,
                bodies_sent_at_one_byte_a_second_hold_no_worker,
                downloads_read_at_a_hundred_bytes_a_second_hold_no_worker,
            ];
        }
    };
}
pub use crate::__slow_clients_list as list;

// ----- Heads dripped byte by byte -----

pub fn slow_drip_head_gets_408_while_others_are_served(bin: &str) {
    let s = Server::start(bin, &["--head-timeout", "1", "--threads", "4"]);
    let mut drip = s.connect();
    // A writing end for the other thread (over TLS, each byte goes in its own record).
    let mut writer = drip.writer();
    let head = format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Slow: ", s.host());
    let start = Instant::now();
    let dripper = thread::spawn(move || {
        for b in head.bytes().chain(std::iter::repeat(b'a')).take(200) {
            if writer.write_all(&[b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(30));
        }
    });
    // Meanwhile other clients are served promptly.
    for _ in 0..5 {
        let t = Instant::now();
        s.get("/sample.txt").expect_status(200);
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "slow: {:?}",
            t.elapsed()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let r = drip.read_response();
    let took = start.elapsed();
    expect_error_page(&r, 408);
    assert!(r.closes());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "408 after {took:?}"
    );
    assert!(drip.closed_within(Duration::from_secs(3)));
    let _ = dripper.join();
}

/// Many connections drip a request head one byte every 100 ms. Each gets 408 and a close
/// once the head deadline (`--head-timeout 1`) passes — on runtime-std a dripper holds a
/// worker until then, so 24 drippers on 8 workers are refused in three rounds; on
/// runtime-smol 300 drippers cost no thread and an ordinary client is served promptly
/// throughout. Afterwards the server serves at once.
pub fn slowloris_drippers_get_408_and_service_recovers(bin: &str) {
    let smol = is_smol(bin);
    let (drippers, args): (usize, &[&str]) = if smol {
        (300, &["--head-timeout", "1", "--threads", "2"])
    } else {
        (
            24,
            &["--head-timeout", "1", "--threads", "8", "--queue", "64"],
        )
    };
    let s = Server::start(bin, args);
    let head: Vec<u8> = format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Slow: ", s.host()).into_bytes();
    let start = Instant::now();
    let mut conns: Vec<(TcpStream, Vec<u8>, bool)> = (0..drippers)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect dripper");
            c.set_nonblocking(true).expect("nonblocking");
            (c, Vec::new(), false)
        })
        .collect();
    // An ordinary client meanwhile (runtime-smol: must stay fast).
    let stop = Arc::new(AtomicBool::new(false));
    let port = s.port;
    let host = s.host();
    let normal = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut served = 0;
            while !stop.load(Ordering::Relaxed) && served < 20 {
                let t = Instant::now();
                let mut c = Client::connect(port);
                let r = c.request(&format!(
                    "GET /sample.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                ));
                assert_eq!(r.status, 200);
                worst = worst.max(t.elapsed());
                served += 1;
                thread::sleep(Duration::from_millis(150));
            }
            (served, worst)
        })
    };
    let limit = if smol {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(12)
    };
    let mut step = 0usize;
    while conns.iter().any(|(_, _, done)| !done) && start.elapsed() < limit {
        for (c, got, done) in conns.iter_mut().filter(|(_, _, d)| !*d) {
            match poll_read(c, got) {
                Some(true) => *done = true,
                Some(false) => {} // the answer is arriving: stop dripping
                None if got.is_empty() => {
                    let byte = head.get(step).copied().unwrap_or(b'a');
                    if let Err(e) = c.write(&[byte]) {
                        if e.kind() != ErrorKind::WouldBlock {
                            *done = true;
                        }
                    }
                }
                None => {}
            }
        }
        step += 1;
        thread::sleep(Duration::from_millis(100));
    }
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (served, worst) = normal.join().expect("normal client");
    let refused = conns
        .iter()
        .filter(|(_, got, done)| *done && Response::status_in(got) == Some(408))
        .count();
    let closed = conns.iter().filter(|(_, _, done)| *done).count();
    assert_eq!(
        (refused, closed),
        (drippers, drippers),
        "after {took:?}: {refused} of {drippers} got 408, {closed} closed; logs:\n{}",
        tail(&s.logs())
    );
    assert!(
        took >= Duration::from_millis(900),
        "408 too early: {took:?}"
    );
    if smol {
        assert!(
            served >= 5 && worst < Duration::from_secs(1),
            "runtime-smol with {drippers} drippers: {served} served, worst {worst:?}"
        );
    } else {
        assert!(served >= 1, "runtime-std served nobody during the drip");
    }
    let warned = lines_with(&s.logs(), &["WARN", "refused (408)"]).len();
    assert_eq!(warned, drippers, "one warn line per 408");
    let after = served_within(&s, "/", Duration::from_secs(2));
    assert!(
        after < Duration::from_millis(500),
        "recovery took {after:?}"
    );
    eprintln!(
        "{drippers} drippers: all 408 after {took:?}; normal client {served} served, worst {worst:?}"
    );
}

// ----- Slow readers -----

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
pub(crate) fn connect_small_rcvbuf(port: u16, rcvbuf: usize) -> TcpStream {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    sockopt::set_socket_recv_buffer_size(&fd, rcvbuf).expect("SO_RCVBUF");
    rustix::net::connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).expect("connect");
    TcpStream::from(fd)
}

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

// ----- Idle and stalled connections -----

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
            s.wait_log(&["parked (it holds no worker)"], Duration::from_secs(2))
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

// ----- A big download beside small requests -----

/// While one client downloads a 512 MiB file (sparse: read from the page cache) as fast
/// as it can, again and again on one keep-alive connection, another client's 200 small
/// GETs are answered about as fast as without it — on runtime-smol with `--threads 1`
/// (one executor thread for both: the download must yield), on runtime-std with
/// `--threads 2` (a worker each). The download must make progress meanwhile.
///
/// The bounds hold on a loaded 2-core machine: p50 within 25 ms and p99 within 150 ms of
/// the same client's figures measured first without the download (one 512 MiB download
/// that did not yield would hold its thread 100–300 ms, most GETs with it). The strict
/// figure (p99 < 20 ms on a quiet machine) is the benchmark's: BENCHMARKS.md.
pub fn a_big_download_does_not_starve_small_gets(bin: &str) {
    const BIG: u64 = 512 << 20;
    const GETS: usize = 200;
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
    let mut c = s.connect();
    let want = std::fs::read(s.fx.root.join("sample.txt")).expect("sample");
    let request = get(&s, "/sample.txt");
    let small_gets = |c: &mut Client| -> Vec<Duration> {
        // Spread over about a second, so that they meet every phase of the downloads
        // (the head and open of the next one too).
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
        times.sort_unstable();
        times
    };
    let alone = small_gets(&mut c);
    let (base50, base99) = (percentile(&alone, 50), percentile(&alone, 99));
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
    let d0 = downloaded.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let times = small_gets(&mut c);
    let span = t0.elapsed();
    let moved = downloaded.load(Ordering::Relaxed) - d0;
    stop.store(true, Ordering::Relaxed);
    let whole = downloader
        .join()
        .expect("downloader")
        .unwrap_or_else(|e| panic!("the download failed: {e}"));
    let (p50, p99, max) = (
        percentile(&times, 50),
        percentile(&times, 99),
        times[GETS - 1],
    );
    eprintln!(
        "{} --threads {threads}: {GETS} GETs in {span:.2?} beside a 512 MiB download \
         ({} MiB moved meanwhile, {:.0} MiB/s, {whole} whole downloads): p50 {p50:.2?}, \
         p99 {p99:.2?}, max {max:.2?} (alone: p50 {base50:.2?}, p99 {base99:.2?})",
        runtime(bin),
        moved >> 20,
        moved as f64 / (1 << 20) as f64 / span.as_secs_f64()
    );
    assert!(
        moved >= 1 << 20,
        "the download stalled during the measurement ({moved} bytes)"
    );
    assert!(
        p50 < base50 + Duration::from_millis(25) && p99 < base99 + Duration::from_millis(150),
        "beside a big download p50 {p50:?}, p99 {p99:?}, max {max:?}; alone p50 {base50:?}, \
         p99 {base99:?}"
    );
}

// ----- A stalled log sink -----

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
