//! The load of the cluster and balancer tests: one request per connection, to any
//! loopback address, bounded in time (connect, send, answer), never panicking on a
//! refused, reset or silent connection: each outcome is recorded and judged afterwards.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::Response;

/// How long one request of the load may take, all included. Longer than the store's
/// own limit (10 s, then `503`) plus a retry through the balancer: a request that takes
/// longer is a hang.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// What one request came to.
#[derive(Debug)]
pub struct Outcome {
    /// The answer, or why there was none (refused, reset, cut, timed out).
    pub answer: Result<Response, String>,
    pub took: Duration,
}

impl Outcome {
    pub fn status(&self) -> Option<u16> {
        self.answer.as_ref().ok().map(|r| r.status)
    }

    /// A `503` with `Retry-After`: the one refusal a store outage may cause.
    pub fn is_retry_later(&self) -> bool {
        self.answer
            .as_ref()
            .is_ok_and(|r| r.status == 503 && r.header("retry-after").is_some())
    }

    /// The `Location` of a `201`.
    pub fn created(&self) -> Option<String> {
        let r = self.answer.as_ref().ok()?;
        (r.status == 201).then(|| r.header("location").expect("Location on a 201").to_string())
    }
}

/// Sends `head` and `body` on a new connection to `addr` (with `Connection: close` in
/// the head) and reads the answer, all within `limit`.
pub fn exchange(addr: SocketAddr, head: &str, body: &[u8], limit: Duration) -> Outcome {
    let start = Instant::now();
    let answer = try_exchange(addr, head, body, start + limit);
    Outcome {
        answer,
        took: start.elapsed(),
    }
}

fn try_exchange(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
    until: Instant,
) -> Result<Response, String> {
    let left = || {
        let d = until.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err("timed out".to_string())
        } else {
            Ok(d)
        }
    };
    let mut s = TcpStream::connect_timeout(&addr, left()?).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| format!("send: {e}"))?;
    let mut reader = Deadline { s, until };
    let mut buf = Vec::new();
    Response::read_from(&mut reader, &mut buf, head.starts_with("HEAD "))
}

/// A socket whose every read waits at most until `until`.
struct Deadline {
    s: TcpStream,
    until: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the answer did not come in time",
            ));
        }
        self.s.set_read_timeout(Some(left))?;
        self.s.read(buf)
    }
}

/// `GET path` to `addr` with `Host: host`.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> Outcome {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    exchange(addr, &head, b"", REQUEST_LIMIT)
}

/// `POST /upload` of a JSON body to `addr` with `Host: host`.
pub fn upload(addr: SocketAddr, host: &str, body: &[u8]) -> Outcome {
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    exchange(addr, &head, body, REQUEST_LIMIT)
}

/// A JSON document of exactly `len` bytes (at least 40) that names `tag`: every upload
/// of a test is different, so that each can be found again.
pub fn tagged_json(tag: &str, len: usize) -> Vec<u8> {
    let head = format!("{{\"tag\":\"{tag}\",\"pad\":\"");
    let pad = len
        .checked_sub(head.len() + 2)
        .expect("a body long enough for its tag");
    let mut body = head.into_bytes();
    // Not one repeated byte: a store that lost or swapped blocks would show it.
    body.extend((0..pad).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]));
    body.extend_from_slice(b"\"}");
    debug_assert_eq!(body.len(), len);
    body
}

/// `127.0.0.1:port` as an address.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Counts of the outcomes by status (`0`: no answer), for failure messages.
pub fn tally<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> String {
    let mut by: std::collections::BTreeMap<u16, usize> = Default::default();
    let mut errors: Vec<&str> = Vec::new();
    for o in outcomes {
        *by.entry(o.status().unwrap_or(0)).or_default() += 1;
        if let Err(e) = &o.answer {
            if errors.len() < 5 {
                errors.push(e);
            }
        }
    }
    format!("{by:?} (status: count; 0 = no answer, e.g. {errors:?})")
}
