//! The drain of a session (`Session::drain`): a connection that waits between requests
//! gets the drain's grace for a request already on its way, which is then answered with
//! `Connection: close`; without one it closes when the grace is over; a request in
//! progress is answered with `Connection: close` at once.

use std::sync::Arc;

use protocol::Now;

use super::{Need, Schedule, Service, Session};
use crate::shutdown::DRAIN_GRACE;

const GRACE: u64 = DRAIN_GRACE.as_millis() as u64;

fn service(dir: &std::path::Path) -> Arc<Service> {
    let root = crate::files::Root::new(dir).expect("root");
    Arc::new(Service {
        config: Arc::new(protocol::Config::new("127.0.0.1", 8080, &[])),
        web: crate::webroot::WebRoot::new(root),
        clock: crate::clock::Clock::new(),
        #[cfg(feature = "tls")]
        tls: None,
        schedule: Schedule::Threads,
        credentials: Arc::default(),
        ops: crate::ops::Ops::default(),
    })
}

fn at(ms: u64) -> Now {
    Now::new(ms, 1_700_000_000)
}

/// What the session needs, with the bytes of a write taken out.
#[derive(Debug, PartialEq)]
enum Seen {
    Write(String),
    Read(u64),
    Close,
    Other,
}

fn next(s: &mut Session) -> Seen {
    match s.need() {
        Need::Write(bytes) => Seen::Write(String::from_utf8_lossy(bytes).into_owned()),
        Need::Read { until } => Seen::Read(until),
        Need::Close => Seen::Close,
        _ => Seen::Other,
    }
}

/// Writes out whatever the session has to write; what was written.
fn written(s: &mut Session) -> String {
    let mut all = String::new();
    while let Seen::Write(bytes) = next(s) {
        all.push_str(&bytes);
        s.sent(Ok(bytes.len()));
    }
    all
}

const OPTIONS: &[u8] = b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// A session that answered one request and waits for the next, at 1,000 ms.
fn waiting(service: &Arc<Service>) -> Session {
    let mut s = Session::new(
        service,
        at(0),
        std::net::SocketAddr::from(([127, 0, 0, 1], 50000)),
    )
    .expect("session");
    assert!(matches!(next(&mut s), Seen::Read(_)));
    s.received(at(1000), OPTIONS, false);
    let answer = written(&mut s);
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert!(!answer.contains("Connection: close"), "{answer}");
    assert!(matches!(next(&mut s), Seen::Read(_)));
    assert!(s.is_idle());
    s
}

#[test]
fn an_idle_connection_waits_the_grace_then_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path());
    let mut s = waiting(&service);
    s.drain(at(2000));
    // Not idle meanwhile: a runtime must not close it itself.
    assert!(!s.is_idle());
    assert_eq!(next(&mut s), Seen::Read(2000 + GRACE));
    // An early wake changes nothing; empty lines are idle time.
    s.wake(at(2000 + GRACE - 1));
    s.received(at(2000 + GRACE - 1), b"\r\n", false);
    assert_eq!(next(&mut s), Seen::Read(2000 + GRACE));
    s.wake(at(2000 + GRACE));
    assert_eq!(next(&mut s), Seen::Close);
}

#[test]
fn a_request_within_the_grace_is_answered_with_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path());
    for split in [None, Some(1), Some(10)] {
        let mut s = waiting(&service);
        s.drain(at(2000));
        assert_eq!(next(&mut s), Seen::Read(2000 + GRACE));
        match split {
            None => s.received(at(2100), OPTIONS, false),
            Some(n) => {
                s.received(at(2100), &OPTIONS[..n], false);
                assert!(matches!(next(&mut s), Seen::Read(_)), "{split:?}");
                s.received(at(2101), &OPTIONS[n..], false);
            }
        }
        let answer = written(&mut s);
        assert!(answer.starts_with("HTTP/1.1 204"), "{split:?}: {answer}");
        assert!(answer.contains("Connection: close"), "{split:?}: {answer}");
        assert_eq!(next(&mut s), Seen::Close, "{split:?}");
    }
}

#[test]
fn a_request_in_progress_is_answered_with_close_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = service(dir.path());
    let mut s = waiting(&service);
    s.received(at(1500), &OPTIONS[..20], false);
    assert!(!s.is_idle());
    s.drain(at(2000));
    s.received(at(2100), &OPTIONS[20..], false);
    let answer = written(&mut s);
    assert!(answer.contains("Connection: close"), "{answer}");
    assert_eq!(next(&mut s), Seen::Close);
}
