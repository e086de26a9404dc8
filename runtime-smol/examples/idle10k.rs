//! The client side of `bench/idle10k.sh`: opens IDLE keep-alive connections to a running
//! server on 127.0.0.1 (each asks for one file, then stays open and silent), then times
//! REQUESTS small-file requests from a second client while all of them are open, reads
//! the server's memory from /proc, and checks that every idle connection still works.
//!
//! `cargo run --release -p runtime-smol --example idle10k -- PORT SERVER_PID [IDLE] [REQUESTS] [PATH]`
//!
//! Bounded: every socket has a 10 s timeout, the counts are fixed, and it talks to
//! 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(port), Some(pid)) = (
        args.first().and_then(|a| a.parse::<u16>().ok()),
        args.get(1).and_then(|a| a.parse::<u32>().ok()),
    ) else {
        eprintln!("usage: idle10k PORT SERVER_PID [IDLE=10000] [REQUESTS=2000] [PATH=/sample.txt]");
        return ExitCode::from(2);
    };
    let idle: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let requests: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let path = args.get(4).map_or("/sample.txt", String::as_str);
    match run(port, pid, idle, requests, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idle10k: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(port: u16, pid: u32, idle: usize, requests: usize, path: &str) -> Result<(), String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    println!("server before: {}", memory(pid)?);

    let start = Instant::now();
    let mut open = Vec::with_capacity(idle);
    for i in 0..idle {
        let mut s = connect(port).map_err(|e| format!("idle connection {i}: {e}"))?;
        let (status, _) =
            exchange(&mut s, &request).map_err(|e| format!("idle connection {i}: {e}"))?;
        if status != 200 {
            return Err(format!("idle connection {i}: status {status}"));
        }
        open.push(s);
    }
    println!(
        "opened {idle} keep-alive connections (one request each) in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    println!("server with {idle} idle connections: {}", memory(pid)?);

    let mut times = Vec::with_capacity(requests);
    let mut client = connect(port).map_err(|e| format!("second client: {e}"))?;
    let begin = Instant::now();
    for i in 0..requests {
        let t = Instant::now();
        let (status, close) = match exchange(&mut client, &request) {
            Ok(answer) => answer,
            Err(e) => return Err(format!("second client, request {i}: {e}")),
        };
        if close {
            // The per-connection request limit: a new connection, timed with the request.
            client = connect(port).map_err(|e| format!("second client: {e}"))?;
        }
        times.push(t.elapsed());
        if status != 200 {
            return Err(format!("second client, request {i}: status {status}"));
        }
    }
    let wall = begin.elapsed();
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "second client: {requests} requests of {path} in {:.2} s; latency p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        wall.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        times[times.len() - 1]
    );
    println!("server after the second client: {}", memory(pid)?);

    let start = Instant::now();
    for (i, s) in open.iter_mut().enumerate() {
        let (status, _) =
            exchange(s, &request).map_err(|e| format!("idle connection {i} after the run: {e}"))?;
        if status != 200 {
            return Err(format!(
                "idle connection {i} after the run: status {status}"
            ));
        }
    }
    println!(
        "all {idle} idle connections still served, again one request each ({:.2} s)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Sends one request and reads its response; returns the status and whether the server
/// said it closes.
fn exchange(s: &mut TcpStream, request: &str) -> Result<(u16, bool), String> {
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before a whole head".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut len = 0usize;
    let mut close = false;
    for line in head.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad length in {head:?}"))?;
            } else if k.eq_ignore_ascii_case("connection") && v.trim() == "close" {
                close = true;
            }
        }
    }
    let mut have = buf.len() - head_end;
    while have < len {
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed inside a body".into());
        }
        have += n;
    }
    Ok((status, close))
}

/// VmRSS and VmHWM of a process.
fn memory(pid: u32) -> Result<String, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map_or("?".to_string(), |l| l[name.len()..].trim().to_string())
    };
    Ok(format!(
        "VmRSS {}, VmHWM {}, threads {}",
        field("VmRSS:"),
        field("VmHWM:"),
        field("Threads:")
    ))
}
