//! The `--metrics ADDR` listener: plain HTTP/1.1 on its own thread, blocking std I/O
//! (it is not the serving path), one connection at a time, each closed after its
//! answer.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /metrics` | 200, `text/plain; version=0.0.4`, the Prometheus text format |
//! | `GET /healthz` | 200 `ok`: the process is up |
//! | `GET /readyz` | 200 `ready`, or 503 `draining` once shutdown began (SIGTERM) |
//! | other paths | 404; other methods 405 (`HEAD` is the `GET` without its body) |
//!
//! A scraper cannot hold it: the whole head must come within [`HEAD_DEADLINE`] and fit
//! in [`MAX_HEAD`] bytes (else 408 or 431, or a close), the answer must be taken within
//! [`WRITE_TIMEOUT`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::shutdown::Shutdown;

/// The most bytes of a request head read.
pub const MAX_HEAD: usize = 8 * 1024;
/// The time a connection has to send its whole head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// The time a connection has to take the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// After a refusal, how long what the client still sends is read and dropped.
const LINGER: Duration = Duration::from_millis(200);

/// `--metrics`: a bare port means 127.0.0.1 (metrics are not for the world unless asked).
pub fn parse_addr(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = s.parse().map_err(|_| format!("{s} is not a port"))?;
        return Ok(format!("127.0.0.1:{port}"));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(s.into()),
        _ => Err("expected HOST:PORT, [IPV6]:PORT or PORT".into()),
    }
}

/// Binds `addr` and serves it on a thread of its own; the address bound, or one line
/// saying why not.
pub(crate) fn start(addr: &str, shutdown: Shutdown) -> Result<SocketAddr, String> {
    let bare = addr.replace(['[', ']'], "");
    let (host, port) = bare.rsplit_once(':').unwrap_or((&bare, "0"));
    let port: u16 = port
        .parse()
        .map_err(|_| format!("--metrics {addr}: bad port"))?;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("--metrics {addr}: cannot resolve: {e}"))?
        .collect();
    let listener = TcpListener::bind(&addrs[..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => format!("--metrics {addr}: the port is already in use"),
        _ => format!("--metrics {addr}: cannot listen: {e}"),
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => answer(s, &shutdown),
                    Err(e) => {
                        warn!("metrics listener: accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .map_err(|e| format!("--metrics: cannot start its thread: {e}"))?;
    info!("metrics on http://{bound}/metrics (and /healthz, /readyz)");
    Ok(bound)
}

/// Reads one request head (within the deadline and the size), writes the answer, closes.
fn answer(mut s: TcpStream, shutdown: &Shutdown) {
    let peer = s.peer_addr().map_or_else(|_| "?".into(), |a| a.to_string());
    let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
    let until = Instant::now() + HEAD_DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let status = loop {
        match find(&head, b"\r\n\r\n") {
            Some(end) if end + 4 <= MAX_HEAD => {
                head.truncate(end);
                break None;
            }
            Some(_) => break Some(431),
            None if head.len() >= MAX_HEAD => break Some(431),
            None => {}
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            break Some(408);
        }
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break Some(408)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    };
    let (status, body, head_only, content_type) = match status {
        Some(code) => (code, String::new(), false, TEXT),
        None => route(&head, shutdown),
    };
    debug!("{peer} metrics listener: {status}");
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    let _ = s.write_all(&out);
    let _ = s.flush();
    if matches!(status, 400 | 408 | 431) {
        // The client may still be sending: closing with its bytes unread would reset the
        // connection and lose the answer. Half-close, and read a little first.
        let _ = s.shutdown(std::net::Shutdown::Write);
        let _ = s.set_read_timeout(Some(LINGER));
        let until = Instant::now() + LINGER;
        while Instant::now() < until && matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
/// The Prometheus text format's media type.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The answer to a complete head: status, body, whether it is a `HEAD`, content type.
fn route(head: &[u8], shutdown: &Shutdown) -> (u16, String, bool, &'static str) {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (400, "bad request line\n".into(), false, TEXT);
    };
    if !version.starts_with("HTTP/1.") {
        return (400, "bad request line\n".into(), false, TEXT);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return (405, "GET or HEAD\n".into(), false, TEXT);
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let (status, body, content_type) = match path {
        "/metrics" => (
            200,
            super::metrics::render(crate::logging::dropped_total(), super::access::dropped()),
            EXPOSITION,
        ),
        "/healthz" => (200, "ok\n".into(), TEXT),
        "/readyz" if shutdown.requested() => (503, "draining\n".into(), TEXT),
        "/readyz" => (200, "ready\n".into(), TEXT),
        _ => (404, "not found: /metrics, /healthz, /readyz\n".into(), TEXT),
    };
    (status, body, head_only, content_type)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("9090").as_deref(), Ok("127.0.0.1:9090"));
        assert_eq!(parse_addr("0.0.0.0:9090").as_deref(), Ok("0.0.0.0:9090"));
        assert_eq!(parse_addr("[::1]:9090").as_deref(), Ok("[::1]:9090"));
        assert_eq!(parse_addr("localhost:0").as_deref(), Ok("localhost:0"));
        for bad in ["", ":9090", "host", "host:", "host:99999", "70000"] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
    }

    fn ask(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(request).expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn health_readiness_and_refusals() {
        let shutdown = Shutdown::new().expect("shutdown");
        let addr = start("127.0.0.1:0", shutdown.clone()).expect("bound");
        let ok = ask(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("\r\n\r\nok\n"),
            "{ok}"
        );
        assert!(ask(addr, b"GET /readyz HTTP/1.1\r\n\r\n").ends_with("ready\n"));
        let head = ask(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            head.contains("version=0.0.4") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert!(ask(addr, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let post = ask(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"));
        assert!(ask(addr, b"GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400"));
        let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
        assert!(ask(addr, big.as_bytes()).starts_with("HTTP/1.1 431"));
        shutdown.trigger();
        let draining = ask(addr, b"GET /readyz HTTP/1.1\r\n\r\n");
        assert!(draining.starts_with("HTTP/1.1 503") && draining.ends_with("draining\n"));
    }

    #[test]
    fn a_silent_client_is_cut_off_at_the_deadline() {
        let addr = start("127.0.0.1:0", Shutdown::new().expect("shutdown")).expect("bound");
        let t0 = Instant::now();
        let mut silent = TcpStream::connect(addr).expect("connect");
        silent.write_all(b"GET /metr").expect("write");
        // Meanwhile another client waits its turn, and is answered once the deadline cut
        // the first one off.
        let answer = ask(addr, b"GET /healthz HTTP/1.1\r\n\r\n");
        assert!(answer.ends_with("ok\n"));
        let waited = t0.elapsed();
        assert!(
            waited >= HEAD_DEADLINE - Duration::from_millis(100),
            "{waited:?}"
        );
        assert!(waited < HEAD_DEADLINE * 3, "{waited:?}");
        let mut out = String::new();
        let _ = silent.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    }
}
