//! SPEC "Capacity": a connection that waits on its client — in the middle of a head,
//! in the middle of a body, or for the client to read what was sent — holds no worker.
//! Each test starts `--threads 2` (runtime-std's pool; runtime-smol's executor threads)
//! and more slow clients than that, each one slow the way its name says for a few
//! seconds (then it stops by itself); meanwhile a fresh client is answered within 1 s,
//! again and again. Before runtime-std parked every wait, each of these kept a fresh GET
//! waiting for more than 10 s (a body dripped at 1 byte/s: 59 s).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::connect_small_rcvbuf;
use crate::util::{runtime, tail};
use crate::{Fixture, Server};

/// One slow client: it runs until the flag is set (or the server drops it).
type Slow = Box<dyn FnOnce(&AtomicBool) + Send>;

/// How long the slow clients keep at it.
const SLOW_FOR: Duration = Duration::from_secs(5);
/// The most a fresh client may wait for its answer meanwhile.
const FRESH_LIMIT: Duration = Duration::from_secs(1);

/// Runs `slow` (one closure per slow client, each given a stop flag) in threads, then,
/// once they are all under way, fresh GETs on new connections every 200 ms until they
/// stop: each must be answered within [`FRESH_LIMIT`]. Returns the slowest fresh answer.
fn fresh_clients_are_answered(s: &Server, slow: Vec<Slow>) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = slow
        .into_iter()
        .map(|f| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || f(&stop))
        })
        .collect();
    // Every slow client has its connection and has started being slow.
    thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    while started.elapsed() < SLOW_FOR - Duration::from_millis(1500) {
        let t = Instant::now();
        let r = s.raw(&format!(
            "GET /sample.txt HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.host()
        ));
        let took = t.elapsed();
        r.expect_status(200);
        assert!(
            took <= FRESH_LIMIT,
            "a fresh GET beside the slow clients was answered after {took:?}; logs:\n{}",
            tail(&s.logs())
        );
        slowest = slowest.max(took);
        answered += 1;
        thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().expect("slow client");
    }
    assert!(answered >= 5, "only {answered} fresh GETs were made");
    slowest
}

/// Sends `bytes` one a second until `stop` (or the server closes).
fn drip(mut c: TcpStream, bytes: Vec<u8>, stop: &AtomicBool) {
    for b in bytes {
        if stop.load(Ordering::SeqCst) || c.write_all(&[b]).is_err() {
            return;
        }
        thread::sleep(Duration::from_secs(1));
    }
}

/// Six clients send a request head at 1 byte/s (slowloris, well inside the 10 s head
/// deadline) beside `--threads 2`.
pub fn heads_sent_at_one_byte_a_second_hold_no_worker(bin: &str) {
    let s = Server::start(bin, &["--threads", "2"]);
    let head = format!("GET /sample.txt HTTP/1.1\r\nHost: {}\r\nX-Slow: ", s.host());
    let slow = (0..6)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
            let head = head.clone().into_bytes();
            Box::new(move |stop: &AtomicBool| drip(c, head, stop)) as Slow
        })
        .collect();
    let slowest = fresh_clients_are_answered(&s, slow);
    eprintln!(
        "{}: 6 slowloris heads, slowest fresh GET {slowest:?}",
        runtime(bin)
    );
}

/// Three clients send a whole upload head, then its body at 1 byte/s, beside
/// `--threads 2`.
pub fn bodies_sent_at_one_byte_a_second_hold_no_worker(bin: &str) {
    let s = Server::start(bin, &["--threads", "2"]);
    let slow = (0..3)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
            let head = format!(
                "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: 1000\r\n\r\n",
                s.host()
            );
            c.write_all(head.as_bytes()).expect("head");
            let body = b"[1,2,3,4,5,6,7,8,9]".to_vec();
            Box::new(move |stop: &AtomicBool| drip(c, body, stop)) as Slow
        })
        .collect();
    let slowest = fresh_clients_are_answered(&s, slow);
    eprintln!(
        "{}: 3 bodies dripped, slowest fresh GET {slowest:?}",
        runtime(bin)
    );
}

/// Four clients download a 16 MiB file through a 4 KiB receive buffer, reading 100
/// bytes a second, beside `--threads 2`.
pub fn downloads_read_at_a_hundred_bytes_a_second_hold_no_worker(bin: &str) {
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    let fx = Fixture::new().with_file("big.html", &big);
    let s = Server::start_in(bin, fx, &["--threads", "2"]);
    let slow = (0..4)
        .map(|_| {
            let mut c = connect_small_rcvbuf(s.port, 4096);
            let request = format!("GET /big.html HTTP/1.1\r\nHost: {}\r\n\r\n", s.host());
            c.write_all(request.as_bytes()).expect("request");
            Box::new(move |stop: &AtomicBool| {
                let mut buf = [0u8; 100];
                while !stop.load(Ordering::SeqCst) {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => thread::sleep(Duration::from_secs(1)),
                    }
                }
            }) as Slow
        })
        .collect();
    let slowest = fresh_clients_are_answered(&s, slow);
    eprintln!(
        "{}: 4 readers at 100 B/s, slowest fresh GET {slowest:?}",
        runtime(bin)
    );
}
