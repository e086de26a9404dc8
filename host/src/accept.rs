//! The blocking accept loop of a runtime built on threads (runtime-std's), in two
//! versions, one per platform family:
//!
//! - Unix: non-blocking listeners, `poll` on them and on the shutdown descriptor, every
//!   waiting connection accepted (non-blocking, by `crate::net::Listener::accept`) before
//!   polling again;
//! - portable (Windows; Linux with `PORTABLE_IO=1`): a blocking `accept` per listener
//!   (one thread each past the first), woken at shutdown by a connection to itself (on
//!   Windows a signal cannot make a descriptor readable, and std has no `poll`).
//!
//! Both end at shutdown the same way: what waits in a listener's backlog is accepted and
//! handed over like any connection (its session drains it: a request on its way is
//! answered with `Connection: close`), then the loop returns so that the caller drops the
//! listeners at once — a connection made later is refused, never accepted and then reset.
//!
//! [`crate::portable_sockets`] chooses, so that Linux runs the portable version under
//! `PORTABLE_IO=1` (the socket suites then test it).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::net::{Listener, Local, Peer, Stream};
use crate::shutdown::Shutdown;
use log::error;

/// Pause after a failed `accept` (EMFILE, ENFILE, ENOBUFS...: the connection waits in
/// the backlog) instead of spinning on it.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections on every listener and hands each (non-blocking) to `serve`, with
/// the index of its listener, until shutdown is requested; then what waits in the
/// backlogs. `serve` must not block.
pub fn accept_until(
    listeners: &[Listener],
    shutdown: &Shutdown,
    serve: impl Fn(usize, Stream, Peer) + Sync,
) -> io::Result<()> {
    #[cfg(unix)]
    if !crate::portable_sockets() {
        return accept_polling(listeners, shutdown, serve);
    }
    accept_blocking(listeners, shutdown, serve)
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

/// At shutdown: accepts what waits in `listener`'s backlog (non-blocking), until it is
/// empty or an `accept` fails.
fn accept_backlog(i: usize, listener: &Listener, serve: &(impl Fn(usize, Stream, Peer) + Sync)) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    loop {
        match listener.accept() {
            Ok((stream, peer)) => serve(i, stream, peer),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Unix: non-blocking listeners polled beside the shutdown descriptor; every waiting
/// connection is accepted before polling again.
#[cfg(unix)]
pub fn accept_polling(
    listeners: &[Listener],
    shutdown: &Shutdown,
    serve: impl Fn(usize, Stream, Peer) + Sync,
) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags};
    for l in listeners {
        l.set_nonblocking(true)?;
    }
    let mut errors = 0u64;
    let mut ready = vec![false; listeners.len()];
    while !shutdown.requested() {
        let mut fds: Vec<PollFd<'_>> = listeners
            .iter()
            .map(|l| PollFd::new(l, PollFlags::IN))
            .collect();
        fds.push(PollFd::from_borrowed_fd(shutdown.as_fd(), PollFlags::IN));
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                error!("poll on the listeners failed: {e}");
                shutdown.wait_timeout(ACCEPT_PAUSE);
            }
        }
        for (r, fd) in ready.iter_mut().zip(&fds) {
            *r = !fd.revents().is_empty();
        }
        drop(fds);
        if shutdown.requested() {
            break;
        }
        for (i, l) in listeners.iter().enumerate().filter(|&(i, _)| ready[i]) {
            loop {
                match l.accept() {
                    Ok((stream, peer)) => {
                        errors = 0;
                        serve(i, stream, peer);
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
    }
    for (i, l) in listeners.iter().enumerate() {
        accept_backlog(i, l, &serve);
    }
    Ok(())
}

/// Portable: a blocking `accept` per listener (the first on this thread, each other on
/// a thread of its own). At shutdown a helper thread connects to each listener
/// ("knocks") so that its blocked `accept` returns; the loop then sees the flag and
/// drops that connection. It knocks again every 200 ms until the loop has stopped (a
/// knock can be lost, e.g. to a full backlog — though then `accept` is busy anyway).
pub fn accept_blocking(
    listeners: &[Listener],
    shutdown: &Shutdown,
    serve: impl Fn(usize, Stream, Peer) + Sync,
) -> io::Result<()> {
    let serve = &serve;
    std::thread::scope(|scope| {
        let others: Vec<_> = listeners
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, l)| {
                std::thread::Builder::new()
                    .name(format!("accept-{i}"))
                    .spawn_scoped(scope, move || accept_one_blocking(i, l, shutdown, serve))
            })
            .collect::<io::Result<_>>()?;
        let first = match listeners.first() {
            Some(l) => accept_one_blocking(0, l, shutdown, serve),
            None => Ok(()),
        };
        for other in others {
            other
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("an accept thread panicked")))?;
        }
        first
    })
}

/// The blocking accept loop of one listener (see [`accept_blocking`]).
fn accept_one_blocking(
    i: usize,
    listener: &Listener,
    shutdown: &Shutdown,
    serve: &(impl Fn(usize, Stream, Peer) + Sync),
) -> io::Result<()> {
    listener.set_nonblocking(false)?;
    let knock_at = listener.local().clone();
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
                    knock(&knock_at);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })?;
    }
    let mut errors = 0u64;
    while !shutdown.requested() {
        match listener.accept() {
            // Accepted after the signal: most likely the knock (its session sees EOF and
            // closes), maybe a client of the backlog: served like the rest of it.
            Ok((stream, peer)) if shutdown.requested() => {
                serve(i, stream, peer);
                break;
            }
            Ok((stream, peer)) => {
                errors = 0;
                serve(i, stream, peer);
            }
            Err(e) => {
                paused_after(&e, &mut errors, shutdown);
            }
        }
    }
    accept_backlog(i, listener, serve);
    stopped.store(true, Ordering::SeqCst);
    Ok(())
}

/// Connects to a listener bound to `local` (and lets go), so that a blocked `accept`
/// returns.
fn knock(local: &Local) {
    match local {
        Local::Tcp { addr, .. } => {
            let _ = TcpStream::connect_timeout(&knock_address(*addr), Duration::from_millis(200));
        }
        #[cfg(unix)]
        Local::Unix {
            path: Some(path), ..
        } => {
            let _ = std::os::unix::net::UnixStream::connect(path);
        }
        #[cfg(target_os = "linux")]
        Local::Unix { name, path: None } => {
            use std::os::linux::net::SocketAddrExt;
            let abstract_name = name.strip_prefix("unix:@").unwrap_or_default();
            if let Ok(addr) =
                std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
            {
                let _ = std::os::unix::net::UnixStream::connect_addr(&addr);
            }
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        Local::Unix { path: None, .. } => {}
    }
}

/// Where to connect to reach a listener bound to `bound`: the loopback address of the
/// same family when it is bound to all addresses.
pub fn knock_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}
