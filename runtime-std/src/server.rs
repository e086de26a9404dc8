//! The runtime-std server: the accept thread, and a worker driving one session.
//!
//! The accept thread hands each new connection to the pool's bounded queue (a full
//! queue, or `--max-connections` open, is answered `503` by a refusal session that the
//! accept thread starts and the parking finishes). A worker drives a session
//! ([`drive`]): it executes what the session needs that can be done now — writes,
//! `sendfile`, reads of what the client already sent, blocking jobs (a file the cache
//! misses, a directory, an upload) — and as soon as the session would wait on its
//! client, the connection is parked (`park.rs`) and the worker takes the next job. No
//! worker ever waits on a client.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::Shutdown as Half;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host::event::Interest;
use host::net::{Listener, Peer, Stream};
use host::session::{Need, Refused, Service, Session};
use host::shutdown::{Shutdown, DRAIN_LIMIT};
use host::start::Started;
use log::{debug, info, warn};
use protocol::Now;

use crate::park::{Conn, Counted, Parked, Parking, Woke};
use crate::pool::{Busy, Pool, Source};

/// The read buffer of a worker.
const READ_BUF: usize = 64 * 1024;
/// Refused connections being answered at once; past it, one is closed unanswered.
const MAX_REFUSING: usize = host::linger::MAX_REFUSING;
/// Times in a row a worker serves a connection again at once because it turned ready
/// while the worker held it ([`Parked::Ready`]); then it goes back through the poller,
/// behind the other ready connections.
const SERVED_AGAIN: u32 = 16;

/// Needs met in one serve after which the worker counts as blocked (see
/// [`Busy::blocking`]): whatever keeps it, another worker watches the parked connections.
const LONG_DRIVE: u32 = 1024;

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What every worker shares.
pub struct Server {
    service: Arc<Service>,
    shutdown: Shutdown,
    parking: Parking,
    open: Arc<AtomicUsize>,
    refusing: Arc<AtomicUsize>,
}

impl Server {
    /// Serves `conn` until it closes or waits on its client (then it is parked).
    fn serve(&self, mut conn: Conn, busy: Option<&Busy<'_>>) {
        let mut now = match conn.woke.take() {
            Some(Woke::Ready(now)) => {
                conn.session.ready(now);
                now
            }
            Some(Woke::Expired(now)) => {
                conn.session.wake(now);
                now
            }
            None => self.service.clock.now(),
        };
        let mut again = 0;
        loop {
            if !conn.drain_given && self.shutdown.requested() {
                conn.drain_given = true;
                conn.session.drain(now);
            }
            let Some((interest, until)) = drive(&self.service, &mut conn, busy, now) else {
                self.parking.forget(&conn);
                return;
            };
            again += 1;
            match self
                .parking
                .park(conn, interest, until, again <= SERVED_AGAIN)
            {
                Parked::Waiting => return,
                // Shutting down and idle: close it now (a lingering one too: the drain
                // ends its linger; driven again as it was, it would only park again).
                Parked::Close(back) => {
                    conn = back;
                    now = self.service.clock.now();
                    conn.session.drain(now);
                }
                // It turned ready while this worker held it: no need to wait.
                Parked::Ready(back) => {
                    conn = back;
                    now = self.service.clock.now();
                    conn.session.ready(now);
                }
            }
        }
    }

    /// A new connection (non-blocking, from `host::net::Listener::accept`) from the
    /// accept thread, to be served by `service` (its listener's).
    fn accept(
        &self,
        service: &Arc<Service>,
        stream: Stream,
        peer: Peer,
        pool: &Pool<Conn>,
        limit: usize,
    ) {
        let now = self.service.clock.now();
        let Some(count) = Counted::take(&self.open, limit) else {
            return self.refuse(service, stream, peer, now, Refused::Connections { limit });
        };
        let Some(session) = Session::new(service, now, peer.clone()) else {
            return;
        };
        if let Err(conn) = pool.try_submit(Conn::new(stream, session, count)) {
            self.refuse(service, conn.stream, peer, now, Refused::Queue);
        }
    }

    /// Answers `503` on the accept thread (a refusal session never blocks), then parks
    /// the connection for the rest of its linger.
    fn refuse(&self, service: &Arc<Service>, stream: Stream, peer: Peer, now: Now, why: Refused) {
        let Some(count) = Counted::take(&self.refusing, MAX_REFUSING) else {
            warn!(
                "{peer} refused (503): {why}; closed unanswered, {MAX_REFUSING} refusals pending"
            );
            why.count();
            return;
        };
        let Some(session) = Session::refusal(service, now, peer, why) else {
            return;
        };
        let mut conn = Conn::new(stream, session, count);
        match drive(&self.service, &mut conn, None, now) {
            Some((interest, until)) => match self.parking.park(conn, interest, until, false) {
                Parked::Close(conn) => self.parking.forget(&conn),
                Parked::Waiting | Parked::Ready(_) => {}
            },
            None => self.parking.forget(&conn),
        }
    }
}

/// Drives a session until it closes (`None`) or must wait on its client (what for, and
/// until when). Blocking jobs run here, each a blocking section of the pool (`busy`).
fn drive(
    service: &Service,
    conn: &mut Conn,
    busy: Option<&Busy<'_>>,
    now: Now,
) -> Option<(Interest, u64)> {
    let (stream, session) = (&conn.stream, &mut conn.session);
    let mut read_at = Some(now);
    let (mut steps, mut _long) = (0u32, None);
    loop {
        steps += 1;
        if steps == LONG_DRIVE {
            // This serve goes on: parked connections get another worker to watch them.
            _long = busy.map(Busy::blocking);
        }
        match session.need() {
            Need::Write(bytes) => {
                let written = (&*stream).write(bytes);
                session.sent(written);
            }
            Need::SendFile { file, offset, len } => {
                let _blocking = busy.map(Busy::blocking);
                let sent = host::sendfile::send_file(stream, file, &mut { offset }, len);
                session.sent(sent);
            }
            Need::Cork(on) => host::sendfile::set_cork(stream, on),
            Need::Read { until } if conn.drained => return Some((Interest::READ, until)),
            Need::Read { until } => {
                let read = BUF.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    buf.resize(READ_BUF, 0);
                    let n = (&*stream).read(&mut buf)?;
                    // Short: the receive queue was empty then, and a later byte makes
                    // an edge (none follows the end of the stream).
                    conn.drained = n < buf.len() && !conn.closed;
                    // The first read after the poller's wait has its time, and is fresh
                    // if the wait read the cache's change notification.
                    let fresh = read_at.is_some() && std::mem::take(&mut conn.fresh);
                    let now = read_at.take().unwrap_or_else(|| service.clock.now());
                    session.received(now, &buf[..n], fresh);
                    Ok::<(), io::Error>(())
                });
                match read {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Some((Interest::READ, until))
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        debug!("{} read failed: {e}", session.peer());
                        return None;
                    }
                }
            }
            Need::Writable { until } => return Some((Interest::WRITE, until)),
            Need::Blocking(job) => {
                let done = {
                    let _blocking = busy.map(Busy::blocking);
                    job.run()
                };
                session.finish(service.clock.now(), done);
            }
            Need::Yield => {}
            Need::Shutdown => {
                let _ = stream.shutdown(Half::Write);
            }
            Need::Close => return None,
        }
    }
}

/// Serves `started` until shutdown, then drains (at most [`DRAIN_LIMIT`]).
pub fn run(mut started: Started, workers: usize, queue: usize) -> io::Result<()> {
    let (listeners, services): (Vec<Listener>, Vec<Arc<Service>>) =
        std::mem::take(&mut started.listeners).into_iter().unzip();
    let Started {
        service,
        shutdown,
        max_connections,
        ..
    } = &started;
    let server = Arc::new(Server {
        service: Arc::clone(service),
        shutdown: shutdown.clone(),
        parking: Parking::new(service.clock, service)?,
        open: Arc::new(AtomicUsize::new(0)),
        refusing: Arc::new(AtomicUsize::new(0)),
    });
    let handler = Arc::clone(&server);
    let source: Arc<dyn Source<Conn>> = Arc::new(Waiter(Arc::clone(&server)));
    let pool = Pool::new(
        "worker",
        workers,
        queue,
        Some(source),
        move |_, conn, busy| handler.serve(conn, Some(busy)),
    )?;
    // The start line goes out once every worker waits for work.
    started.announce();
    host::accept::accept_until(&listeners, shutdown, |i, stream, peer| {
        server.accept(&services[i], stream, peer, &pool, *max_connections)
    })?;
    // Stop listening at once (what waited in the backlogs was accepted): a connection
    // made from now on is refused, and a balancer sends it elsewhere, instead of one
    // accepted and then reset.
    drop(listeners);
    info!(
        "shutting down: no new connections; in-flight requests get up to {} s",
        DRAIN_LIMIT.as_secs()
    );
    let deadline = Instant::now() + DRAIN_LIMIT;
    for conn in server.parking.drain() {
        pool.submit_anyway(conn);
    }
    while server.open.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = server.open.load(Ordering::Acquire);
    if pool.finish(deadline) && left == 0 {
        info!("shut down cleanly");
    } else {
        warn!(
            "{left} connections still open after {} s; exiting anyway",
            DRAIN_LIMIT.as_secs()
        );
    }
    Ok(())
}

/// The pool's source of jobs: the parking.
struct Waiter(Arc<Server>);

impl Source<Conn> for Waiter {
    fn wait(&self, into: &mut Vec<Conn>) {
        self.0.parking.wait(into)
    }
    fn wake(&self) {
        self.0.parking.wake()
    }
}
