//! The two blocking accept loops (`host/src/accept.rs`, runtime-std's): each serves and stops on shutdown.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(unix)]
use host::accept::accept_polling;
use host::accept::{accept_blocking, knock_address};
use host::net::{Listener, Peer, Stream};
use host::shutdown::Shutdown;

#[test]
fn knocking_reaches_a_listener_on_all_addresses() {
    let v4: SocketAddr = "0.0.0.0:8080".parse().expect("v4");
    assert_eq!(knock_address(v4), "127.0.0.1:8080".parse().expect("lo"));
    let v6: SocketAddr = "[::]:81".parse().expect("v6");
    assert_eq!(knock_address(v6), "[::1]:81".parse().expect("lo6"));
    let one: SocketAddr = "192.0.2.7:1".parse().expect("one");
    assert_eq!(knock_address(one), one);
}

type Serve<'a> = &'a (dyn Fn(usize, Stream, Peer) + Sync);
type Loop = fn(&[Listener], &Shutdown, Serve<'_>) -> io::Result<()>;

/// The two accept loops (the portable one only, off Unix).
fn loops() -> Vec<(&'static str, Loop)> {
    let blocking: Loop = |l, s, f| accept_blocking(l, s, f);
    #[cfg(unix)]
    let polling: Loop = |l, s, f| accept_polling(l, s, f);
    #[cfg(unix)]
    return vec![("blocking", blocking), ("polling", polling)];
    #[cfg(not(unix))]
    vec![("blocking", blocking)]
}

/// Writes "hi" and the listener's index to each connection, and counts them per listener.
fn greet(served: &[AtomicUsize]) -> impl Fn(usize, Stream, Peer) + Sync + '_ {
    move |i, stream, _| {
        let _ = stream.set_nonblocking(false);
        let _ = (&stream).write_all(format!("hi {i}").as_bytes());
        served[i].fetch_add(1, Ordering::SeqCst);
    }
}

fn read_all(mut c: impl Read) -> String {
    let mut got = String::new();
    c.read_to_string(&mut got).expect("read");
    got
}

/// Both accept loops serve connections on every listener and return soon after
/// shutdown, with no connection coming in to wake them.
#[test]
fn both_accept_loops_serve_every_listener_and_stop() {
    for (name, accept) in loops() {
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut listeners =
            vec![
                Listener::tcp(TcpListener::bind("0.0.0.0:0").expect("bind"), "0.0.0.0")
                    .expect("tcp"),
            ];
        #[cfg(unix)]
        let tmp = tempfile::tempdir().expect("tempdir");
        #[cfg(unix)]
        let dir = tmp.path().to_path_buf();
        #[cfg(unix)]
        listeners.push(host::listen::bind_unix(&dir.join("s.sock")).expect("unix"));
        let addr = knock_address(listeners[0].tcp_addr().expect("tcp"));
        let shutdown = Shutdown::new().expect("shutdown");
        let served: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let worker = {
            let shutdown = shutdown.clone();
            let served = Arc::clone(&served);
            std::thread::spawn(move || accept(&listeners, &shutdown, &greet(&served[..])))
        };
        for _ in 0..3 {
            assert_eq!(read_all(TcpStream::connect(addr).expect("connect")), "hi 0");
            #[cfg(unix)]
            assert_eq!(
                read_all(
                    std::os::unix::net::UnixStream::connect(dir.join("s.sock")).expect("unix")
                ),
                "hi 1"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        shutdown.trigger();
        worker.join().expect("accept thread").expect("accept loop");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{name}: {:?}",
            start.elapsed()
        );
        // The portable loop also serves its own knock (one per listener, maybe a second
        // if the first was slow): a connection accepted after the signal is served like
        // the rest of the backlog, not dropped.
        let knocks = if name == "blocking" { 0..=2 } else { 0..=0 };
        for (i, n) in served
            .iter()
            .enumerate()
            .take(if cfg!(unix) { 2 } else { 1 })
        {
            let extra = n.load(Ordering::SeqCst).checked_sub(3);
            assert!(
                extra.is_some_and(|k| knocks.contains(&k)),
                "{name}: listener {i} served {}",
                n.load(Ordering::SeqCst)
            );
        }
    }
}

/// At shutdown, the connections waiting in the backlog are accepted and served (not
/// reset), and the loop returns: the caller then closes the listener.
#[test]
fn at_shutdown_the_backlog_is_served_not_reset() {
    for (name, accept) in loops() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let listeners = [Listener::tcp(listener, "127.0.0.1").expect("tcp")];
        // Three connections made before the loop runs: they wait in the backlog.
        let waiting: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        let shutdown = Shutdown::new().expect("shutdown");
        shutdown.trigger();
        let served = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let start = Instant::now();
        accept(&listeners, &shutdown, &greet(&served)).expect("accept loop");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{name}: {:?}",
            start.elapsed()
        );
        for c in waiting {
            c.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            assert_eq!(read_all(c), "hi 0", "{name}: a connection of the backlog");
        }
        // The portable loop may also have taken its own knock.
        assert!(served[0].load(Ordering::SeqCst) >= 3, "{name}");
        drop(listeners);
        let refused = TcpStream::connect(addr).expect_err("closed");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused, "{name}");
    }
}
