//! The socket calls of runtime-std that differ per platform, each in two versions,
//! Unix and portable (Windows; Linux with `PORTABLE_IO=1`):
//!
//! - the accept loop — Unix: a non-blocking listener, `poll` on it and on the shutdown
//!   descriptor; portable: a blocking `accept`, woken at shutdown by a connection to
//!   itself;
//! - reading what is already there — Unix: `recv(MSG_DONTWAIT)`; portable: non-blocking
//!   mode on, `read`, off;
//! - is something unread? — Unix: `recv(MSG_DONTWAIT | MSG_PEEK)`; portable:
//!   non-blocking mode on, `peek`, off;
//! - waking idle workers at shutdown — Unix: `shutdown(SHUT_RD)` ends their blocked
//!   `read`; portable: that too, and a worker's `read` never blocks longer than
//!   [`PORTABLE_READ_WAIT`] before it looks at the shutdown flag.
//!
//! On Windows std has no `poll`, a signal cannot make a descriptor readable, there is no
//! `MSG_DONTWAIT`, and whether `shutdown(SD_RECEIVE)` ends a `recv` blocked in another
//! thread is not documented: the portable versions use only `std`. [`host::portable_sockets`] chooses, so that Linux
//! runs the portable versions under `PORTABLE_IO=1` (the socket suites then test them).

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use host::shutdown::Shutdown;
use log::error;

/// Pause after a failed `accept` (EMFILE, ENFILE, ENOBUFS...: the connection waits in
/// the backlog) instead of spinning on it.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Portable sockets: the longest a worker blocks in `read` before it looks at the
/// shutdown flag (an early wake-up is a `Timeout` the core ignores).
pub(crate) const PORTABLE_READ_WAIT: Duration = Duration::from_millis(100);

/// The longest one blocking `read` of a worker may wait: unbounded on Unix (shutdown
/// ends it), [`PORTABLE_READ_WAIT`] with portable sockets.
pub(crate) fn read_wait_cap() -> Option<Duration> {
    host::portable_sockets().then_some(PORTABLE_READ_WAIT)
}

/// Accepts connections and hands each (blocking) to `serve` until shutdown is requested.
/// `serve` must not block.
pub(crate) fn accept_until(
    listener: &TcpListener,
    shutdown: &Shutdown,
    serve: impl FnMut(TcpStream, SocketAddr),
) -> io::Result<()> {
    #[cfg(unix)]
    if !host::portable_sockets() {
        return accept_polling(listener, shutdown, serve);
    }
    accept_blocking(listener, shutdown, serve)
}

/// After a failed `accept`: an interrupted call or a connection aborted before it was
/// accepted is nothing (false: accept again); anything else is logged (the first, then
/// at powers of two in a row) and paused on (true).
fn paused_after(e: &io::Error, errors: &mut u64, shutdown: &Shutdown) -> bool {
    if matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    ) {
        return false;
    }
    *errors += 1;
    if *errors == 1 || errors.is_power_of_two() {
        error!("accept failed ({errors} in a row): {e}; retrying in 100 ms");
    }
    shutdown.wait_timeout(ACCEPT_PAUSE);
    true
}

/// Unix: a non-blocking listener polled beside the shutdown descriptor; every waiting
/// connection is accepted before polling again.
#[cfg(unix)]
fn accept_polling(
    listener: &TcpListener,
    shutdown: &Shutdown,
    mut serve: impl FnMut(TcpStream, SocketAddr),
) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags};
    listener.set_nonblocking(true)?;
    let mut errors = 0u64;
    while !shutdown.requested() {
        let mut fds = [
            PollFd::new(listener, PollFlags::IN),
            PollFd::from_borrowed_fd(shutdown.as_fd(), PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                error!("poll on the listener failed: {e}");
                shutdown.wait_timeout(ACCEPT_PAUSE);
            }
        }
        if shutdown.requested() {
            break;
        }
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    errors = 0;
                    if stream.set_nonblocking(false).is_ok() {
                        serve(stream, peer);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    if paused_after(&e, &mut errors, shutdown) {
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Portable: a blocking `accept`. At shutdown a helper thread connects to the listener
/// ("knocks") so that the blocked `accept` returns; the loop then sees the flag and
/// drops that connection. It knocks again every 200 ms until the loop has stopped (a
/// knock can be lost, e.g. to a full backlog — though then `accept` is busy anyway).
fn accept_blocking(
    listener: &TcpListener,
    shutdown: &Shutdown,
    mut serve: impl FnMut(TcpStream, SocketAddr),
) -> io::Result<()> {
    listener.set_nonblocking(false)?;
    let knock_at = knock_address(listener.local_addr()?);
    let stopped = Arc::new(AtomicBool::new(false));
    {
        let shutdown = shutdown.clone();
        let stopped = Arc::clone(&stopped);
        std::thread::Builder::new()
            .name("accept-waker".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                shutdown.wait();
                while !stopped.load(Ordering::SeqCst) {
                    let _ = TcpStream::connect_timeout(&knock_at, Duration::from_millis(200));
                    std::thread::sleep(Duration::from_millis(200));
                }
            })?;
    }
    let mut errors = 0u64;
    while !shutdown.requested() {
        match listener.accept() {
            // Accepted after the signal: most likely the knock; closed unanswered.
            Ok(_) if shutdown.requested() => break,
            Ok((stream, peer)) => {
                errors = 0;
                serve(stream, peer);
            }
            Err(e) => {
                paused_after(&e, &mut errors, shutdown);
            }
        }
    }
    stopped.store(true, Ordering::SeqCst);
    Ok(())
}

/// Where to connect to reach a listener bound to `bound`: the loopback address of the
/// same family when it is bound to all addresses.
fn knock_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// One read of what the client has already sent, without waiting: `Ok(0)` at the end of
/// the stream, `WouldBlock` when nothing is there. The stream stays blocking.
pub(crate) fn read_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    #[cfg(unix)]
    if !host::portable_sockets() {
        use rustix::net::{recv, RecvFlags};
        return Ok(recv(stream, buf, RecvFlags::DONTWAIT)?.0);
    }
    without_waiting(stream, |s| (&*s).read(buf))
}

/// Whether the client has sent bytes that were not read yet (false at the end of the
/// stream, or when that cannot be told).
pub(crate) fn has_unread(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    #[cfg(unix)]
    if !host::portable_sockets() {
        use rustix::net::{recv, RecvFlags};
        let peek = recv(
            stream,
            &mut probe[..],
            RecvFlags::DONTWAIT | RecvFlags::PEEK,
        );
        return matches!(peek, Ok((n, _)) if n > 0);
    }
    matches!(without_waiting(stream, |s| s.peek(&mut probe)), Ok(n) if n > 0)
}

/// Runs `op` with the stream in non-blocking mode, then makes it blocking again (an
/// error if that fails: the stream is then unusable for a worker).
fn without_waiting<T>(
    stream: &TcpStream,
    op: impl FnOnce(&TcpStream) -> io::Result<T>,
) -> io::Result<T> {
    stream.set_nonblocking(true)?;
    let result = op(stream);
    stream.set_nonblocking(false)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    #[test]
    fn the_portable_reads_do_not_wait_and_leave_the_stream_blocking() {
        let (mut client, server) = pair();
        let mut buf = [0u8; 16];
        let start = Instant::now();
        let e = without_waiting(&server, |s| (&*s).read(&mut buf)).expect_err("nothing yet");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(!matches!(without_waiting(&server, |s| s.peek(&mut buf)), Ok(n) if n > 0));
        assert!(start.elapsed() < Duration::from_secs(1));
        client.write_all(b"hello").expect("write");
        std::thread::sleep(Duration::from_millis(50));
        assert!(has_unread(&server));
        assert_eq!(
            without_waiting(&server, |s| s.peek(&mut buf)).expect("peek"),
            5
        );
        assert_eq!(read_now(&server, &mut buf).expect("read"), 5);
        assert_eq!(&buf[..5], b"hello");
        assert!(!has_unread(&server));
        // Blocking again: a read with a timeout waits for it.
        server
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let start = Instant::now();
        assert!((&server).read(&mut buf).is_err());
        assert!(start.elapsed() >= Duration::from_millis(90));
        drop(client);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(read_now(&server, &mut buf).expect("eof"), 0);
        assert_eq!(
            without_waiting(&server, |s| (&*s).read(&mut buf)).expect("eof"),
            0
        );
    }

    #[test]
    fn knocking_reaches_a_listener_on_all_addresses() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().expect("v4");
        assert_eq!(knock_address(v4), "127.0.0.1:8080".parse().expect("lo"));
        let v6: SocketAddr = "[::]:81".parse().expect("v6");
        assert_eq!(knock_address(v6), "[::1]:81".parse().expect("lo6"));
        let one: SocketAddr = "192.0.2.7:1".parse().expect("one");
        assert_eq!(knock_address(one), one);
    }

    /// Both accept loops serve connections and return soon after shutdown, with no
    /// connection coming in to wake them.
    #[test]
    fn both_accept_loops_serve_and_stop() {
        type Loop =
            fn(&TcpListener, &Shutdown, &mut dyn FnMut(TcpStream, SocketAddr)) -> io::Result<()>;
        let blocking: Loop = |l, s, f| accept_blocking(l, s, f);
        #[cfg(unix)]
        let polling: Loop = |l, s, f| accept_polling(l, s, f);
        #[cfg(unix)]
        let loops = [blocking, polling];
        #[cfg(not(unix))]
        let loops = [blocking];
        for accept in loops {
            let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
            let addr = knock_address(listener.local_addr().expect("addr"));
            let shutdown = Shutdown::new().expect("shutdown");
            let served = Arc::new(AtomicUsize::new(0));
            let worker = {
                let shutdown = shutdown.clone();
                let served = Arc::clone(&served);
                std::thread::spawn(move || {
                    accept(&listener, &shutdown, &mut |stream, _| {
                        let _ = (&stream).write_all(b"hi");
                        served.fetch_add(1, Ordering::SeqCst);
                    })
                })
            };
            for _ in 0..3 {
                let mut c = TcpStream::connect(addr).expect("connect");
                let mut got = Vec::new();
                c.read_to_end(&mut got).expect("read");
                assert_eq!(got, b"hi");
            }
            std::thread::sleep(Duration::from_millis(100));
            let start = Instant::now();
            shutdown.trigger();
            worker.join().expect("accept thread").expect("accept loop");
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
            assert_eq!(served.load(Ordering::SeqCst), 3);
        }
    }
}
