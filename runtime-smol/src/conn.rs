//! One connection task: drives one [`host::session::Session`] over one non-blocking
//! socket registered with this thread's reactor.
//!
//! Each need of the session is one arm of [`serve`]: a write or `sendfile` is tried at
//! once (the reactor remembers whether the socket refused the last one); a read waits
//! for readability, the session's deadline, or the server closing, whichever comes
//! first; a blocking job goes to smol's blocking pool, so the executor thread never
//! waits on the disk or the object store.
//!
//! Memory per idle connection is the task and its session: the read buffer is per
//! thread, and the session gives a written answer's buffer back to the core, which keeps
//! it only if it is a few KiB at most.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use host::net::Stream;
use host::session::{Need, Session};
use log::debug;
use protocol::Now;
use smol::future;

use crate::reactor::{self, Io, Timer};
use crate::Shared;

/// Bytes read per `read(2)`; one buffer per executor thread.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// The time for the session: the clocks as this thread's reactor last read them.
pub(crate) fn now(shared: &Shared) -> Now {
    let (mono, wall) = reactor::now();
    shared.service.clock.at(mono, wall)
}

/// What ended a wait.
#[derive(Clone, Copy)]
enum Woke {
    Done,
    Deadline,
    Closing,
    Failed,
}

/// Drives `session` until it closes.
pub(crate) async fn serve(shared: &Shared, stream: Io<Stream>, mut session: Session) {
    let mut timer = Timer::never();
    let mut armed: Option<u64> = None;
    let mut drain_given = false;
    loop {
        if !drain_given && shared.shutting_down() {
            drain_given = true;
            session.drain(now(shared));
        }
        let woke = match session.need() {
            Need::Write(bytes) => {
                let written = (&mut stream.get_ref()).write(bytes);
                full_if_refused(&stream, &written);
                session.sent(written);
                continue;
            }
            Need::SendFile { file, offset, len } => {
                let sent = host::sendfile::send_file(stream.get_ref(), file, &mut { offset }, len);
                full_if_refused(&stream, &sent);
                session.sent(sent);
                continue;
            }
            Need::Cork(on) => {
                host::sendfile::set_cork(stream.get_ref(), on);
                continue;
            }
            Need::Read { until } => {
                arm(shared, &mut timer, &mut armed, until);
                let read = read(shared, &stream, &mut session, drain_given);
                future::or(read, expire(&mut timer)).await
            }
            Need::Writable { until } => {
                arm(shared, &mut timer, &mut armed, until);
                let writable = async {
                    stream.writable().await;
                    Woke::Done
                };
                match future::or(writable, expire(&mut timer)).await {
                    Woke::Done => {
                        session.ready(now(shared));
                        continue;
                    }
                    other => other,
                }
            }
            Need::Blocking(job) => {
                let done = smol::unblock(move || job.run()).await;
                session.finish(now(shared), done);
                continue;
            }
            Need::Yield => {
                reactor::next_turn().await;
                continue;
            }
            Need::Shutdown => {
                let _ = stream.get_ref().shutdown(Shutdown::Write);
                continue;
            }
            Need::Close => return,
        };
        match woke {
            Woke::Deadline => armed = None,
            Woke::Closing => drain_given = true,
            Woke::Failed => return,
            Woke::Done => {}
        }
        woke_by(woke, &mut session, shared);
    }
}

/// Tells the session why its wait ended (a read already handed it its bytes).
fn woke_by(woke: Woke, session: &mut Session, shared: &Shared) {
    match woke {
        Woke::Deadline => session.wake(now(shared)),
        Woke::Closing => session.drain(now(shared)),
        Woke::Done | Woke::Failed => {}
    }
}

/// The socket refused a write: wait for the reactor's next edge before writing again.
fn full_if_refused(stream: &Io<Stream>, result: &io::Result<usize>) {
    if matches!(result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        stream.full();
    }
}

/// Moves the deadline timer when the session's deadline came earlier (a later one just
/// lets the timer fire once early; the session then ignores it).
fn arm(shared: &Shared, timer: &mut Timer, armed: &mut Option<u64>, until: u64) {
    if armed.is_none_or(|a| until < a) {
        let from = reactor::now().0;
        let wait = until.saturating_sub(now(shared).mono_ms);
        timer.set_at(from + Duration::from_millis(wait));
        *armed = Some(until);
    }
}

async fn expire(timer: &mut Timer) -> Woke {
    timer.await;
    Woke::Deadline
}

/// Reads once the socket is readable and hands the bytes to the session (a short read
/// emptied the socket: the next one waits for the reactor). The reactor wakes every
/// waiting reader when the server starts closing.
async fn read(
    shared: &Shared,
    stream: &Io<Stream>,
    session: &mut Session,
    drain_given: bool,
) -> Woke {
    loop {
        stream.readable().await;
        if !drain_given && shared.shutting_down() {
            return Woke::Closing;
        }
        let fresh = stream.take_fresh();
        let read = READ_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            let n = (&mut stream.get_ref()).read(&mut buf[..])?;
            if n < buf.len() {
                stream.drained();
            }
            session.received(now(shared), &buf[..n], fresh);
            Ok::<_, io::Error>(())
        });
        match read {
            Ok(()) => return Woke::Done,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.drained(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                debug!("{} read failed: {e}", session.peer());
                return Woke::Failed;
            }
        }
    }
}
